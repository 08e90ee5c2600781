"""Reads behind SSO sign-in: provider links, email scope and email lookups."""

from collections.abc import Iterable

from allauth.account.models import EmailAddress
from allauth.socialaccount.models import SocialApp
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
from django.db.models import Exists, OuterRef, Q, QuerySet

from apps.membership.models import Account, Member

User = get_user_model()


def get_email_domain(email: str) -> str:
    """Return the lower-case domain of an email address, or "" without one."""
    return email.rpartition("@")[2].strip().lower()


def get_identity_provider_account(*, social_app: SocialApp | None) -> Account | None:
    """Return the account an SSO app signs people in for, or None if unlinked.

    Apps declared in settings instead of the database have no primary key, so
    they are never linked to an account.
    """
    if social_app is None or social_app.pk is None:
        return None
    return Account.objects.filter(
        identity_providers__social_app_id=social_app.pk
    ).first()


def is_email_in_identity_provider_scope(
    *, social_app: SocialApp | None, email: str
) -> bool:
    """Return whether an SSO app may vouch for an email address.

    An app linked to an account vouches only for addresses at that account's
    email domains, so one customer's identity provider cannot sign in as
    another customer's people. An unlinked app is configured by staff and
    vouches for any address.
    """
    account = get_identity_provider_account(social_app=social_app)
    if account is None:
        return True
    domains = {domain.strip().lower() for domain in account.email_domains}
    return get_email_domain(email) in domains


def list_users_with_email(*, email: str) -> QuerySet:
    """Return the users whose own or added email address is `email`, any case."""
    user_ids = EmailAddress.objects.filter(email__iexact=email).values("user_id")
    return User.objects.filter(Q(email__iexact=email) | Q(pk__in=user_ids))


def get_user_by_email(*, email: str):
    """Return the one user who owns `email`, matched in any letter case.

    A verified added address counts, and so does the user's own email field,
    which allauth stores without a verified flag. With several candidates
    (possible only in data from before the case-insensitive unique index),
    the user with a verified address wins; None when that is still ambiguous.
    """
    verified_owner_ids = set(
        EmailAddress.objects.filter(email__iexact=email, verified=True).values_list(
            "user_id", flat=True
        )
    )
    if len(verified_owner_ids) == 1:
        return User.objects.filter(pk__in=verified_owner_ids).first()
    if verified_owner_ids:
        return None
    users = list(User.objects.filter(email__iexact=email)[:2])
    return users[0] if len(users) == 1 else None


def has_verified_email(*, user) -> bool:
    """Return whether the user's own email address is marked verified."""
    return EmailAddress.objects.filter(
        user=user, email__iexact=user.email, verified=True
    ).exists()


def has_unconfirmed_email(*, user) -> bool:
    """Return whether the user's own email address still waits for confirmation."""
    return EmailAddress.objects.filter(
        user=user, email__iexact=user.email, verified=False
    ).exists()


def is_sso_required_for_email(*, email: str) -> bool:
    """Return whether an account that lists the email's domain requires SSO."""
    domain = get_email_domain(email)
    if not domain:
        return False
    return Account.objects.filter(
        email_domains__contains=[domain], is_sso_required=True
    ).exists()


def list_unconfirmed_sign_up_member_ids(*, member_ids: Iterable[int]) -> set[int]:
    """Return those members whose user signed up and has not confirmed the email.

    Such an address is only claimed: anyone can sign up with another person's
    email. Integrations must not send that person's data to the member until
    the address is confirmed. Members that staff or an integration created
    have no usable password, and SSO creates members with verified addresses
    only, so neither is returned.
    """
    members = Member.objects.filter(pk__in=list(member_ids))
    return set(members.filter(_is_unconfirmed_sign_up()).values_list("pk", flat=True))


def exclude_unconfirmed_sign_ups(members: QuerySet[Member]) -> QuerySet[Member]:
    """Return `members` without those that list_unconfirmed_sign_up_member_ids finds."""
    return members.exclude(_is_unconfirmed_sign_up())


def _is_unconfirmed_sign_up() -> Q:
    pending = EmailAddress.objects.filter(
        user=OuterRef("user"), email__iexact=OuterRef("user__email"), verified=False
    )
    return Q(Exists(pending)) & ~Q(user__password__startswith=UNUSABLE_PASSWORD_PREFIX)
