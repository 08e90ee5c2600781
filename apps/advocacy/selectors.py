from django.db.models import Case, QuerySet, Sum, Value, When
from django.urls import reverse

from apps.advocacy.models import AdvocacyAsk, MemberBadge, PointsEntry
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


def export_member_advocacy(member: Member) -> dict:
    """Return the member's badges and advocacy asks, for their data export."""
    badges = MemberBadge.objects.filter(member=member).select_related("badge")
    asks = AdvocacyAsk.objects.filter(member=member).order_by("created_at", "id")
    return {
        "badges": [
            {
                "badge": award.badge.name,
                "slug": award.badge.slug,
                "reason": award.reason,
                "awarded_at": award.awarded_at,
            }
            for award in badges.order_by("awarded_at", "id")
        ],
        "asks": [
            {
                "kind": ask.kind,
                "message": ask.message,
                "status": ask.status,
                "created_at": ask.created_at,
                "responded_at": ask.responded_at,
                "completed_at": ask.completed_at,
                "due_on": ask.due_on,
            }
            for ask in asks
        ],
    }


def list_member_badges(*, member: Member) -> QuerySet[MemberBadge]:
    """Return the member's badges, newest first, with each badge loaded."""
    return MemberBadge.objects.filter(member_id=member.pk).select_related("badge")


# The home page lists the member's newest badges, up to this many.
HOME_BADGE_LIMIT = 5


def get_home_recognition(member: Member) -> dict:
    """Return the member's points and newest badges for their home page.

    Two queries, whatever the size of the ledger or the number of badges.
    """
    badges = list(list_member_badges(member=member)[: HOME_BADGE_LIMIT + 1])
    return {
        "points": get_points_balance(member=member),
        "badges": badges[:HOME_BADGE_LIMIT],
        "has_more_badges": len(badges) > HOME_BADGE_LIMIT,
        "url": reverse("advocacy:home"),
    }


def list_member_asks(*, member: Member) -> QuerySet[AdvocacyAsk]:
    """Return the member's advocacy asks, open ones first, then newest first."""
    is_open = Case(
        When(status=AdvocacyAsk.Status.OPEN, then=Value(0)),
        default=Value(1),
    )
    return AdvocacyAsk.objects.filter(member_id=member.pk).order_by(
        is_open, "-created_at", "-id"
    )


def access_ask(*, member: Member, ask_id: int) -> AdvocacyAsk:
    """Return the member's own ask.

    Raise AdvocacyAsk.DoesNotExist for another member's ask too, so callers
    return 404 whether it exists or not.
    """
    return AdvocacyAsk.objects.get(pk=ask_id, member_id=member.pk)
