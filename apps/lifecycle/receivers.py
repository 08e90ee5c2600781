from apps.lifecycle.plays.triggers import SIGN_IN_KIND, UNCONFIRMED_SIGN_IN_PROPERTY
from apps.lifecycle.services import record_activity
from apps.membership.selectors import get_member_for_user
from apps.membership.selectors.sso import list_unconfirmed_sign_up_member_ids


def record_sign_in(sender, request, user, **kwargs) -> None:
    """Record a sign-in event for members; staff without a member are skipped.

    A sign-in while the member's sign-up email is unconfirmed is marked with
    UNCONFIRMED_SIGN_IN_PROPERTY, so it is not the member's first sign-in.
    """
    member = get_member_for_user(user)
    if member is None:
        return

    properties = {}
    if list_unconfirmed_sign_up_member_ids(member_ids=[member.pk]):
        properties[UNCONFIRMED_SIGN_IN_PROPERTY] = True
    record_activity(member=member, kind=SIGN_IN_KIND, properties=properties)


def record_sign_in_on_email_confirmation(
    sender, request, email_address, **kwargs
) -> None:
    """Record a sign-in when a signed-in member confirms their own email address.

    From then on the member is signed in as a confirmed member, so this is
    the sign-in that starts first sign-in plays. It must run after the
    membership app's receiver, which joins the member to the account of the
    address's domain. A confirmation by staff in admin, or from a browser
    where the member is signed out, records nothing: the next sign-in does.
    """
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or user.pk != email_address.user_id:
        return
    if email_address.email.strip().lower() != user.email.strip().lower():
        return
    member = get_member_for_user(user)
    if member is None:
        return

    record_activity(
        member=member, kind=SIGN_IN_KIND, properties={"on_email_confirmation": True}
    )
