"""Read-only KPI queries for the reporting pages.

A window is a pair of dates `[start, end)`: it starts at 00:00 UTC on
`start` and stops just before 00:00 UTC on `end`. Each function that reads
the database runs one SQL statement, whatever the number of members or events.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.db import connection
from django.db.models import Count, QuerySet

from apps.lifecycle.models import ActivityEvent
from apps.lifecycle.registry import list_inactive_kind_names
from apps.membership.models import Account

# DAU/MAU divides by the members active in the 30 days ending with the day.
MAU_DAYS = 30


@dataclass(frozen=True)
class DailyActivity:
    """Active members on one UTC day and in the MAU_DAYS days ending with it."""

    day: date
    active_members: int
    monthly_active_members: int

    @property
    def dau_mau(self) -> float | None:
        """Return DAU/MAU as a fraction, or None when no member was active."""
        if not self.monthly_active_members:
            return None
        return self.active_members / self.monthly_active_members


@dataclass(frozen=True)
class SegmentActivity:
    """Active members whose current account is in one segment."""

    segment: str | None
    label: str
    active_members: int
    share: float | None


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _active_events(*, start: date, end: date) -> QuerySet[ActivityEvent]:
    return ActivityEvent.objects.filter(
        occurred_at__gte=_day_start(start), occurred_at__lt=_day_start(end)
    ).exclude(kind__in=list_inactive_kind_names())


def count_active_members(*, start: date, end: date) -> int:
    """Return how many members have an event that counts as active in the window."""
    totals = _active_events(start=start, end=end).aggregate(
        members=Count("member_id", distinct=True)
    )
    return totals["members"]


_DAILY_ACTIVITY_SQL = """
WITH days AS (
    SELECT generate_series(%(first_day)s::date, %(last_day)s::date, interval '1 day')
           ::date AS day
), member_days AS (
    SELECT DISTINCT member_id, (occurred_at AT TIME ZONE 'UTC')::date AS day
    FROM {events}
    WHERE occurred_at >= %(since)s
      AND occurred_at < %(until)s
      AND NOT (kind = ANY(%(inactive_kinds)s::text[]))
)
SELECT days.day,
       count(DISTINCT member_days.member_id)
           FILTER (WHERE member_days.day = days.day) AS active_members,
       count(DISTINCT member_days.member_id) AS monthly_active_members
FROM days
LEFT JOIN member_days
       ON member_days.day BETWEEN days.day - %(mau_span)s::int AND days.day
GROUP BY days.day
ORDER BY days.day
"""


def list_daily_activity(*, start: date, end: date) -> list[DailyActivity]:
    """Return, for each day of the window, its active and monthly active members.

    Days without events are included with zero counts.
    """
    if end <= start:
        return []
    last_day = end - timedelta(days=1)
    params = {
        "first_day": start,
        "last_day": last_day,
        "since": _day_start(start - timedelta(days=MAU_DAYS - 1)),
        "until": _day_start(end),
        "inactive_kinds": list_inactive_kind_names(),
        "mau_span": MAU_DAYS - 1,
    }
    sql = _DAILY_ACTIVITY_SQL.format(events=ActivityEvent._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return [DailyActivity(day, active, monthly) for day, active, monthly in rows]


def get_mean_dau_mau(days: list[DailyActivity]) -> float | None:
    """Return the mean DAU/MAU over the days that have one, else None."""
    ratios = [d.dau_mau for d in days if d.dau_mau is not None]
    if not ratios:
        return None
    return sum(ratios) / len(ratios)


def list_active_members_by_segment(*, start: date, end: date) -> list[SegmentActivity]:
    """Return active members per segment of their current account.

    The segment is the member's account now, not the account stored on each
    event, so every active member counts in exactly one row. Members awaiting
    review have no account and count under "No account".
    """
    counts = dict(
        _active_events(start=start, end=end)
        .order_by()
        .values_list("member__account__segment")
        .annotate(members=Count("member_id", distinct=True))
    )
    total = sum(counts.values())
    rows = [(value, label) for value, label in Account.Segment.choices]
    rows.append((None, "No account"))
    return [
        SegmentActivity(
            segment=value,
            label=label,
            active_members=counts.get(value, 0),
            share=counts.get(value, 0) / total if total else None,
        )
        for value, label in rows
    ]
