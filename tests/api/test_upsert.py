import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from apps.membership.models import Account, AccountArr, AuditEntry, Member
from apps.membership.services.members import upsert_member
from tests import factories
from tests.api.helpers import result_ids

pytestmark = pytest.mark.django_db

ACCOUNTS_URL = "/api/v1/accounts/"
MEMBERS_URL = "/api/v1/members/"
NEW_ACCOUNT = {"name": "Globex", "segment": "enterprise", "cs_tier": "high_touch"}

User = get_user_model()


def account_upsert_url(external_id: str) -> str:
    return f"{ACCOUNTS_URL}by-external-id/{external_id}/"


def member_upsert_url(external_id: str) -> str:
    return f"{MEMBERS_URL}by-external-id/{external_id}/"


def token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user)}")
    return client


@pytest.fixture
def member_token_api(member):
    """Return an API client that sends the `member` fixture's token."""
    return token_client(member.user)


# Accounts


def test_account_create_by_staff(staff_token_api, staff_user):
    response = staff_token_api.post(
        ACCOUNTS_URL,
        {"external_id": "crm-1", "email_domains": ["globex.test"], **NEW_ACCOUNT},
        format="json",
    )

    account = Account.objects.get()
    assert response.status_code == 201
    assert response.json()["id"] == account.pk
    assert response.json()["member_count"] == 0
    assert account.external_id == "crm-1"
    assert AuditEntry.objects.get(account=account).actor == staff_user


def test_account_create_taken_external_id_conflict(staff_token_api):
    factories.AccountFactory(external_id="crm-1", name="Initech")

    response = staff_token_api.post(
        ACCOUNTS_URL, {"external_id": "crm-1", **NEW_ACCOUNT}, format="json"
    )

    assert response.status_code == 409
    assert response.json()["code"] == "conflict"
    assert Account.objects.count() == 1


