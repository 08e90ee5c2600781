"""The content-gap backlog: grouping unanswered questions and working them.

Two sources feed it. Case attempts that ended without a helpful answer
(not deflected, and no suggestion was marked as solving the problem) group by
case topic and normalised query, or the filed case's subject when the member
typed nothing in the live form; cases filed without an attempt (the API)
group the same way by subject. Searches that found nothing, in the
community or on the case form, group by normalised query. A query is
normalised by lower-casing it and turning every run of characters other
than letters and digits into one space.
"""

import logging
from dataclasses import dataclass
from datetime import date

from django.contrib.auth import get_user_model
from django.contrib.postgres.aggregates import ArrayAgg
from django.db import transaction
from django.db.models import Count, F, Func, Max, Min, Value
from django.db.models.functions import Coalesce, Lower, NullIf, Trim
from django.utils import timezone

from apps.community.models import SearchLog
from apps.portal.models import Case, CaseAttempt, ContentGap
from rm6.errors import DomainError

logger = logging.getLogger(__name__)

SAMPLE_LIMIT = 5
KEY_LENGTH = 200


def normalised(field_name: str) -> Trim:
    """Return the SQL expression of a normalised query column."""
    return Trim(
        Lower(
            Func(
                F(field_name),
                Value(r"[^[:alnum:]]+"),
                Value(" "),
                Value("g"),
                function="regexp_replace",
            )
        )
    )


@dataclass(frozen=True)
class GroupingResult:
    case_gaps: int
    search_gaps: int


def _case_groups():
    """Yield the case groups of both kinds of unanswered case, as dicts.

    An attempt's query is the text the member typed in the live form. A case
    filed by a plain form post leaves it empty, so the filed case's subject
    is used instead. Cases filed without any attempt (through the API) are
    unanswered questions too and group the same way by their subject.
    Cases escalated from a community question are left out, because that
    question is already a community topic.
    """
    question = Coalesce(NullIf(F("query"), Value("")), F("case__subject"), Value(""))
    yield from (
        CaseAttempt.objects.filter(
            outcome=CaseAttempt.Outcome.NOT_DEFLECTED,
            solved_by_suggestion_at__isnull=True,
        )
        .annotate(question=question)
        .annotate(normalised_query=normalised("question"))
        .exclude(normalised_query="", topic__isnull=True)
        .values("topic_id", "topic__name", "normalised_query")
        .annotate(
            occurrences=Count("id"),
            first_seen=Min("started_at"),
            last_seen=Max("started_at"),
            samples=ArrayAgg("question", distinct=True),
        )
        .order_by()
    )
    yield from (
        Case.objects.filter(attempt__isnull=True, source_topic__isnull=True)
        .annotate(normalised_query=normalised("subject"))
        .exclude(normalised_query="", topic__isnull=True)
        .values("topic_id", "topic__name", "normalised_query")
        .annotate(
            occurrences=Count("id"),
            first_seen=Min("created_at"),
            last_seen=Max("created_at"),
            samples=ArrayAgg("subject", distinct=True),
        )
        .order_by()
    )


def _case_gaps(now) -> list[ContentGap]:
    merged: dict[tuple, dict] = {}
    for group in _case_groups():
        key = (group["topic_id"], group["normalised_query"])
        if key not in merged:
            merged[key] = {**group, "samples": set(group["samples"])}
            continue
        found = merged[key]
        found["occurrences"] += group["occurrences"]
        found["first_seen"] = min(found["first_seen"], group["first_seen"])
        found["last_seen"] = max(found["last_seen"], group["last_seen"])
        found["samples"] |= set(group["samples"])
    gaps = []
    for group in merged.values():
        query = group["normalised_query"]
        topic_name = group["topic__name"]
        if topic_name and query:
            title = f"{topic_name}: {query}"
        else:
            title = topic_name or query
        gaps.append(
            ContentGap(
                key=f"cases:{group['topic_id'] or 0}:{query}"[:KEY_LENGTH],
                title=title[:200],
                source=ContentGap.Source.CASES,
                topic_id=group["topic_id"],
                sample_queries=sorted(s for s in group["samples"] if s)[:SAMPLE_LIMIT],
                occurrences=group["occurrences"],
                first_seen_at=group["first_seen"],
                last_seen_at=group["last_seen"],
                created_at=now,
                updated_at=now,
            )
        )
    return gaps


