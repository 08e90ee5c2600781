from datetime import UTC, date, datetime, timedelta

import pytest

from apps.lifecycle.models import HealthScoreSnapshot
from tests import factories
from tests.api.helpers import count_queries, create_health_score, result_ids

URL = "/api/v1/health-scores/"

pytestmark = pytest.mark.django_db


def test_health_scores_list_anonymous_rejected(api_client, member):
    create_health_score(member=member)

    response = api_client.get(URL)

    assert response.status_code == 401


def test_health_scores_list_staff_sees_all(staff_api, member):
    other = factories.MemberFactory()
    create_health_score(member=other)
    create_health_score(member=member)

    response = staff_api.get(URL)

    assert result_ids(response, "member") == [member.pk, other.pk]


def test_health_scores_list_member_sees_only_own(member_api, member):
    create_health_score(member=member)
    create_health_score(member=factories.MemberFactory(account=member.account))
    create_health_score(member=factories.MemberFactory())

    response = member_api.get(URL)

    assert result_ids(response, "member") == [member.pk]


def test_health_scores_list_account_admin_sees_account(
    api_client, member, account_admin
):
    create_health_score(member=member)
    create_health_score(member=account_admin)
    create_health_score(member=factories.MemberFactory())
    api_client.force_login(account_admin.user)

    response = api_client.get(URL)

    assert result_ids(response, "member") == [member.pk, account_admin.pk]


def test_health_scores_deactivated_admin_sees_none(api_client, member, account_admin):
    create_health_score(member=member)
    create_health_score(member=account_admin)
    # The user stays active, as when staff set is_active back by hand.
    account_admin.deactivated_at = datetime(2025, 1, 1, tzinfo=UTC)
    account_admin.save(update_fields=["deactivated_at"])
    api_client.force_login(account_admin.user)

    listing = api_client.get(URL)
    detail = api_client.get(f"{URL}{member.pk}/")

    assert listing.status_code == 200
    assert result_ids(listing, "member") == []
    assert detail.status_code == 404


def test_health_scores_list_fields(staff_api, member):
    computed_at = datetime(2025, 6, 2, 3, 0, tzinfo=UTC)
    create_health_score(member=member, score=55, computed_at=computed_at)

    response = staff_api.get(URL)

    assert response.json()["results"] == [
        {
            "member": member.pk,
            "score": 55,
            "band": "yellow",
            "components": {"activity": {"value": 12, "score": 60, "weight": 0.6}},
            "computed_at": "2025-06-02T03:00:00Z",
        }
    ]


def test_health_scores_trend_last_30_newest_first(staff_api, member):
    create_health_score(
        member=member, score=80, computed_at=datetime(2025, 6, 4, 8, 0, tzinfo=UTC)
    )
    first_day = date(2025, 5, 1)
    for offset in range(35):
        HealthScoreSnapshot.objects.create(
            member=member,
            day=first_day + timedelta(days=offset),
            score=offset,
            band="red",
        )

    response = staff_api.get(f"{URL}{member.pk}/")

    trend = response.json()["trend"]
    assert response.status_code == 200
    assert len(trend) == 30
    # The current score stands for its own day, in place of that day's
    # snapshot; the others are earlier days' closing scores.
    assert trend[0] == {"day": "2025-06-04", "score": 80, "band": "green"}
    assert trend[1] == {"day": "2025-06-03", "score": 33, "band": "red"}
    assert trend[-1] == {"day": "2025-05-06", "score": 5, "band": "red"}


def test_health_scores_retrieve_fields(member_api, member):
    computed_at = datetime(2025, 6, 2, 3, 0, tzinfo=UTC)
    create_health_score(member=member, score=82, computed_at=computed_at)
    HealthScoreSnapshot.objects.create(
        member=member, day=date(2025, 6, 1), score=82, band="green"
    )
    HealthScoreSnapshot.objects.create(
        member=factories.MemberFactory(), day=date(2025, 6, 1), score=10, band="red"
    )

    response = member_api.get(f"{URL}{member.pk}/")

    assert response.status_code == 200
    assert response.json() == {
        "member": member.pk,
        "score": 82,
        "band": "green",
        "components": {"activity": {"value": 12, "score": 60, "weight": 0.6}},
        "computed_at": "2025-06-02T03:00:00Z",
        "trend": [
            {"day": "2025-06-02", "score": 82, "band": "green"},
            {"day": "2025-06-01", "score": 82, "band": "green"},
        ],
    }


def test_health_scores_retrieve_other_account_not_found(member_api):
    stranger = factories.MemberFactory()
    create_health_score(member=stranger)

    response = member_api.get(f"{URL}{stranger.pk}/")

    assert response.status_code == 404
    assert response.json() == {
        "detail": f"No health score found for member {stranger.pk}."
    }


def test_health_scores_retrieve_unscored_member_not_found(staff_api, member):
    response = staff_api.get(f"{URL}{member.pk}/")

    assert response.status_code == 404
    assert response.json() == {
        "detail": f"Member {member.pk} has no health score yet. New members are "
        "scored within minutes and every member every night, so try again later."
    }


def test_health_scores_retrieve_own_unscored_says_not_yet(member_api, member):
    response = member_api.get(f"{URL}{member.pk}/")

    assert response.status_code == 404
    assert response.json()["detail"].startswith(
        f"Member {member.pk} has no health score yet."
    )


@pytest.mark.parametrize("member_id", ["abc", "٣", "99999999999999999999"])
def test_health_scores_retrieve_malformed_id_not_found(staff_api, member_id):
    response = staff_api.get(f"{URL}{member_id}/")

    assert response.status_code == 404
    assert response.json() == {
        "detail": f"No health score found for member {member_id}."
    }


def test_health_scores_filter_band(staff_api, member):
    create_health_score(member=member, score=20)
    create_health_score(member=factories.MemberFactory(), score=90)

    response = staff_api.get(URL, {"band": "red"})

    assert result_ids(response, "member") == [member.pk]


def test_health_scores_filter_account(staff_api, member):
    colleague = factories.MemberFactory(account=member.account)
    create_health_score(member=member)
    create_health_score(member=colleague)
    create_health_score(member=factories.MemberFactory())

    response = staff_api.get(URL, {"account": member.account_id})

    assert result_ids(response, "member") == [member.pk, colleague.pk]


def test_health_scores_list_token_auth(staff_token_api, member):
    create_health_score(member=member)

    response = staff_token_api.get(URL)

    assert result_ids(response, "member") == [member.pk]


def test_health_scores_list_query_count_fixed(staff_api, django_assert_num_queries):
    for member in factories.MemberFactory.create_batch(3):
        create_health_score(member=member)
    queries_for_3 = count_queries(staff_api, URL)
    for member in factories.MemberFactory.create_batch(27):
        create_health_score(member=member)

    with django_assert_num_queries(queries_for_3):
        response = staff_api.get(URL)

    assert len(response.json()["results"]) == 30


def test_health_scores_admin_query_count_fixed(
    api_client, account_admin, django_assert_num_queries
):
    create_health_score(member=account_admin)
    for colleague in factories.MemberFactory.create_batch(
        2, account=account_admin.account
    ):
        create_health_score(member=colleague)
    api_client.force_login(account_admin.user)
    queries_for_3 = count_queries(api_client, URL)
    for colleague in factories.MemberFactory.create_batch(
        27, account=account_admin.account
    ):
        create_health_score(member=colleague)

    with django_assert_num_queries(queries_for_3):
        response = api_client.get(URL)

    assert len(response.json()["results"]) == 30
