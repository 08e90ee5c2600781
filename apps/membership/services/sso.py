"""Rules for signing in and signing up through an SSO provider."""

from allauth.socialaccount.models import SocialApp
from django.db import transaction

from apps.membership.models import Member
from apps.membership.selectors import get_member_for_user
from apps.membership.selectors.sso import (
    get_identity_provider_account,
    has_verified_email,
    is_sso_required_for_email,
    list_users_with_email,
)
from apps.membership.services import create_member
from apps.membership.services.access import check_member_active
from rm6.errors import DomainError

WRONG_PROVIDER_MESSAGE = (
    "Your company requires sign-in through its own SSO provider, and "
    "{provider} is not one of them. Sign in with your company's SSO instead."
)
EMAIL_NOT_CONFIRMED_MESSAGE = (
    "A member with the email address {email} already exists, and {provider} "
    "did not confirm that this address is yours, so you were not signed in. "
    "Sign in with your email address and password, or ask your IT team to "
    "mark the address as verified in {provider}."
)


def check_sso_sign_in(*, user, social_app: SocialApp | None) -> None:
    """Raise DomainError unless an existing user may sign in through this app.

    A deactivated member is rejected. A member of an account that requires SSO
    must come through one of that account's own providers.
    """
    check_member_active(user=user)

    member = get_member_for_user(user)
    account = member.account if member is not None else None
    if account is None or not account.is_sso_required:
        return
    if get_identity_provider_account(social_app=social_app) != account:
        raise DomainError(
            WRONG_PROVIDER_MESSAGE.format(provider=_provider_name(social_app)),
            code="sso_required",
        )


def check_sso_sign_up(*, social_app: SocialApp | None, emails: list[str]) -> None:
    """Raise DomainError unless a new user may be created from an SSO sign-in.

    Call it once allauth has found no user for the sign-in, neither by the
    SSO account nor by a verified, trusted email. An address that still
    matches a user then was not confirmed by the provider, or lies outside
    the domains its account may vouch for. Signing in as that user would
    hand it to whoever controls the provider's account, and a second user
    with the same address would break "one person, one member".

    A provider linked to no account cannot sign up people whose domain
    belongs to an account that requires SSO: they use that account's own.
    """
    provider = _provider_name(social_app)
    for email in emails:
        if list_users_with_email(email=email).exists():
            raise DomainError(
                EMAIL_NOT_CONFIRMED_MESSAGE.format(email=email, provider=provider),
                code="email_taken",
            )

    if get_identity_provider_account(social_app=social_app) is not None:
        return
    for email in emails:
        if is_sso_required_for_email(email=email):
            raise DomainError(
                WRONG_PROVIDER_MESSAGE.format(provider=provider),
                code="sso_required",
            )


@transaction.atomic
def create_sso_member(*, user, social_app: SocialApp | None) -> Member | None:
    """Create the member for a user who signed up through an SSO provider.

    The member joins the account the provider is linked to. Through an
    unlinked provider it joins the account that lists the domain of the
    user's verified email, or waits in the review queue when none does. With
    an unverified email no member is created yet:
    `create_member_on_email_verification` creates it once the person
    confirms the address.
    """
    account = get_identity_provider_account(social_app=social_app)
    if account is not None:
        return create_member(user=user, account=account)
    if has_verified_email(user=user):
        return create_member(user=user)
    return None


def _provider_name(social_app: SocialApp | None) -> str:
    if social_app is None:
        return "your identity provider"
    return social_app.name or social_app.provider_id or social_app.provider
