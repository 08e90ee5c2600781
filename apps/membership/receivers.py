"""Signal receivers of the membership app; each calls one service."""

from django.utils import timezone

from apps.membership.selectors import get_member_for_user
from apps.membership.services.access import (
    create_member_on_email_verification,
    record_sign_in,
)
from apps.membership.timezones import remember_time_zone


def record_member_sign_in(sender, request, user, **kwargs) -> None:
    """Store the sign-in time on the user's member; staff without one are skipped."""
    member = get_member_for_user(user)
    if member is not None:
        record_sign_in(member=member, at=timezone.now())
        if request is not None and hasattr(request, "session"):
            remember_time_zone(request, member)


def create_member_on_email_confirmed(sender, request, email_address, **kwargs) -> None:
    """Create the member whose joining waited for email verification."""
    create_member_on_email_verification(
        user=email_address.user, email=email_address.email
    )
