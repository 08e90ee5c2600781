from django.db.models import QuerySet

from apps.lifecycle.models import ActivityEvent, HealthScore, HealthScoreSnapshot
from apps.membership.models import Member
from apps.membership.selectors import list_visible_members


def list_visible_events(*, user) -> QuerySet[ActivityEvent]:
    """Return the events a user may read: those of the members they may read."""
    events = ActivityEvent.objects.select_related("subject_type")
    if user.is_staff:
        return events
    return events.filter(member__in=list_visible_members(user=user))


def list_visible_health_scores(*, user) -> QuerySet[HealthScore]:
    """Return the health scores of the members a user may read."""
    scores = HealthScore.objects.select_related("member__user", "member__account")
    if user.is_staff:
        return scores
    return scores.filter(member__in=list_visible_members(user=user))


def get_health_score(*, member: Member) -> HealthScore | None:
    return HealthScore.objects.filter(member=member).first()


def list_score_trend(
    *, member: Member, days: int = 30
) -> QuerySet[HealthScoreSnapshot]:
    """Return the member's daily snapshots, newest first, for the last `days` days."""
    return HealthScoreSnapshot.objects.filter(member=member).order_by("-day")[:days]


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
