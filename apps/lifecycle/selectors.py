from dataclasses import dataclass
from datetime import UTC

from django.db.models import F, QuerySet

from apps.lifecycle.models import (
    AccountHealthScore,
    AccountHealthScoreSnapshot,
    ActivityEvent,
    HealthScore,
    HealthScoreSnapshot,
    ScorecardMeasure,
)
from apps.lifecycle.scoring.measures import GREEN_FROM, YELLOW_FROM
from apps.membership.models import Account, Member
from apps.membership.selectors import get_member_for_user, list_visible_members


def list_visible_events(*, user) -> QuerySet[ActivityEvent]:
    """Return the events a user may read: those of the members they may read."""
    events = ActivityEvent.objects.select_related("subject_type")
    if user.is_staff:
        return events
    return events.filter(member__in=list_visible_members(user=user))


def list_members_with_visible_score(*, user) -> QuerySet[Member]:
    """Return the members whose health score a user may read, scored or not.

    A deactivated member reads none, as for account scores, even while their
    user is still active. Otherwise a deactivated account admin would keep
    reading every member score of the account.
    """
    if user.is_staff:
        return Member.objects.all()
    member = get_member_for_user(user)
    if member is None or member.is_deactivated:
        return Member.objects.none()
    return list_visible_members(user=user)


def list_visible_health_scores(*, user) -> QuerySet[HealthScore]:
    """Return the health scores of the members a user may read."""
    scores = HealthScore.objects.select_related("member__user", "member__account")
    if user.is_staff:
        return scores
    return scores.filter(member__in=list_members_with_visible_score(user=user))


def access_member_health(*, user, member_id: int) -> Member:
    """Return the member whose health the user may read, with user and account.

    Raise Member.DoesNotExist otherwise, so callers return 404 whether the
    member exists or not.
    """
    return (
        list_members_with_visible_score(user=user)
        .select_related("user", "account")
        .get(pk=member_id)
    )


def get_health_score(*, member: Member) -> HealthScore | None:
    return HealthScore.objects.filter(member=member).first()


def _trend_points(current, snapshots: QuerySet, days: int) -> list:
    """Return the current score as its day's point, then earlier closing scores.

    A snapshot is written when a refresh first replaces a score computed on
    an earlier UTC day, so the current score's day has none: an unsaved
    snapshot built from `current` stands for it. One query.
    """
    if current is None:
        return list(snapshots[:days])
    day = current.computed_at.astimezone(UTC).date()
    today = snapshots.model(day=day, score=current.score, band=current.band)
    return [today, *snapshots.filter(day__lt=day)[: days - 1]]


def list_score_trend(
    *, member: Member, current: HealthScore | None, days: int = 30
) -> list[HealthScoreSnapshot]:
    """Return at most `days` of the member's daily scores, newest first.

    The first point is `current`, the member's score now, when given; the
    others are the closing scores of earlier days. Days without a score
    have no point, so the points may span more than `days` days.
    """
    snapshots = HealthScoreSnapshot.objects.filter(member=member).order_by("-day")
    return _trend_points(current, snapshots, days)


def list_kinds_recorded(*, member: Member, kinds: list[str]) -> set[str]:
    """Return which of `kinds` the member has at least one event of, in one query."""
    return set(
        ActivityEvent.objects.filter(member=member, kind__in=kinds)
        .values_list("kind", flat=True)
        .distinct()
    )


def list_recent_events(*, member: Member, kinds_prefix: str = "", limit: int = 10):
    events = ActivityEvent.objects.filter(member=member)
    if kinds_prefix:
        events = events.filter(kind__startswith=kinds_prefix)
    return events.select_related("subject_type")[:limit]


# The data export lists at most this many events, newest first. At roughly
# 500 bytes of JSON per event, an estimate, the download stays near 2.5 MB.
EXPORT_EVENT_LIMIT = 5000


def export_member_data(member: Member) -> dict:
    """Return the member's latest activity events, for their data export."""
    events = ActivityEvent.objects.filter(member=member).select_related("subject_type")
    total = events.count()
    latest = events.order_by("-occurred_at", "-id")[:EXPORT_EVENT_LIMIT]
    return {
        "note": (
            f"The {EXPORT_EVENT_LIMIT:,} most recent events at most; "
            f"{max(total - EXPORT_EVENT_LIMIT, 0):,} older events are not included."
        ),
        "limit": EXPORT_EVENT_LIMIT,
        "total": total,
        "events": [
            {
                "kind": event.kind,
                "occurred_at": event.occurred_at,
                "subject_type": (
                    f"{event.subject_type.app_label}.{event.subject_type.model}"
                    if event.subject_type
                    else None
                ),
                "subject_id": event.subject_id,
                "campaign_id": event.campaign_id,
                "play_id": event.play_id,
                "utm_source": event.utm_source,
                "utm_medium": event.utm_medium,
                "utm_campaign": event.utm_campaign,
                "utm_term": event.utm_term,
                "utm_content": event.utm_content,
                "properties": event.properties,
            }
            for event in latest
        ],
    }


# Health score pages and API ---------------------------------------------------

TREND_DAYS = 30


