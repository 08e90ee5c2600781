"""Password sign-in and sign-up rules, deactivation and sign-in times.

Sign-in through OpenID Connect and SAML is covered in test_sso_oidc.py and
test_sso_saml.py.
"""

import datetime
import re
import threading

import pytest
from django.conf import settings
from django.core import mail
from django.db import connection

from apps.membership.models import AuditEntry, Member
from apps.membership.services.access import (
    deactivate_member,
    reactivate_member,
    record_sign_in,
)
from apps.membership.services.roles import sync_role_groups
from rm6.errors import DomainError
from tests import factories
from tests.factories import PASSWORD

SSO_REQUIRED_MESSAGE = (
    "Your company requires single sign-on for the hub, so password sign-in is "
    "turned off for your address. Sign in with your company's SSO instead."
)
NEW_PASSWORD = "a-long-unusual-passphrase"


def sign_in(client, login: str, password: str = PASSWORD):
    return client.post("/accounts/login/", {"login": login, "password": password})


def sign_up(client, email: str):
    return client.post(
        "/accounts/signup/",
        {"email": email, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )


def signed_in_user_id(client) -> str | None:
    return client.session.get("_auth_user_id")


@pytest.fixture(autouse=True)
def no_rate_limits(settings):
    """Turn off allauth's rate limits, which these tests do not exercise.

    allauth counts attempts per address and per IP in the shared Redis cache,
    so a rerun within minutes would find limits used up by the previous run.
    """
    settings.ACCOUNT_RATE_LIMITS = False


@pytest.fixture
def acme(db):
    return factories.AccountFactory(email_domains=["acme.test"])


@pytest.fixture
def alice(acme):
    return factories.MemberFactory(
        account=acme, user__username="alice", user__email="alice@acme.test"
    )


@pytest.mark.parametrize(
    "login", ["alice@acme.test", "Alice@Acme.test", "ALICE@ACME.TEST"]
)
def test_password_sign_in_email_any_case(client, alice, login):
    response = sign_in(client, login)

    assert response.status_code == 302
    assert signed_in_user_id(client) == str(alice.user_id)


def test_password_sign_up_email_case_variant_taken(client, alice):
    response = sign_up(client, "ALICE@acme.test")

    assert response.status_code == 200
    assert response.context["form"].errors["email"] == [
        "A user is already registered with this email address."
    ]
    assert Member.objects.count() == 1


def test_password_sign_in_sso_required_rejected(client, acme, alice):
    acme.is_sso_required = True
    acme.save(update_fields=["is_sso_required"])

    response = sign_in(client, "alice@acme.test")

    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == [SSO_REQUIRED_MESSAGE]
    assert settings.SESSION_COOKIE_NAME not in client.cookies
    assert signed_in_user_id(client) is None
    alice.refresh_from_db()
    assert alice.first_signed_in_at is None


def test_sso_required_wrong_password_shows_message(client, acme, alice):
    acme.is_sso_required = True
    acme.save(update_fields=["is_sso_required"])

    response = sign_in(client, "alice@acme.test", password="not-her-password")

    assert response.context["form"].non_field_errors() == [SSO_REQUIRED_MESSAGE]
    assert signed_in_user_id(client) is None


def test_sso_required_other_domain_member_rejected(client, db):
    account = factories.AccountFactory(
        email_domains=["acme.test"], is_sso_required=True
    )
    consultant = factories.MemberFactory(
        account=account, user__username="kim", user__email="kim@partner.test"
    )

    response = sign_in(client, "kim@partner.test")

    assert response.context["form"].non_field_errors() == [SSO_REQUIRED_MESSAGE]
    assert signed_in_user_id(client) is None
    consultant.refresh_from_db()
    assert consultant.first_signed_in_at is None


def test_password_sign_up_sso_required_rejected(client, db):
    factories.AccountFactory(email_domains=["acme.test"], is_sso_required=True)

    response = sign_up(client, "new@acme.test")

    assert response.status_code == 200
    assert response.context["form"].errors["email"] == [SSO_REQUIRED_MESSAGE]
    assert not Member.objects.exists()
    assert signed_in_user_id(client) is None


def test_password_sign_in_deactivated_rejected(client, alice):
    deactivate_member(member=alice, reason="Left the company.")

    response = sign_in(client, "alice@acme.test")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/inactive/"
    assert signed_in_user_id(client) is None


def test_password_sign_in_deactivated_active_user_rejected(client, alice):
    # An is_active flag set back by hand leaves the member deactivated.
    deactivate_member(member=alice)
    alice.user.is_active = True
    alice.user.save(update_fields=["is_active"])

    response = sign_in(client, "alice@acme.test")

    assert response["Location"] == "/accounts/inactive/"
    assert signed_in_user_id(client) is None


def test_deactivate_member_blocks_user_and_records_audit(alice, staff_user):
    sync_role_groups(alice)

    deactivate_member(member=alice, actor=staff_user, reason="Left the company.")

    alice.refresh_from_db()
    alice.user.refresh_from_db()
    assert alice.deactivated_at is not None
    assert alice.deactivation_reason == "Left the company."
    assert alice.user.is_active is False
    assert list(alice.user.groups.values_list("name", flat=True)) == []
    entry = AuditEntry.objects.get()
    assert entry.action == "member.deactivated"
    assert entry.actor == staff_user
    assert entry.member == alice
    assert entry.account == alice.account
    assert entry.details == {"reason": "Left the company."}


def test_deactivate_member_twice_changes_nothing(alice):
    deactivate_member(member=alice, reason="Left the company.")
    first_deactivated_at = Member.objects.get(pk=alice.pk).deactivated_at

    deactivate_member(member=alice, reason="Another reason.")

    alice.refresh_from_db()
    assert alice.deactivated_at == first_deactivated_at
    assert alice.deactivation_reason == "Left the company."
    assert AuditEntry.objects.count() == 1


def test_deactivate_member_rejects_too_long_reason(alice):
    with pytest.raises(DomainError) as raised:
        deactivate_member(member=alice, reason="x" * 301)

    assert raised.value.message == (
        "The reason is 301 characters long; the maximum is 300. Shorten it."
    )
    alice.refresh_from_db()
    assert alice.deactivated_at is None


def test_deactivate_member_ends_existing_session(client, alice):
    client.force_login(alice.user)
    assert client.get("/").status_code == 200

    deactivate_member(member=alice)

    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/"


def test_reactivate_member_allows_password_sign_in(client, alice, staff_user):
    deactivate_member(member=alice, reason="Left the company.")

    reactivate_member(member=alice, actor=staff_user)

    alice.refresh_from_db()
    assert alice.deactivated_at is None
    assert alice.deactivation_reason == ""
    assert alice.user.is_active is True
    assert list(alice.user.groups.values_list("name", flat=True)) == ["role: member"]
    entry = AuditEntry.objects.get(action="member.reactivated")
    assert entry.actor == staff_user
    assert entry.details == {"previous_reason": "Left the company."}
    sign_in(client, "alice@acme.test")
    assert signed_in_user_id(client) == str(alice.user_id)


def test_reactivate_member_merged_duplicate_rejected(alice, acme):
    duplicate = factories.MemberFactory(account=acme)
    deactivate_member(member=duplicate)
    Member.objects.filter(pk=duplicate.pk).update(merged_into=alice)

    with pytest.raises(DomainError) as raised:
        reactivate_member(member=duplicate)

    assert raised.value.message == (
        f"Member {duplicate.pk} was merged into member {alice.pk}; "
        "reactivate that member instead."
    )
    duplicate.user.refresh_from_db()
    assert duplicate.user.is_active is False


def test_password_sign_up_unmatched_domain_queued(client, acme):
    response = sign_up(client, "sam@elsewhere.test")

    assert response.status_code == 302
    member = Member.objects.get(user__email="sam@elsewhere.test")
    assert member.account is None


def test_password_sign_up_mandatory_verification_joins_later(client, acme, settings):
    settings.ACCOUNT_EMAIL_VERIFICATION = "mandatory"

    response = sign_up(client, "Sam@Acme.test")

    assert response["Location"] == "/accounts/confirm-email/"
    assert not Member.objects.exists()
    confirm_url = re.search(
        r"http://testserver(/accounts/confirm-email/\S+/)", mail.outbox[0].body
    )
    client.post(confirm_url.group(1))
    member = Member.objects.get(user__email="sam@acme.test")
    assert member.account == acme


def test_password_sign_in_records_times(client, alice):
    sign_in(client, "alice@acme.test")
    alice.refresh_from_db()
    first = alice.first_signed_in_at
    client.logout()

    sign_in(client, "alice@acme.test")

    alice.refresh_from_db()
    assert first is not None
    assert alice.first_signed_in_at == first
    assert alice.last_signed_in_at > first


def test_staff_sign_in_without_member_allowed(client, db):
    staff = factories.StaffFactory(username="olga")

    sign_in(client, staff.email)

    assert signed_in_user_id(client) == str(staff.pk)


def test_record_sign_in_keeps_latest_time(alice):
    later = datetime.datetime(2026, 5, 2, 9, 0, tzinfo=datetime.UTC)
    earlier = datetime.datetime(2026, 5, 1, 9, 0, tzinfo=datetime.UTC)

    record_sign_in(member=alice, at=later)
    record_sign_in(member=alice, at=earlier)

    alice.refresh_from_db()
    assert alice.first_signed_in_at == later
    assert alice.last_signed_in_at == later


@pytest.mark.django_db(transaction=True)
def test_record_sign_in_concurrent_keeps_latest():
    member = factories.MemberFactory()
    base = datetime.datetime(2026, 5, 1, 9, 0, tzinfo=datetime.UTC)
    times = [base + datetime.timedelta(minutes=minute) for minute in range(8)]
    barrier = threading.Barrier(len(times))
    errors = []

    def sign_in_at(at):
        try:
            barrier.wait(timeout=10)
            record_sign_in(member=Member.objects.get(pk=member.pk), at=at)
        except Exception as error:  # reported by the assert below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=sign_in_at, args=(at,)) for at in times]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    member.refresh_from_db()
    assert member.first_signed_in_at in times
    assert member.last_signed_in_at == max(times)
