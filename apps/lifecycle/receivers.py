from apps.lifecycle.services import record_activity
from apps.membership.selectors import get_member_for_user


def record_sign_in(sender, request, user, **kwargs) -> None:
    """Record a sign-in event for members; staff without a member are skipped."""
    member = get_member_for_user(user)
    if member is not None:
        record_activity(member=member, kind="membership.signed_in")
