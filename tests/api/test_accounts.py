from datetime import date

import pytest
from rest_framework.authtoken.models import Token

from apps.membership.models import Account
from tests import factories
from tests.api.helpers import count_queries, result_ids

URL = "/api/v1/accounts/"

pytestmark = pytest.mark.django_db


def test_accounts_list_anonymous_rejected(api_client):
    factories.AccountFactory()

    response = api_client.get(URL)

    assert response.status_code == 401
    assert response.json() == {
        "detail": "Authentication credentials were not provided."
    }


def test_accounts_list_staff_sees_all(staff_api):
    first = factories.AccountFactory()
    second = factories.AccountFactory()

    response = staff_api.get(URL)

    assert response.status_code == 200
    assert result_ids(response) == [first.pk, second.pk]


def test_accounts_list_member_sees_own_account_only(member_api, member):
    factories.AccountFactory()

    response = member_api.get(URL)

    assert result_ids(response) == [member.account_id]


def test_accounts_list_unassigned_member_sees_none(api_client):
    waiting = factories.MemberFactory(account=None)
    factories.AccountFactory()
    api_client.force_login(waiting.user)

    response = api_client.get(URL)

    assert response.status_code == 200
    assert result_ids(response) == []


def test_accounts_list_user_without_member_sees_none(api_client):
    user = factories.UserFactory()
    factories.AccountFactory()
    api_client.force_login(user)

    response = api_client.get(URL)

    assert result_ids(response) == []


def test_accounts_retrieve_fields(staff_api, staff_user):
    account = factories.AccountFactory(
        name="Globex",
        external_id="crm-42",
        email_domains=["globex.test"],
        segment=Account.Segment.ENTERPRISE,
        cs_tier=Account.CsTier.HIGH_TOUCH,
        arr="120000.50",
        contract_start=date(2024, 3, 1),
        renewal_date=date(2025, 3, 1),
        owner=staff_user,
        time_zone="Europe/Paris",
    )
    factories.MemberFactory.create_batch(2, account=account)

    response = staff_api.get(f"{URL}{account.pk}/")

    assert response.status_code == 200
    assert response.json() == {
        "id": account.pk,
        "name": "Globex",
        "external_id": "crm-42",
        "email_domains": ["globex.test"],
        "segment": "enterprise",
        "cs_tier": "high_touch",
        "arr": "120000.50",
        "contract_start": "2024-03-01",
        "renewal_date": "2025-03-01",
        "owner": staff_user.pk,
        "owner_email": staff_user.email,
        "time_zone": "Europe/Paris",
        "parent": None,
        "parent_external_id": None,
        "member_count": 2,
    }


def test_accounts_retrieve_parent(staff_api):
    parent = factories.AccountFactory(external_id="crm-parent")
    child = factories.AccountFactory(parent=parent)

    response = staff_api.get(f"{URL}{child.pk}/")

    assert response.json()["parent"] == parent.pk
    assert response.json()["parent_external_id"] == "crm-parent"


def test_accounts_retrieve_own_account(member_api, member):
    response = member_api.get(f"{URL}{member.account_id}/")

    assert response.status_code == 200
    assert response.json() == {
        "id": member.account_id,
        "name": member.account.name,
        "time_zone": member.account.time_zone,
        "parent": None,
        "member_count": 1,
    }


def test_accounts_retrieve_other_account_not_found(member_api):
    other = factories.AccountFactory()

    response = member_api.get(f"{URL}{other.pk}/")

    assert response.status_code == 404


def test_accounts_list_member_count_per_account(staff_api):
    busy = factories.AccountFactory()
    empty = factories.AccountFactory()
    factories.MemberFactory.create_batch(3, account=busy)

    response = staff_api.get(URL)

    counts = {row["id"]: row["member_count"] for row in response.json()["results"]}
    assert counts == {busy.pk: 3, empty.pk: 0}


def test_accounts_filter_segment(staff_api):
    smb = factories.AccountFactory(segment=Account.Segment.SMB)
    factories.AccountFactory(segment=Account.Segment.ENTERPRISE)

    response = staff_api.get(URL, {"segment": "smb"})

    assert result_ids(response) == [smb.pk]


def test_accounts_filter_cs_tier(staff_api):
    high = factories.AccountFactory(cs_tier=Account.CsTier.HIGH_TOUCH)
    factories.AccountFactory(cs_tier=Account.CsTier.TECH_TOUCH)

    response = staff_api.get(URL, {"cs_tier": "high_touch"})

    assert result_ids(response) == [high.pk]


def test_accounts_filter_unknown_segment_rejected(staff_api):
    response = staff_api.get(URL, {"segment": "galactic"})

    assert response.status_code == 400
    assert response.json() == {
        "segment": [
            "Select a valid choice. galactic is not one of the available choices."
        ]
    }


def test_accounts_filter_renewal_range_inclusive(staff_api):
    factories.AccountFactory(renewal_date=date(2025, 1, 31))
    first_day = factories.AccountFactory(renewal_date=date(2025, 2, 1))
    last_day = factories.AccountFactory(renewal_date=date(2025, 2, 28))
    factories.AccountFactory(renewal_date=date(2025, 3, 1))
    factories.AccountFactory(renewal_date=None)

    response = staff_api.get(
        URL, {"renewal_after": "2025-02-01", "renewal_before": "2025-02-28"}
    )

    assert result_ids(response) == [first_day.pk, last_day.pk]


def test_accounts_filter_invalid_renewal_date_rejected(staff_api):
    response = staff_api.get(URL, {"renewal_after": "31/02/2025"})

    assert response.status_code == 400
    assert response.json() == {
        "renewal_after": [
            "Invalid date '31/02/2025': use YYYY-MM-DD, for example 2025-06-02."
        ]
    }


def test_accounts_search_name_ignores_case(staff_api):
    globex = factories.AccountFactory(name="Globex Corporation")
    factories.AccountFactory(name="Initech")

    response = staff_api.get(URL, {"search": "globex"})

    assert result_ids(response) == [globex.pk]


def test_accounts_list_token_auth(staff_token_api):
    account = factories.AccountFactory()

    response = staff_token_api.get(URL)

    assert response.status_code == 200
    assert result_ids(response) == [account.pk]


def test_accounts_list_invalid_token_rejected(api_client):
    api_client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")

    response = api_client.get(URL)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert response.json() == {"detail": "Invalid token."}


def test_accounts_list_bearer_scheme_explained(api_client, staff_user):
    token = Token.objects.create(user=staff_user)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token.key}")

    response = api_client.get(URL)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert response.json() == {
        "detail": "The Authorization header uses the Bearer scheme, which this "
        "API does not read: send 'Authorization: Token <key>' instead."
    }


def test_accounts_list_query_count_fixed(staff_api, django_assert_num_queries):
    for account in factories.AccountFactory.create_batch(3):
        factories.MemberFactory(account=account)
    queries_for_3 = count_queries(staff_api, URL)
    for account in factories.AccountFactory.create_batch(27):
        factories.MemberFactory(account=account)

    with django_assert_num_queries(queries_for_3):
        response = staff_api.get(URL)

    assert len(response.json()["results"]) == 30
