from django.db.models import QuerySet

from apps.membership.models import Account, Member


def get_member_for_user(user) -> Member | None:
    """Return the signed-in user's member, or None for staff without one."""
    if not user.is_authenticated:
        return None
    try:
        return user.member
    except Member.DoesNotExist:
        return None


def list_visible_accounts(*, user) -> QuerySet[Account]:
    """Return the accounts a user may read: all for staff, else their own."""
    accounts = Account.objects.select_related("owner")
    if user.is_staff:
        return accounts
    member = get_member_for_user(user)
    if member is None or member.account_id is None:
        return accounts.none()
    return accounts.filter(pk=member.account_id)


def list_visible_members(*, user) -> QuerySet[Member]:
    """Return the members a user may read: all for staff, else only themselves.

    An account admin also reads the members of their own account, unless the
    admin's member is deactivated. A deactivated admin no longer acts for the
    account, even when staff left the user active.
    """
    members = Member.objects.select_related("user", "account")
    if user.is_staff:
        return members
    member = get_member_for_user(user)
    if member is None:
        return members.none()
    is_admin = member.role == Member.Role.ADMIN and not member.is_deactivated
    if is_admin and member.account_id is not None:
        return members.filter(account_id=member.account_id)
    return members.filter(pk=member.pk)


def list_members_awaiting_account() -> QuerySet[Member]:
    """Return members whose email domain matched no account."""
    return Member.objects.filter(account__isnull=True).select_related("user")
