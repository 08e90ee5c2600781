from datetime import timedelta

from django import template

register = template.Library()


def _count(number: int, unit: str) -> str:
    return f"{number} {unit}" if number == 1 else f"{number} {unit}s"


@register.filter
def duration(value: timedelta | None) -> str:
    """Format a duration in its two largest units, such as "3 days 4 hours".

    Durations under a day show hours and minutes, and seconds are dropped.
    """
    if value is None:
        return ""
    minutes = int(value.total_seconds()) // 60
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        parts = [_count(days, "day"), _count(hours, "hour") if hours else ""]
    elif hours:
        parts = [_count(hours, "hour"), _count(minutes, "minute") if minutes else ""]
    else:
        parts = [_count(minutes, "minute")]
    return " ".join(part for part in parts if part)
