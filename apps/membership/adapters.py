"""django-allauth adapters: the hub's sign-in and sign-up rules for allauth.

The rules live in `apps.membership.services.access` and
`apps.membership.services.sso`. These classes call them at allauth's hooks and
turn a `DomainError` into a form error, a message or allauth's inactive page.
"""

import logging

from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.adapter import get_adapter as get_account_adapter
from allauth.account.forms import SignupForm
from allauth.account.internal.stagekit import clear_login
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from allauth.socialaccount.forms import SignupForm as SocialSignupForm
from allauth.socialaccount.providers.base import AuthProcess
from django import forms
from django.contrib import messages
from django.shortcuts import redirect

from apps.membership.selectors.sso import (
    get_user_by_email,
    is_email_in_identity_provider_scope,
)
from apps.membership.services.access import (
    check_member_active,
    check_password_sign_in,
    create_member_on_sign_up,
)
from apps.membership.services.sso import (
    check_sso_sign_in,
    check_sso_sign_up,
    create_sso_member,
)
from rm6.errors import DomainError

logger = logging.getLogger(__name__)


class MemberAccountAdapter(DefaultAccountAdapter):
    """Give every person who signs up a member, and apply the sign-in rules."""

    def save_user(self, request, user, form, commit=True):
        user = super().save_user(request, user, form, commit=commit)
        # A sign-up through an SSO provider gets its member from the social
        # account adapter, which has the provider at hand.
        if commit and not isinstance(form, SocialSignupForm):
            create_member_on_sign_up(
                user=user, is_email_verified=self.is_email_verified(request, user.email)
            )
        return user

    def authenticate(self, request, **credentials):
        """Check the password, rejecting first an address that requires SSO.

        The form shows the rejection as its error, before any session is
        written. The address is checked before the password, so that a member
        without a password, who always signed in through SSO, learns what to
        do. A second check after the password covers a member whose account
        requires SSO but does not list the address's domain.
        """
        email = credentials.get("email") or credentials.get("username") or ""
        _raise_as_validation_error(check_password_sign_in, email=email)
        user = super().authenticate(request, **credentials)
        if user is not None:
            _raise_as_validation_error(check_password_sign_in, email=email, user=user)
        return user

    def pre_login(self, request, user, **kwargs):
        """Reject a deactivated member, and a non-SSO sign-in that needs SSO.

        Every sign-in passes here: password, SSO, and the ones that follow
        sign-up or email confirmation.
        """
        response = super().pre_login(request, user, **kwargs)
        if response is not None:
            return response
        sociallogin = (kwargs.get("signal_kwargs") or {}).get("sociallogin")
        try:
            check_member_active(user=user)
            if sociallogin is None:
                check_password_sign_in(email=user.email, user=user)
            else:
                check_sso_sign_in(user=user, social_app=sociallogin.provider.app)
        except DomainError as error:
            clear_login(request)
            return respond_sign_in_rejected(request, user, error)
        return None


class MemberSignupForm(SignupForm):
    """allauth's sign-up form, rejecting addresses whose company requires SSO."""

    def clean_email(self):
        email = super().clean_email()
        _raise_as_validation_error(check_password_sign_in, email=email)
        return email


class MemberSocialAccountAdapter(DefaultSocialAccountAdapter):
    """Link SSO sign-ins to existing members safely and create new members.

    allauth signs in to an existing user whose email matches a verified
    address from the provider (SOCIALACCOUNT_EMAIL_AUTHENTICATION). This
    adapter matches that address in any letter case, and only within the
    email domains of the account the provider is linked to.
    """

    def pre_social_login(self, request, sociallogin):
        """Reject the sign-in before allauth connects or creates anything."""
        process = sociallogin.state.get("process")
        if process in (AuthProcess.CONNECT, AuthProcess.REDIRECT):
            return
        social_app = sociallogin.provider.app
        try:
            if sociallogin.is_existing:
                check_sso_sign_in(user=sociallogin.user, social_app=social_app)
            else:
                emails = [address.email for address in sociallogin.email_addresses]
                check_sso_sign_up(social_app=social_app, emails=emails)
        except DomainError as error:
            logger.info(
                "SSO sign-in rejected: %s (provider %s)",
                error.code,
                sociallogin.account.provider,
            )
            raise ImmediateHttpResponse(
                respond_sign_in_rejected(request, sociallogin.user, error)
            ) from None

    def can_authenticate_by_email(self, login, email):
        if not super().can_authenticate_by_email(login, email):
            return False
        return is_email_in_identity_provider_scope(
            social_app=login.provider.app, email=email
        )

    def authenticate_by_email(self, sociallogin):
        """Return the existing user and address a verified email matches.

        allauth's own lookup compares lower-cased addresses; this one ignores
        letter case on both sides, so an address stored as "Alice@Acme.test"
        also matches.
        """
        for address in sociallogin.email_addresses:
            if not address.verified:
                continue
            if not self.can_authenticate_by_email(sociallogin, address.email):
                continue
            user = get_user_by_email(email=address.email)
            if user is not None:
                return user, address.email
        return None

    def save_user(self, request, sociallogin, form=None):
        user = super().save_user(request, sociallogin, form=form)
        create_sso_member(user=user, social_app=sociallogin.provider.app)
        return user

    def on_authentication_error(
        self, request, provider, error=None, exception=None, extra_context=None
    ):
        logger.warning(
            "SSO sign-in failed: %s (provider %s)",
            error,
            getattr(provider, "sub_id", None),
            exc_info=exception,
        )
        super().on_authentication_error(
            request,
            provider,
            error=error,
            exception=exception,
            extra_context=extra_context,
        )


def respond_sign_in_rejected(request, user, error: DomainError):
    """Return allauth's inactive page, or the sign-in page with the message."""
    if error.code == "inactive":
        return get_account_adapter(request).respond_user_inactive(request, user)
    messages.error(request, error.message)
    return redirect("account_login")


def _raise_as_validation_error(check, **kwargs) -> None:
    try:
        check(**kwargs)
    except DomainError as error:
        raise forms.ValidationError(error.message, code=error.code) from None
