"""The case deflection report: deflected attempts over settled attempts.

Attempts are counted by their start, in the window [start, end). An attempt
is pending only during its first 24 hours, so the share divides deflected
attempts by those with an outcome, deflected or not, and the report shows
the pending count beside each share. Counting pending attempts would make
every recent window read low until they settle. The staff dashboard's KPI
(apps.reporting) reads it the same way. An empty denominator is "no data"
(None), never 0 % or 100 %.
"""

from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Count, Q, QuerySet

from apps.community.models import Topic
from apps.membership.models import Account
from apps.portal.models import Article, CaseAttempt, Suggestion

CONTENT_LIMIT = 20
DEFLECTED = Q(outcome=CaseAttempt.Outcome.DEFLECTED)
PENDING = Q(outcome=CaseAttempt.Outcome.PENDING)


@dataclass
class DeflectionRow:
    label: str
    attempts: int
    deflected: int
    pending: int

    @property
    def settled(self) -> int:
        """Attempts with an outcome: deflected or not deflected."""
        return self.attempts - self.pending

    @property
    def share(self) -> float | None:
        return self.deflected / self.settled if self.settled else None


@dataclass
class ContentRow:
    """One suggested answer: how often it was shown, opened and marked helpful.

    `attempts` counts attempts that opened it, and `deflected` those of them
    that ended deflected.
    """

    label: str
    url_kind: str
    content_id: int
    shown: int
    opened: int
    helpful: int
    attempts: int
    deflected: int

    @property
    def share(self) -> float | None:
        return self.deflected / self.attempts if self.attempts else None


@dataclass
class DeflectionReport:
    start: datetime
    end: datetime
    overall: DeflectionRow
    by_topic: list[DeflectionRow] = field(default_factory=list)
    by_segment: list[DeflectionRow] = field(default_factory=list)
    by_campaign: list[DeflectionRow] = field(default_factory=list)
    by_content: list[ContentRow] = field(default_factory=list)


def _counts() -> dict:
    return {
        "attempts": Count("id"),
        "deflected": Count("id", filter=DEFLECTED),
        "pending": Count("id", filter=PENDING),
    }


def _grouped(attempts: QuerySet, *fields: str) -> list[dict]:
    return list(attempts.values(*fields).annotate(**_counts()).order_by(*fields))


def _content_rows(attempts: QuerySet) -> list[ContentRow]:
    suggestions = Suggestion.objects.filter(attempt__in=attempts.values("pk"))
    groups = list(
        suggestions.values("article_id", "topic_id")
        .annotate(
            shown=Count("id"),
            opened=Count("id", filter=Q(opened_at__isnull=False)),
            helpful=Count("id", filter=Q(helpful_at__isnull=False)),
            deflected=Count(
                "id",
                filter=Q(
                    opened_at__isnull=False,
                    attempt__outcome=CaseAttempt.Outcome.DEFLECTED,
                ),
            ),
        )
        .order_by("-opened", "-shown", "article_id", "topic_id")[:CONTENT_LIMIT]
    )
    article_ids = [g["article_id"] for g in groups if g["article_id"]]
    topic_ids = [g["topic_id"] for g in groups if g["topic_id"]]
    article_titles = dict(
        Article.objects.filter(pk__in=article_ids).values_list("pk", "title")
    )
    topic_titles = dict(
        Topic.objects.filter(pk__in=topic_ids).values_list("pk", "title")
    )
    rows = []
    for group in groups:
        if group["article_id"]:
            kind, content_id = "article", group["article_id"]
            label = article_titles.get(content_id, f"Article {content_id}")
        else:
            kind, content_id = "topic", group["topic_id"]
            label = topic_titles.get(content_id, f"Topic {content_id}")
        rows.append(
            ContentRow(
                label=label,
                url_kind=kind,
                content_id=content_id,
                shown=group["shown"],
                opened=group["opened"],
                helpful=group["helpful"],
                attempts=group["opened"],
                deflected=group["deflected"],
            )
        )
    return rows


def get_deflection_report(
    *, start: datetime, end: datetime, campaign_id: str = "", play_id: str = ""
) -> DeflectionReport:
    """Return the deflection shares of attempts started in [start, end).

    Seven queries whatever the number of attempts: overall, by case topic,
    by segment, by campaign and play ID, by content, and the titles of the
    articles and topics listed.
    """
    attempts = CaseAttempt.objects.filter(started_at__gte=start, started_at__lt=end)
    if campaign_id:
        attempts = attempts.filter(campaign_id=campaign_id)
    if play_id:
        attempts = attempts.filter(play_id=play_id)

    overall = attempts.aggregate(**_counts())
    report = DeflectionReport(
        start=start, end=end, overall=DeflectionRow(label="All attempts", **overall)
    )
    for group in _grouped(attempts, "topic__name"):
        label = group.pop("topic__name") or "No topic"
        report.by_topic.append(DeflectionRow(label=label, **group))
    for group in _grouped(attempts, "segment"):
        segment = group.pop("segment")
        # Show the segment's label ("Mid-market"), not its stored value.
        label = dict(Account.Segment.choices).get(segment, segment) or "No segment"
        report.by_segment.append(DeflectionRow(label=label, **group))
    for group in _grouped(attempts, "campaign_id", "play_id"):
        campaign = group.pop("campaign_id") or "none"
        play = group.pop("play_id") or "none"
        label = f"campaign {campaign} · play {play}"
        report.by_campaign.append(DeflectionRow(label=label, **group))
    report.by_content = _content_rows(attempts)
    return report
