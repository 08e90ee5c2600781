import pytest
from django.utils import timezone

from apps.membership.models import Member
from tests import factories
from tests.api.helpers import count_queries, result_ids

URL = "/api/v1/members/"

pytestmark = pytest.mark.django_db


def test_members_list_anonymous_rejected(api_client, member):
    response = api_client.get(URL)

    assert response.status_code == 401


def test_members_list_staff_sees_all(staff_api, member):
    other = factories.MemberFactory()

    response = staff_api.get(URL)

    assert result_ids(response) == [member.pk, other.pk]


def test_members_list_member_sees_only_self(member_api, member):
    factories.MemberFactory(account=member.account)
    factories.MemberFactory()

    response = member_api.get(URL)

    assert result_ids(response) == [member.pk]


def test_members_list_account_admin_sees_own_account(api_client, member, account_admin):
    factories.MemberFactory()
    api_client.force_login(account_admin.user)

    response = api_client.get(URL)

    assert result_ids(response) == [member.pk, account_admin.pk]


def test_members_list_deactivated_admin_sees_only_self(
    api_client, member, account_admin
):
    factories.ActivityEventFactory(member=member, account=member.account)
    account_admin.deactivated_at = timezone.now()
    account_admin.save(update_fields=["deactivated_at"])
    api_client.force_login(account_admin.user)

    members = api_client.get(URL)
    events = api_client.get("/api/v1/events/")

    assert result_ids(members) == [account_admin.pk]
    assert events.status_code == 200
    assert {row["member"] for row in events.json()["results"]} <= {account_admin.pk}


def test_members_retrieve_fields(staff_api):
    member = factories.MemberFactory(
        display_name="Ada Lovelace",
        role=Member.Role.CHAMPION,
        lifecycle_stage=Member.LifecycleStage.ESTABLISHED,
        time_zone="Europe/London",
        external_id="usr-7",
        user__username="ada",
    )

    response = staff_api.get(f"{URL}{member.pk}/")

    assert response.status_code == 200
    assert response.json() == {
        "id": member.pk,
        "email": f"ada@{member.account.email_domains[0]}",
        "display_name": "Ada Lovelace",
        "account": member.account_id,
        "role": "champion",
        "lifecycle_stage": "established",
        "time_zone": "Europe/London",
        "external_id": "usr-7",
        "created_at": member.created_at.isoformat().replace("+00:00", "Z"),
    }


def test_members_retrieve_self(member_api, member):
    response = member_api.get(f"{URL}{member.pk}/")

    assert response.status_code == 200
    assert response.json()["email"] == member.user.email


def test_members_retrieve_colleague_hidden_from_member(member_api, member):
    colleague = factories.MemberFactory(account=member.account)

    response = member_api.get(f"{URL}{colleague.pk}/")

    assert response.status_code == 404


def test_members_retrieve_other_account_not_found(member_api):
    stranger = factories.MemberFactory()

    response = member_api.get(f"{URL}{stranger.pk}/")

    assert response.status_code == 404


def test_members_retrieve_admin_other_account_not_found(api_client, account_admin):
    stranger = factories.MemberFactory()
    api_client.force_login(account_admin.user)

    response = api_client.get(f"{URL}{stranger.pk}/")

    assert response.status_code == 404


def test_members_filter_account(staff_api, member):
    factories.MemberFactory()

    response = staff_api.get(URL, {"account": member.account_id})

    assert result_ids(response) == [member.pk]


def test_members_filter_foreign_account_empty(member_api):
    stranger = factories.MemberFactory()

    response = member_api.get(URL, {"account": stranger.account_id})

    assert response.status_code == 200
    assert result_ids(response) == []


def test_members_filter_role(staff_api, member, account_admin):
    response = staff_api.get(URL, {"role": "admin"})

    assert result_ids(response) == [account_admin.pk]


def test_members_filter_lifecycle_stage(staff_api, member):
    at_risk = factories.MemberFactory(lifecycle_stage=Member.LifecycleStage.AT_RISK)

    response = staff_api.get(URL, {"lifecycle_stage": "at_risk"})

    assert result_ids(response) == [at_risk.pk]


def test_members_list_token_auth(staff_token_api, member):
    response = staff_token_api.get(URL)

    assert response.status_code == 200
    assert result_ids(response) == [member.pk]


def test_members_list_query_count_fixed(staff_api, django_assert_num_queries):
    factories.MemberFactory.create_batch(3)
    queries_for_3 = count_queries(staff_api, URL)
    factories.MemberFactory.create_batch(27)

    with django_assert_num_queries(queries_for_3):
        response = staff_api.get(URL)

    assert len(response.json()["results"]) == 30
