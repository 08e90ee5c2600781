"""Business-hours arithmetic for SLA clocks.

A calendar's working window is a wall-clock range (for example 09:00 to
17:00) on its working weekdays, in its own time zone, minus its holidays.
The arithmetic walks local dates and turns each day's window into aware
datetimes with zoneinfo, so a day on which the clocks change counts the real
length of its window (one hour more or less), never a fixed 8 hours. Without
a calendar the clock runs around the clock.
"""

import zoneinfo
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from apps.portal.models import BusinessCalendar
from rm6.errors import DomainError

# The maximum number of days searched for working time. A calendar with
# working days finds some within a week, unless a long run of holidays
# pushes further, and a calendar whose every day is a holiday must end.
MAX_SEARCH_DAYS = 3 * 366


@dataclass(frozen=True)
class WorkingHours:
    """A business calendar detached from the database, holidays loaded."""

    zone: zoneinfo.ZoneInfo
    weekdays: frozenset[int]
    opens_at: time
    closes_at: time
    holidays: frozenset[date] = frozenset()

    def window(self, day: date) -> tuple[datetime, datetime] | None:
        """Return the day's working window as UTC datetimes, or None."""
        if day.weekday() not in self.weekdays or day in self.holidays:
            return None
        # Python adds and subtracts datetimes that share a tzinfo in wall
        # time, so the window is converted to UTC for real-time arithmetic.
        # NOTE: a wall time that a spring-forward skips (02:30 on that night
        # in most European zones) resolves with the offset before the change,
        # as zoneinfo does for fold=0.
        opens = datetime.combine(day, self.opens_at, tzinfo=self.zone).astimezone(UTC)
        closes = datetime.combine(day, self.closes_at, tzinfo=self.zone).astimezone(UTC)
        if closes <= opens:
            return None
        return opens, closes


def load_working_hours(calendar: BusinessCalendar | None) -> WorkingHours | None:
    """Return a calendar's working hours with its holidays, in one query.

    Raise DomainError for an unknown time zone or a calendar without working
    days, since no SLA due time could ever be computed from it.
    """
    if calendar is None:
        return None
    try:
        zone = zoneinfo.ZoneInfo(calendar.time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise DomainError(
            f"Business calendar {calendar.name!r} has the unknown time zone "
            f"{calendar.time_zone!r}; set an IANA name such as Europe/Berlin.",
            field="time_zone",
        ) from None
    weekdays = frozenset(calendar.weekdays)
    if not weekdays:
        raise DomainError(
            f"Business calendar {calendar.name!r} has no working days; pick at "
            "least one weekday.",
            field="weekdays",
        )
    holidays = frozenset(calendar.holidays.values_list("date", flat=True))
    return WorkingHours(
        zone=zone,
        weekdays=weekdays,
        opens_at=calendar.opens_at,
        closes_at=calendar.closes_at,
        holidays=holidays,
    )


def add_business_minutes(
    start: datetime, minutes: int, hours: WorkingHours | None
) -> datetime:
    """Return the time, in UTC, `minutes` of working time after `start`.

    A start outside working hours begins counting when the next window
    opens. Zero minutes returns `start` itself.
    """
    if minutes < 0:
        raise ValueError(f"minutes must be 0 or more, not {minutes}")
    start = start.astimezone(UTC)
    if hours is None or minutes == 0:
        return start + timedelta(minutes=minutes)

    remaining = timedelta(minutes=minutes)
    day = start.astimezone(hours.zone).date()
    for _ in range(MAX_SEARCH_DAYS):
        window = hours.window(day)
        day += timedelta(days=1)
        if window is None:
            continue
        opens, closes = max(window[0], start), window[1]
        if closes <= opens:
            continue
        available = closes - opens
        if remaining <= available:
            return opens + remaining
        remaining -= available
    raise DomainError(
        f"No working time found within {MAX_SEARCH_DAYS} days of "
        f"{start.isoformat()}; check the calendar's holidays and weekdays.",
        field="calendar",
    )


def count_business_minutes(
    start: datetime, end: datetime, hours: WorkingHours | None
) -> int:
    """Return the whole minutes of working time between `start` and `end`.

    An `end` before `start` counts 0.
    """
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if end <= start:
        return 0
    if hours is None:
        return int((end - start).total_seconds() // 60)

    total = timedelta()
    day = start.astimezone(hours.zone).date()
    last_day = end.astimezone(hours.zone).date()
    while day <= last_day:
        window = hours.window(day)
        day += timedelta(days=1)
        if window is None:
            continue
        opens, closes = max(window[0], start), min(window[1], end)
        if closes > opens:
            total += closes - opens
    return int(total.total_seconds() // 60)
