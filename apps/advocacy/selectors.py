from django.db.models import Sum

from apps.advocacy.models import PointsEntry
from apps.membership.models import Member


def get_points_balance(*, member: Member) -> int:
    """Return the member's points: the sum of their ledger entries."""
    total = PointsEntry.objects.filter(member=member).aggregate(total=Sum("points"))
    return total["total"] or 0
