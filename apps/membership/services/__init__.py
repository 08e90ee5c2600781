from django.contrib.auth import get_user_model
from django.db import transaction

from apps.membership.models import Account, Member
from apps.membership.names import validate_display_name
from apps.membership.services.roles import sync_role_groups

User = get_user_model()


def find_account_for_email(email: str) -> Account | None:
    """Return the account that lists the email's domain, if exactly one does."""
    domain = email.rsplit("@", 1)[-1].strip().lower()
    if not domain:
        return None
    matches = list(Account.objects.filter(email_domains__contains=[domain])[:2])
    return matches[0] if len(matches) == 1 else None


@transaction.atomic
def create_member(
    *,
    user,
    display_name: str = "",
    role: str = Member.Role.MEMBER,
    time_zone: str = "UTC",
    account: Account | None = None,
    match_domain: bool = True,
) -> Member:
    """Create the member for a user, joining the account that owns its domain.

    A user whose email domain matches no account, or several, gets a member
    without an account, which staff assign from the review queue in admin.
    With `match_domain` false the member waits without an account, for an
    address whose ownership is not proven yet. Calling it again for the same
    user returns the existing member. A non-empty display name that hides
    characters or imitates another member's raises DomainError, and then no
    member is created.
    """
    if display_name and not Member.objects.filter(user=user).exists():
        validate_display_name(display_name)
    if account is None and match_domain:
        account = find_account_for_email(user.email)
    member, _ = Member.objects.get_or_create(
        user=user,
        defaults={
            "account": account,
            "display_name": display_name,
            "role": role,
            "time_zone": time_zone,
        },
    )
    sync_role_groups(member)
    return member


@transaction.atomic
def assign_member_account(*, member: Member, account: Account) -> Member:
    """Attach a member from the review queue to an account."""
    member.account = account
    member.save(update_fields=["account"])
    sync_role_groups(member)
    return member


@transaction.atomic
def join_account_by_verified_email(*, member: Member) -> Member:
    """Join a member without an account to the account of their email domain.

    Called once the member's email is verified; a member who already has an
    account, or whose domain matches no single account, is left as is.
    """
    member = Member.objects.select_for_update().select_related("user").get(pk=member.pk)
    if member.account_id is not None:
        return member
    account = find_account_for_email(member.user.email)
    if account is None:
        return member
    return assign_member_account(member=member, account=account)