def test_account_create_missing_segment_rejected(staff_token_api):
    response = staff_token_api.post(
        ACCOUNTS_URL, {"name": "Globex", "cs_tier": "pooled"}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == {
        "segment": ["The segment is missing. Use one of: smb, mid_market, enterprise."],
        "code": "invalid",
    }
    assert not Account.objects.exists()


def test_account_create_unknown_field_rejected(staff_token_api):
    response = staff_token_api.post(
        ACCOUNTS_URL, {"colour": "blue", **NEW_ACCOUNT}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["non_field_errors"][0].startswith(
        "Unknown field(s): colour."
    )
    assert not Account.objects.exists()


def test_account_create_by_member_forbidden(member_token_api):
    response = member_token_api.post(ACCOUNTS_URL, NEW_ACCOUNT, format="json")

    assert response.status_code == 403
    assert response.json() == {
        "detail": "Only staff users may create or change records."
    }
    assert Account.objects.count() == 1


def test_account_create_anonymous_rejected(api_client):
    response = api_client.post(ACCOUNTS_URL, NEW_ACCOUNT, format="json")

    assert response.status_code == 401
    assert not Account.objects.exists()


def test_account_upsert_creates_then_updates(staff_token_api):
    created = staff_token_api.put(
        account_upsert_url("crm-1"), NEW_ACCOUNT, format="json"
    )
    updated = staff_token_api.patch(
        account_upsert_url("crm-1"), {"segment": "smb"}, format="json"
    )

    account = Account.objects.get()
    assert created.status_code == 201
    assert updated.status_code == 200
    assert updated.json()["id"] == account.pk
    assert updated.json()["segment"] == "smb"
    assert updated.json()["name"] == "Globex"
    assert account.external_id == "crm-1"


def test_account_upsert_records_arr(staff_token_api):
    past = timezone.localdate() - timedelta(days=400)
    staff_token_api.put(
        account_upsert_url("crm-1"), {"arr": "1000.00", **NEW_ACCOUNT}, format="json"
    )

    response = staff_token_api.put(
        account_upsert_url("crm-1"),
        {"arr": "800", "arr_effective_on": past.isoformat()},
        format="json",
    )

    account = Account.objects.get()
    assert response.status_code == 200
    assert response.json()["arr"] == "1000.00"
    history = account.arr_history.values_list("effective_on", "arr")
    assert list(history) == [
        (timezone.localdate(), Decimal("1000.00")),
        (past, Decimal("800.00")),
    ]


def test_account_upsert_arr_date_without_arr_rejected(staff_token_api):
    response = staff_token_api.put(
        account_upsert_url("crm-1"),
        {"arr_effective_on": "2024-01-01", **NEW_ACCOUNT},
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == {
        "arr_effective_on": ["arr_effective_on needs an arr value to date."]
    }


def test_account_upsert_future_arr_rejected(staff_token_api):
    later = timezone.localdate() + timedelta(days=5)

    response = staff_token_api.put(
        account_upsert_url("crm-1"),
        {"arr": "10", "arr_effective_on": later.isoformat(), **NEW_ACCOUNT},
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["arr_effective_on"][0].startswith(
        f"The ARR date {later.isoformat()} is in the future"
    )
    assert not Account.objects.exists()


def test_account_upsert_sets_parent(staff_token_api):
    parent = factories.AccountFactory(external_id="crm-parent")

    response = staff_token_api.put(
        account_upsert_url("crm-child"),
        {"parent_external_id": "crm-parent", **NEW_ACCOUNT},
        format="json",
    )

    assert response.status_code == 201
    assert response.json()["parent"] == parent.pk
    assert response.json()["parent_external_id"] == "crm-parent"


def test_account_upsert_parent_cycle_rejected(staff_token_api):
    top = factories.AccountFactory(external_id="crm-top", name="Top")
    factories.AccountFactory(external_id="crm-child", name="Child", parent=top)

    response = staff_token_api.patch(
        account_upsert_url("crm-top"),
        {"parent_external_id": "crm-child"},
        format="json",
    )

    top.refresh_from_db()
    assert response.status_code == 400
    assert response.json()["code"] == "cycle"
    assert "parent_external_id" in response.json()
    assert top.parent is None


def test_account_upsert_taken_domain_conflict(staff_token_api):
    factories.AccountFactory(email_domains=["initech.test"])

    response = staff_token_api.put(
        account_upsert_url("crm-1"),
        {"email_domains": ["initech.test"], **NEW_ACCOUNT},
        format="json",
    )

    assert response.status_code == 409
    assert list(response.json()) == ["email_domains", "code"]
    assert not Account.objects.filter(external_id="crm-1").exists()


def test_account_upsert_by_member_changes_nothing(member_token_api, member):
    account = member.account
    Account.objects.filter(pk=account.pk).update(external_id="crm-own")

    response = member_token_api.patch(
        account_upsert_url("crm-own"), {"name": "Renamed"}, format="json"
    )

    account.refresh_from_db()
    assert response.status_code == 403
    assert account.name != "Renamed"
    assert not AuditEntry.objects.exists()


def test_account_upsert_by_account_admin_forbidden(account_admin):
    client = token_client(account_admin.user)

    response = client.put(account_upsert_url("crm-new"), NEW_ACCOUNT, format="json")

    assert response.status_code == 403
    assert not Account.objects.filter(external_id="crm-new").exists()


def test_account_upsert_external_id_with_dots(staff_token_api):
    response = staff_token_api.put(
        account_upsert_url("0015g00000AbC.x"), NEW_ACCOUNT, format="json"
    )

    assert response.status_code == 201
    assert response.json()["external_id"] == "0015g00000AbC.x"


def test_account_arr_history_latest_first(staff_token_api):
    account = factories.AccountFactory()
    today = timezone.localdate()
    for days, amount in [(60, 10), (0, 30), (30, 20)]:
        AccountArr.objects.create(
            account=account, effective_on=today - timedelta(days=days), arr=amount
        )

    response = staff_token_api.get(f"{ACCOUNTS_URL}{account.pk}/arr-history/")

    assert response.status_code == 200
    assert [row["arr"] for row in response.json()["results"]] == [
        "30.00",
        "20.00",
        "10.00",
    ]
    assert set(response.json()["results"][0]) == {
        "effective_on",
        "arr",
        "source",
        "recorded_at",
    }


def test_account_arr_history_own_account_staff_only(member_api, member):
    AccountArr.objects.create(
        account=member.account, effective_on=timezone.localdate(), arr=5
    )

    response = member_api.get(f"{ACCOUNTS_URL}{member.account_id}/arr-history/")

    assert response.status_code == 403
    assert "staff only" in response.json()["detail"]


def test_account_arr_history_other_account_not_found(member_api):
    other = factories.AccountFactory()

    response = member_api.get(f"{ACCOUNTS_URL}{other.pk}/arr-history/")

    assert response.status_code == 404


# Members


def test_member_upsert_creates_user_and_member(staff_token_api):
    account = factories.AccountFactory(external_id="crm-1")

    response = staff_token_api.put(
        member_upsert_url("usr-1"),
        {
            "email": "Ada@Globex.test",
            "display_name": "Ada",
            "account_external_id": "crm-1",
            "role": "champion",
        },
        format="json",
    )

    member = Member.objects.get(external_id="usr-1")
    assert response.status_code == 201
    assert response.json()["id"] == member.pk
    assert response.json()["email"] == "ada@globex.test"
    assert member.account == account
    assert member.role == "champion"
    assert member.user.has_usable_password() is False


def test_member_upsert_updates_existing(staff_token_api):
    member = factories.MemberFactory(external_id="usr-1", display_name="Ada")

    response = staff_token_api.patch(
        member_upsert_url("usr-1"),
        {"display_name": "Ada L.", "lifecycle_stage": "adopting"},
        format="json",
    )

    member.refresh_from_db()
    assert response.status_code == 200
    assert member.display_name == "Ada L."
    assert member.lifecycle_stage == "adopting"


def test_member_upsert_adopts_member_without_external_id(staff_token_api):
    member = factories.MemberFactory(user__email="ada@acme.test")

    response = staff_token_api.put(
        member_upsert_url("usr-1"), {"email": "ADA@acme.test"}, format="json"
    )

    member.refresh_from_db()
    assert response.status_code == 200
    assert member.external_id == "usr-1"
    assert Member.objects.count() == 1


def test_member_upsert_email_of_other_external_id_conflict(staff_token_api):
    other = factories.MemberFactory(
        user__email="ada@acme.test", external_id="usr-9", display_name="Ada"
    )

    response = staff_token_api.put(
        member_upsert_url("usr-1"),
        {"email": "ada@acme.test", "display_name": "Changed"},
        format="json",
    )

    other.refresh_from_db()
    assert response.status_code == 409
    assert response.json() == {
        "email": [
            f"The email ada@acme.test belongs to member {other.pk}, whose external "
            "ID is 'usr-9', not 'usr-1'."
        ],
        "code": "conflict",
    }
    assert other.display_name == "Ada"
    assert not Member.objects.filter(external_id="usr-1").exists()


def test_member_upsert_email_change_conflict(staff_token_api):
    member = factories.MemberFactory(user__email="ada@acme.test", external_id="usr-1")

    response = staff_token_api.put(
        member_upsert_url("usr-1"), {"email": "eve@acme.test"}, format="json"
    )

    member.user.refresh_from_db()
    assert response.status_code == 409
    assert member.user.email == "ada@acme.test"


def test_member_upsert_new_without_email_rejected(staff_token_api):
    response = staff_token_api.put(
        member_upsert_url("usr-1"), {"display_name": "Ada"}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["email"] == [
        "No member has the external ID 'usr-1', and creating one needs an email."
    ]


def test_member_upsert_unknown_account_rejected(staff_token_api):
    response = staff_token_api.put(
        member_upsert_url("usr-1"),
        {"email": "ada@acme.test", "account_external_id": "crm-none"},
        format="json",
    )

    assert response.status_code == 400
    assert list(response.json()) == ["account_external_id", "code"]
    assert not User.objects.filter(email="ada@acme.test").exists()


def test_member_upsert_by_member_changes_nothing(member_token_api, member):
    Member.objects.filter(pk=member.pk).update(external_id="usr-self")

    response = member_token_api.patch(
        member_upsert_url("usr-self"), {"role": "champion"}, format="json"
    )
    create = member_token_api.put(
        member_upsert_url("usr-new"), {"email": "new@acme.test"}, format="json"
    )

    member.refresh_from_db()
    assert response.status_code == 403
    assert create.status_code == 403
    assert member.role == Member.Role.MEMBER
    assert not User.objects.filter(email="new@acme.test").exists()


def test_member_upsert_by_account_admin_forbidden(account_admin, member):
    Member.objects.filter(pk=member.pk).update(external_id="usr-colleague")
    client = token_client(account_admin.user)

    response = client.patch(
        member_upsert_url("usr-colleague"), {"display_name": "X"}, format="json"
    )

    member.refresh_from_db()
    assert response.status_code == 403
    assert member.display_name == ""


def test_members_list_token_member_sees_only_self(member_token_api, member):
    factories.MemberFactory(account=member.account)

    response = member_token_api.get(MEMBERS_URL)

    assert result_ids(response) == [member.pk]


def test_schema_documents_upsert_paths(api_client):
    response = api_client.get("/api/schema/", {"format": "json"})

    paths = response.json()["paths"]
    assert set(paths["/api/v1/accounts/by-external-id/{external_id}/"]) == {
        "put",
        "patch",
    }
    assert set(paths["/api/v1/members/by-external-id/{external_id}/"]) == {
        "put",
        "patch",
    }
    assert "get" in paths["/api/v1/accounts/{id}/arr-history/"]
    assert "post" in paths["/api/v1/accounts/"]


@pytest.mark.django_db(transaction=True)
def test_member_upsert_concurrent_same_person_creates_once():
    barrier = threading.Barrier(2)
    outcomes = []

    def upsert():
        try:
            barrier.wait(timeout=5)
            outcomes.append(
                upsert_member(external_id="usr-1", email="ada@globex.test")[1]
            )
        except Exception as error:  # collected for the asserts below
            outcomes.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=upsert) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(outcomes) == [False, True]
    assert Member.objects.filter(external_id="usr-1").count() == 1
    assert User.objects.filter(email="ada@globex.test").count() == 1
