from django.db import transaction

from apps.advocacy.models import PointsEntry
from apps.lifecycle.models import ActivityEvent
from apps.membership.models import Member
from rm6.errors import DomainError

REPLY_POINTS = 10


@transaction.atomic
def award_points(
    *,
    member: Member,
    points: int,
    reason: str,
    event: ActivityEvent | None = None,
    note: str = "",
) -> PointsEntry:
    """Add a ledger entry; for an event, at most one per (event, reason)."""
    if points == 0:
        raise DomainError("An award of 0 points changes nothing.", field="points")
    if event is None:
        return PointsEntry.objects.create(
            member=member, points=points, reason=reason, note=note
        )
    entry, _ = PointsEntry.objects.get_or_create(
        event=event,
        reason=reason,
        defaults={"member": member, "points": points, "note": note},
    )
    return entry
