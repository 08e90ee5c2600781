"""Sign-in through a real OpenID Connect provider, in a real browser.

Each test starts oidc-provider (an npm package) on 127.0.0.1 and drives
chromium through allauth's views on pytest-django's live server: allauth's
confirmation page, the provider's sign-in and consent pages, and allauth's
callback, which fetches the token and the userinfo claims.
"""

import pytest
from allauth.socialaccount.models import SocialAccount
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore

from apps.membership.models import Member
from apps.membership.services.access import deactivate_member
from tests import factories

pytestmark = pytest.mark.browser

User = get_user_model()


def sign_in_through_oidc(page, *, base_url: str, provider_id: str, login: str):
    """Sign in on the hub through the provider, as the provider account `login`."""
    page.goto(f"{base_url}/accounts/oidc/{provider_id}/login/")
    page.get_by_role("button", name="Continue").click()

    # oidc-provider's development sign-in page accepts any password.
    page.fill("input[name=login]", login)
    page.fill("input[name=password]", "any-password")
    page.get_by_role("button", name="Sign-in").click()
    page.get_by_role("button", name="Continue").click()

    page.wait_for_url(f"{base_url}/**")
    page.wait_for_load_state()


def get_signed_in_user_id(page, base_url: str) -> str | None:
    """Return the user ID in the browser's hub session, or None if signed out."""
    for cookie in page.context.cookies(base_url):
        if cookie["name"] == settings.SESSION_COOKIE_NAME:
            return SessionStore(session_key=cookie["value"]).get("_auth_user_id")
    return None


def test_oidc_sign_in_creates_member_in_linked_account(
    page, live_server_url, start_oidc_server, add_oidc_app
):
    account = factories.AccountFactory(email_domains=["acme.test"])
    server = start_oidc_server(
        accounts={"carol": {"email": "carol@acme.test", "email_verified": True}},
        provider_ids=["acme-oidc"],
    )
    add_oidc_app(server=server, provider_id="acme-oidc", account=account)

    sign_in_through_oidc(
        page, base_url=live_server_url, provider_id="acme-oidc", login="carol"
    )

    user = User.objects.get(email="carol@acme.test")
    assert get_signed_in_user_id(page, live_server_url) == str(user.pk)
    assert page.url == f"{live_server_url}/"
    assert user.member.account == account
    assert SocialAccount.objects.get(user=user).provider == "acme-oidc"
    assert SocialAccount.objects.get(user=user).uid == "carol"
    assert user.member.first_signed_in_at is not None
    assert user.member.last_signed_in_at == user.member.first_signed_in_at


def test_oidc_unmatched_domain_queued_for_review(
    page, live_server_url, start_oidc_server, add_oidc_app
):
    factories.AccountFactory(email_domains=["acme.test"])
    server = start_oidc_server(
        accounts={"dana": {"email": "dana@elsewhere.test", "email_verified": True}},
        provider_ids=["shared-oidc"],
    )
    add_oidc_app(server=server, provider_id="shared-oidc")

    sign_in_through_oidc(
        page, base_url=live_server_url, provider_id="shared-oidc", login="dana"
    )

    member = Member.objects.get(user__email="dana@elsewhere.test")
    assert get_signed_in_user_id(page, live_server_url) == str(member.user_id)
    assert member.account is None


def test_oidc_email_case_variant_links_member(
    page, live_server_url, start_oidc_server, add_oidc_app
):
    account = factories.AccountFactory(email_domains=["acme.test"])
    member = factories.MemberFactory(
        account=account, user__username="alice", user__email="alice@acme.test"
    )
    server = start_oidc_server(
        accounts={"alice": {"email": "Alice@ACME.test", "email_verified": True}},
        provider_ids=["acme-oidc"],
    )
    add_oidc_app(server=server, provider_id="acme-oidc", account=account)

    sign_in_through_oidc(
        page, base_url=live_server_url, provider_id="acme-oidc", login="alice"
    )

    assert get_signed_in_user_id(page, live_server_url) == str(member.user_id)
    assert User.objects.filter(email__iexact="alice@acme.test").count() == 1
    assert SocialAccount.objects.get(provider="acme-oidc").user_id == member.user_id
    assert Member.objects.count() == 1


def test_oidc_unverified_email_does_not_take_over_member(
    page, live_server_url, start_oidc_server, add_oidc_app
):
    account = factories.AccountFactory(email_domains=["acme.test"])
    member = factories.MemberFactory(
        account=account, user__username="alice", user__email="alice@acme.test"
    )
    server = start_oidc_server(
        accounts={"mallory": {"email": "alice@acme.test", "email_verified": False}},
        provider_ids=["acme-oidc"],
    )
    add_oidc_app(server=server, provider_id="acme-oidc", account=account)

    sign_in_through_oidc(
        page, base_url=live_server_url, provider_id="acme-oidc", login="mallory"
    )

    assert get_signed_in_user_id(page, live_server_url) is None
    assert page.url == f"{live_server_url}/accounts/login/"
    assert page.get_by_text(
        "A member with the email address alice@acme.test already exists"
    ).is_visible()
    assert User.objects.filter(email__iexact="alice@acme.test").count() == 1
    assert not SocialAccount.objects.exists()
    member.refresh_from_db()
    assert member.first_signed_in_at is None


def test_oidc_other_accounts_provider_rejected(
    page, live_server_url, start_oidc_server, add_oidc_app
):
    acme = factories.AccountFactory(email_domains=["acme.test"])
    globex = factories.AccountFactory(email_domains=["globex.test"])
    member = factories.MemberFactory(
        account=globex, user__username="hank", user__email="hank@globex.test"
    )
    server = start_oidc_server(
        accounts={"hank": {"email": "hank@globex.test", "email_verified": True}},
        provider_ids=["acme-oidc"],
    )
    add_oidc_app(server=server, provider_id="acme-oidc", account=acme)

    sign_in_through_oidc(
        page, base_url=live_server_url, provider_id="acme-oidc", login="hank"
    )

    assert get_signed_in_user_id(page, live_server_url) is None
    assert User.objects.filter(email__iexact="hank@globex.test").count() == 1
    assert not SocialAccount.objects.exists()
    member.user.refresh_from_db()
    assert member.user.has_usable_password()


def test_oidc_deactivated_member_rejected(
    page, live_server_url, start_oidc_server, add_oidc_app
):
    account = factories.AccountFactory(email_domains=["acme.test"])
    member = factories.MemberFactory(
        account=account, user__username="erin", user__email="erin@acme.test"
    )
    deactivate_member(member=member, reason="Left the company.")
    server = start_oidc_server(
        accounts={"erin": {"email": "erin@acme.test", "email_verified": True}},
        provider_ids=["acme-oidc"],
    )
    add_oidc_app(server=server, provider_id="acme-oidc", account=account)

    sign_in_through_oidc(
        page, base_url=live_server_url, provider_id="acme-oidc", login="erin"
    )

    assert get_signed_in_user_id(page, live_server_url) is None
    assert page.url == f"{live_server_url}/accounts/inactive/"
    assert not SocialAccount.objects.exists()
    member.refresh_from_db()
    assert member.first_signed_in_at is None