@dataclass(frozen=True)
class ScoreTrend:
    """Daily scores, oldest first, and the points of a sparkline drawn from them."""

    snapshots: list
    width: int = 240
    height: int = 48

    @property
    def points(self) -> str:
        """Return SVG polyline points: one per day, 0 at the bottom, 100 at the top."""
        count = len(self.snapshots)
        if count == 0:
            return ""
        if count == 1:
            y = self.height - self.snapshots[0].score * self.height / 100
            return f"0,{y:.1f} {self.width},{y:.1f}"
        step = self.width / max(count - 1, 1)
        return " ".join(
            f"{index * step:.1f},{self.height - s.score * self.height / 100:.1f}"
            for index, s in enumerate(self.snapshots)
        )

    @property
    def yellow_line_y(self) -> float:
        """Return the y of the line where yellow starts, for the sparkline."""
        return self.height - YELLOW_FROM * self.height / 100

    @property
    def green_line_y(self) -> float:
        """Return the y of the line where green starts, for the sparkline."""
        return self.height - GREEN_FROM * self.height / 100

    @property
    def first(self):
        return self.snapshots[0] if self.snapshots else None

    @property
    def last(self):
        return self.snapshots[-1] if self.snapshots else None


@dataclass(frozen=True)
class ScoreComponent:
    """One measure's part of a score, as stored in the score's components."""

    key: str
    label: str
    kind: str
    value: float | None
    score: int | None
    weight: float | None
    position: int

    @property
    def display_value(self) -> str:
        """Return the raw value with its unit, or "" when it has none."""
        if self.value is None:
            return ""
        value = float(self.value)
        # Counts are whole; the other measures are stored to one decimal.
        number = f"{value:,.0f}" if value.is_integer() else f"{value:,.1f}"
        match self.kind:
            case ScorecardMeasure.Kind.DAYS_SINCE_ACTIVITY:
                return "1 day" if value == 1 else f"{number} days"
            case (
                ScorecardMeasure.Kind.ONBOARDING_SHARE
                | ScorecardMeasure.Kind.ACTIVE_MEMBER_SHARE
            ):
                return f"{number} %"
        return number


def list_score_components(
    score: HealthScore | AccountHealthScore | None,
) -> list[ScoreComponent]:
    """Return a score's components in scorecard order.

    Components stored before scorecards had labels show their key instead.
    """
    if score is None or not isinstance(score.components, dict):
        return []
    components = [
        ScoreComponent(
            key=key,
            label=part.get("label") or key.replace("_", " ").capitalize(),
            kind=part.get("kind", ""),
            value=part.get("value"),
            score=part.get("score"),
            weight=part.get("weight"),
            position=part.get("position", index),
        )
        for index, (key, part) in enumerate(score.components.items())
        if isinstance(part, dict)
    ]
    return sorted(components, key=lambda c: (c.position, c.key))


def get_member_score_trend(
    *, member: Member, current: HealthScore | None, days: int = TREND_DAYS
) -> ScoreTrend:
    """Return at most `days` of the member's daily scores, in one query."""
    return ScoreTrend(
        list(reversed(list_score_trend(member=member, current=current, days=days)))
    )


def list_accounts_with_visible_health(*, user) -> QuerySet[Account]:
    """Return the accounts whose health a user may read.

    Staff read every account, an account admin their own account, and other
    members none: a member reads only their own member score.
    """
    accounts = Account.objects.all()
    if not user.is_authenticated:
        return accounts.none()
    if user.is_staff:
        return accounts
    member = get_member_for_user(user)
    if (
        member is None
        or member.account_id is None
        or member.role != Member.Role.ADMIN
        or member.is_deactivated
    ):
        return accounts.none()
    return accounts.filter(pk=member.account_id)


def access_account_health(*, user, account_id: int) -> Account:
    """Return the account whose health the user may read.

    Raise Account.DoesNotExist otherwise, so callers return 404 whether the
    account exists or not.
    """
    return list_accounts_with_visible_health(user=user).get(pk=account_id)


def list_visible_account_health_scores(*, user) -> QuerySet[AccountHealthScore]:
    """Return the current scores of the accounts whose health a user may read."""
    scores = AccountHealthScore.objects.select_related("account")
    if user.is_staff:
        return scores
    return scores.filter(account__in=list_accounts_with_visible_health(user=user))


def get_account_health_score(*, account: Account) -> AccountHealthScore | None:
    return AccountHealthScore.objects.filter(account=account).first()


def list_account_score_trend(
    *, account: Account, current: AccountHealthScore | None, days: int = TREND_DAYS
) -> list[AccountHealthScoreSnapshot]:
    """Return the account's daily scores, newest first, as `list_score_trend` does."""
    snapshots = AccountHealthScoreSnapshot.objects.filter(account=account).order_by(
        "-day"
    )
    return _trend_points(current, snapshots, days)


def get_account_score_trend(
    *, account: Account, current: AccountHealthScore | None, days: int = TREND_DAYS
) -> ScoreTrend:
    """Return at most `days` of the account's daily scores, in one query."""
    return ScoreTrend(
        list(
            reversed(
                list_account_score_trend(account=account, current=current, days=days)
            )
        )
    )


def list_account_member_scores(*, account: Account) -> QuerySet[Member]:
    """Return the account's members with their current score, lowest score first.

    Members without a score come last. Each row carries its user and score,
    so a page of them takes one query.
    """
    return (
        Member.objects.filter(account=account)
        .select_related("user", "health_score")
        .order_by(F("health_score__score").asc(nulls_last=True), "pk")
    )
