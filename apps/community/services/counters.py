"""Counters on members that several community services change."""

from django.db.models import F

from apps.community.models import MemberStats


def change_member_stats(*, member_id: int | None, **deltas: int) -> None:
    """Add each delta to the member's counter of that name, creating the row.

    The change is one UPDATE with F() expressions, so concurrent callers
    never lose an increment. An update whose decrement would take a counter
    below zero is skipped instead of violating the positive-integer column,
    which can happen for rows created after the posts they count.
    """
    if member_id is None or not deltas:
        return
    MemberStats.objects.get_or_create(member_id=member_id)

    stats = MemberStats.objects.filter(member_id=member_id)
    for field, delta in deltas.items():
        if delta < 0:
            stats = stats.filter(**{f"{field}__gte": -delta})
    stats.update(**{field: F(field) + delta for field, delta in deltas.items()})
