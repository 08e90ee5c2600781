from django.db.models import Sum

from apps.advocacy.models import PointsEntry
from apps.membership.models import Member


def get_points_balance(*, member: Member) -> int:
    """Return the member's points: the sum of their ledger entries."""
    total = PointsEntry.objects.filter(member=member).aggregate(total=Sum("points"))
    return total["total"] or 0


def export_member_data(member: Member) -> dict:
    """Return the member's points balance and ledger, for their data export."""
    entries = PointsEntry.objects.filter(member=member).order_by("created_at", "id")
    return {
        "balance": get_points_balance(member=member),
        "entries": [
            {
                "points": entry.points,
                "reason": entry.reason,
                "note": entry.note,
                "created_at": entry.created_at,
            }
            for entry in entries
        ],
    }