def _search_gaps(now) -> list[ContentGap]:
    groups = (
        SearchLog.objects.filter(result_count=0)
        .annotate(normalised_query=normalised("query"))
        .exclude(normalised_query="")
        .values("normalised_query")
        .annotate(
            occurrences=Count("id"),
            first_seen=Min("created_at"),
            last_seen=Max("created_at"),
            samples=ArrayAgg("query", distinct=True),
        )
        .order_by()
    )
    return [
        ContentGap(
            key=f"search:{group['normalised_query']}"[:KEY_LENGTH],
            title=group["normalised_query"][:200],
            source=ContentGap.Source.SEARCH,
            sample_queries=sorted(group["samples"])[:SAMPLE_LIMIT],
            occurrences=group["occurrences"],
            first_seen_at=group["first_seen"],
            last_seen_at=group["last_seen"],
            created_at=now,
            updated_at=now,
        )
        for group in groups
    ]


@transaction.atomic
def group_content_gaps() -> GroupingResult:
    """Upsert one ContentGap per group from the full history of both sources.

    Counts are recomputed from the source rows every run, never added to,
    so running it twice gives the same rows. Status, owner, due date and
    article are staff's and an upsert never changes them.
    NOTE: each run reads every unanswered attempt and no-result search;
    past a few million rows it wants a lookback window.
    """
    now = timezone.now()
    case_gaps = _case_gaps(now)
    search_gaps = _search_gaps(now)
    gaps = case_gaps + search_gaps
    if gaps:
        ContentGap.objects.bulk_create(
            gaps,
            update_conflicts=True,
            unique_fields=["key"],
            update_fields=[
                "occurrences",
                "sample_queries",
                "first_seen_at",
                "last_seen_at",
                "updated_at",
            ],
        )
    logger.info(
        "content gaps grouped",
        extra={"case_gaps": len(case_gaps), "search_gaps": len(search_gaps)},
    )
    return GroupingResult(len(case_gaps), len(search_gaps))


def validate_gap_update(
    *,
    gap: ContentGap,
    status: str,
    owner_id: int | None,
    due_on: date | None = None,
) -> None:
    """Raise DomainError when staff may not set this status, owner or due date.

    A due date that is set or changed must not lie in the past: a date such
    as 1900-01-01 is a typo, and it would mark the gap late from the start.
    An unchanged due date that has since passed stays as it is.
    """
    if due_on is not None and due_on != gap.due_on:
        today = timezone.localdate()
        if due_on < today:
            raise DomainError(
                f"The due date {due_on} is in the past; choose today ({today}) "
                "or a later date.",
                field="due_on",
            )
    if status not in ContentGap.Status.values:
        raise DomainError(
            f"Status {status!r} is not valid; use one of "
            f"{', '.join(ContentGap.Status.values)}.",
            field="status",
        )
    if owner_id is not None:
        is_staff = (
            get_user_model()
            .objects.filter(pk=owner_id, is_staff=True, is_active=True)
            .exists()
        )
        if not is_staff:
            raise DomainError(
                f"Owner {owner_id} is not an active staff user; choose a staff user.",
                field="owner",
            )
    if status == ContentGap.Status.PUBLISHED and not (
        gap.article_id and gap.article.is_published
    ):
        raise DomainError(
            "This gap has no published article yet; draft an article from it and "
            "publish the article, which marks the gap published.",
            field="status",
        )


@transaction.atomic
def update_content_gap(
    *,
    gap_id: int,
    status: str,
    owner_id: int | None,
    due_on: date | None,
) -> ContentGap:
    """Set a gap's status, owner and due date, as staff work the backlog."""
    gap = ContentGap.objects.select_for_update().get(pk=gap_id)
    validate_gap_update(gap=gap, status=status, owner_id=owner_id, due_on=due_on)

    gap.status = status
    gap.owner_id = owner_id
    gap.due_on = due_on
    gap.save(update_fields=["status", "owner", "due_on", "updated_at"])
    return gap
