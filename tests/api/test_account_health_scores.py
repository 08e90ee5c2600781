from datetime import UTC, date, datetime, timedelta

import pytest

from apps.lifecycle.models import AccountHealthScore, AccountHealthScoreSnapshot
from apps.lifecycle.scoring import band_for
from tests import factories
from tests.api.helpers import count_queries, result_ids

URL = "/api/v1/account-health-scores/"
COMPONENTS = {
    "active_members": {
        "label": "Active members",
        "kind": "active_member_share",
        "value": 40.0,
        "score": 80,
        "weight": 0.5,
        "position": 0,
    }
}

pytestmark = pytest.mark.django_db


def create_account_score(*, account, score=75, computed_at=None):
    return AccountHealthScore.objects.create(
        account=account,
        score=score,
        band=band_for(score),
        components=COMPONENTS,
        computed_at=computed_at or datetime(2025, 6, 2, 3, 0, tzinfo=UTC),
    )


def test_account_health_scores_list_anonymous_rejected(api_client, member):
    create_account_score(account=member.account)

    response = api_client.get(URL)

    assert response.status_code == 401


def test_account_health_scores_list_staff_sees_all(staff_api, member):
    other = factories.AccountFactory()
    create_account_score(account=other)
    create_account_score(account=member.account)

    response = staff_api.get(URL)

    assert result_ids(response, "account") == sorted([member.account_id, other.pk])


def test_account_health_scores_list_admin_sees_own_account(api_client, account_admin):
    create_account_score(account=account_admin.account)
    create_account_score(account=factories.AccountFactory())
    api_client.force_login(account_admin.user)

    response = api_client.get(URL)

    assert result_ids(response, "account") == [account_admin.account_id]


def test_account_health_scores_list_member_sees_none(member_api, member):
    create_account_score(account=member.account)

    response = member_api.get(URL)

    assert response.status_code == 200
    assert result_ids(response, "account") == []


def test_account_health_scores_list_deactivated_admin_sees_none(
    api_client, account_admin
):
    create_account_score(account=account_admin.account)
    account_admin.deactivated_at = datetime(2025, 1, 1, tzinfo=UTC)
    account_admin.save(update_fields=["deactivated_at"])
    api_client.force_login(account_admin.user)

    response = api_client.get(URL)

    assert result_ids(response, "account") == []


def test_account_health_scores_list_fields(staff_api, member):
    create_account_score(account=member.account, score=55)

    response = staff_api.get(URL)

    assert response.json()["results"] == [
        {
            "account": member.account_id,
            "score": 55,
            "band": "yellow",
            "components": COMPONENTS,
            "computed_at": "2025-06-02T03:00:00Z",
        }
    ]


def test_account_health_scores_retrieve_admin_with_trend(api_client, account_admin):
    account = account_admin.account
    create_account_score(account=account, score=82)
    AccountHealthScoreSnapshot.objects.create(
        account=account, day=date(2025, 6, 1), score=82, band="green"
    )
    AccountHealthScoreSnapshot.objects.create(
        account=factories.AccountFactory(), day=date(2025, 6, 1), score=5, band="red"
    )
    api_client.force_login(account_admin.user)

    response = api_client.get(f"{URL}{account.pk}/")

    assert response.status_code == 200
    assert response.json() == {
        "account": account.pk,
        "score": 82,
        "band": "green",
        "components": COMPONENTS,
        "computed_at": "2025-06-02T03:00:00Z",
        "trend": [
            {"day": "2025-06-02", "score": 82, "band": "green"},
            {"day": "2025-06-01", "score": 82, "band": "green"},
        ],
    }


def test_account_health_scores_trend_last_30_newest_first(staff_api, member):
    account = member.account
    create_account_score(account=account, computed_at=datetime(2025, 6, 4, tzinfo=UTC))
    for offset in range(35):
        AccountHealthScoreSnapshot.objects.create(
            account=account,
            day=date(2025, 5, 1) + timedelta(days=offset),
            score=offset,
            band="red",
        )

    response = staff_api.get(f"{URL}{account.pk}/")

    trend = response.json()["trend"]
    assert len(trend) == 30
    assert trend[0] == {"day": "2025-06-04", "score": 75, "band": "green"}
    assert trend[1] == {"day": "2025-06-03", "score": 33, "band": "red"}
    assert trend[-1] == {"day": "2025-05-06", "score": 5, "band": "red"}


def test_account_health_scores_retrieve_other_account_not_found(
    api_client, account_admin
):
    other = factories.AccountFactory()
    create_account_score(account=other)
    api_client.force_login(account_admin.user)

    response = api_client.get(f"{URL}{other.pk}/")

    assert response.status_code == 404


def test_account_health_scores_member_own_not_found(member_api, member):
    create_account_score(account=member.account)

    response = member_api.get(f"{URL}{member.account_id}/")

    assert response.status_code == 404
    assert response.json() == {
        "detail": f"No health score found for account {member.account_id}."
    }


def test_account_health_scores_unscored_own_says_not_yet(api_client, account_admin):
    api_client.force_login(account_admin.user)

    response = api_client.get(f"{URL}{account_admin.account_id}/")

    assert response.status_code == 404
    assert response.json() == {
        "detail": f"Account {account_admin.account_id} has no health score yet. "
        "New accounts are scored within minutes and every account every night, "
        "so try again later."
    }


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_account_health_scores_writes_rejected_and_change_nothing(
    staff_api, member, method
):
    score = create_account_score(account=member.account, score=30)
    url = URL if method == "post" else f"{URL}{member.account_id}/"
    body = {"account": member.account_id, "score": 99, "band": "green"}

    response = getattr(staff_api, method)(url, body, format="json")

    score.refresh_from_db()
    assert response.status_code == 405
    assert score.score == 30
    assert score.band == "red"


def test_account_health_scores_filter_band(staff_api, member):
    create_account_score(account=member.account, score=20)
    create_account_score(account=factories.AccountFactory(), score=90)

    response = staff_api.get(URL, {"band": "red"})

    assert result_ids(response, "account") == [member.account_id]


def test_account_health_scores_list_query_count_fixed(
    staff_api, django_assert_num_queries
):
    for account in factories.AccountFactory.create_batch(3):
        create_account_score(account=account)
    queries_for_3 = count_queries(staff_api, URL)
    for account in factories.AccountFactory.create_batch(27):
        create_account_score(account=account)

    with django_assert_num_queries(queries_for_3):
        response = staff_api.get(URL)

    assert len(response.json()["results"]) == 30
