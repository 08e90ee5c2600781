from datetime import UTC, date, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.lifecycle.models import (
    AccountHealthScore,
    AccountHealthScoreSnapshot,
    HealthScore,
    HealthScoreSnapshot,
)
from apps.lifecycle.scoring import band_for
from apps.lifecycle.selectors import ScoreComponent
from apps.membership.models import Member
from tests import factories

pytestmark = pytest.mark.django_db

COMPONENTS = {
    "recency": {
        "label": "Recency",
        "kind": "days_since_activity",
        "value": 4.5,
        "score": 94,
        "weight": 0.4,
        "position": 1,
    },
    "activity": {
        "label": "Activity",
        "kind": "event_count",
        "value": 12,
        "score": 60,
        "weight": 0.6,
        "position": 0,
    },
}


def url_for(account) -> str:
    return f"/lifecycle/accounts/{account.pk}/health/"


def score_member(member, score: int) -> None:
    HealthScore.objects.create(
        member=member,
        score=score,
        band=band_for(score),
        components=COMPONENTS,
        computed_at=timezone.now(),
    )


def score_account(account, score: int = 72) -> None:
    AccountHealthScore.objects.create(
        account=account,
        score=score,
        band=band_for(score),
        components=COMPONENTS,
        computed_at=timezone.now(),
    )
    for offset in range(3):
        AccountHealthScoreSnapshot.objects.create(
            account=account,
            day=date(2025, 6, 1) + timedelta(days=offset),
            score=score - offset,
            band=band_for(score - offset),
        )


def count_queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries.captured_queries)


def test_account_health_page_anonymous_redirected(client, member):
    response = client.get(url_for(member.account))

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_account_health_page_member_not_found(member_client, member):
    response = member_client.get(url_for(member.account))

    assert response.status_code == 404


def test_account_health_page_other_account_admin_not_found(client):
    admin = factories.MemberFactory(role=Member.Role.ADMIN)
    client.force_login(admin.user)

    response = client.get(url_for(factories.AccountFactory()))

    assert response.status_code == 404


def test_account_health_page_admin_sees_own_account(client, member):
    admin = factories.MemberFactory(account=member.account, role=Member.Role.ADMIN)
    client.force_login(admin.user)

    response = client.get(url_for(member.account))

    assert response.status_code == 200


def test_account_health_page_unknown_account_not_found(staff_client):
    response = staff_client.get("/lifecycle/accounts/999999/health/")

    assert response.status_code == 404


def test_account_health_page_shows_score_components_trend_members(staff_client, member):
    account = member.account
    score_account(account)
    score_member(member, 35)
    unscored = factories.MemberFactory(account=account, display_name="Newcomer")

    response = staff_client.get(url_for(account))

    body = response.content.decode()
    components = response.context["components"]
    assert [c.label for c in components] == ["Activity", "Recency"]
    # Three closing scores, oldest first, then the current score for today.
    assert [s.score for s in response.context["trend"].snapshots] == [72, 71, 70, 72]
    assert list(response.context["page_obj"]) == [member, unscored]
    assert "<polyline" in body
    assert "Not computed yet" in body


def test_account_health_page_unscored_account(staff_client, member):
    response = staff_client.get(url_for(member.account))

    assert response.status_code == 200
    assert "Account scores are computed every few minutes" in (
        response.content.decode()
    )


def test_account_health_page_query_count_fixed(
    staff_client, member, django_assert_num_queries
):
    account = member.account
    score_account(account)
    score_member(member, 50)
    factories.MemberFactory(account=account)
    url = url_for(account)
    staff_client.get(url)
    queries_for_2 = count_queries(staff_client, url)
    for colleague in factories.MemberFactory.create_batch(28, account=account):
        score_member(colleague, 60)

    with django_assert_num_queries(queries_for_2):
        response = staff_client.get(url)

    assert len(response.context["page_obj"]) == 30


def test_account_health_page_paginates_members(staff_client, member):
    factories.MemberFactory.create_batch(50, account=member.account)

    response = staff_client.get(url_for(member.account), {"page": 2})

    assert response.context["page_obj"].number == 2
    assert len(response.context["page_obj"]) == 1


def test_portal_home_shows_components_and_trend(member_client, member):
    score_member(member, 72)
    for offset in range(2):
        HealthScoreSnapshot.objects.create(
            member=member,
            day=date(2025, 6, 1) + timedelta(days=offset),
            score=60 + offset * 12,
            band=band_for(60 + offset * 12),
        )

    response = member_client.get("/")

    body = response.content.decode()
    assert [c.label for c in response.context["health_components"]] == [
        "Activity",
        "Recency",
    ]
    # The last point is the current score, on the day it was computed.
    today = timezone.now().astimezone(UTC)
    assert f"Daily score from 60 on 1 Jun to 72 on {today.day} {today:%b}." in body
    assert f"3 daily scores, 1 Jun to {today.day} {today:%b}." in body


def test_portal_home_trend_of_one_day(member_client, member):
    score_member(member, 35)

    body = member_client.get("/").content.decode()

    today = timezone.now().astimezone(UTC)
    assert f"Score 35 on {today.day} {today:%b}." in body
    assert "1 daily score." in body
    assert "<polyline" in body


def test_staff_home_links_managed_account_health(staff_client, staff_user):
    account = factories.AccountFactory(owner=staff_user)

    response = staff_client.get("/")

    assert response.status_code == 200
    assert f'href="{url_for(account)}"' in response.content.decode()


def test_account_admin_home_links_account_health(client, member):
    admin = factories.MemberFactory(account=member.account, role=Member.Role.ADMIN)
    client.force_login(admin.user)

    response = client.get("/")

    assert response.status_code == 200
    assert f'href="{url_for(member.account)}"' in response.content.decode()


def test_member_home_has_no_account_health_link(member_client, member):
    response = member_client.get("/")

    assert response.status_code == 200
    assert url_for(member.account) not in response.content.decode()


def test_account_score_admin_links_health_page(admin_client, member):
    score_account(member.account)

    response = admin_client.get(
        f"/admin/lifecycle/accounthealthscore/{member.account.pk}/change/"
    )

    assert response.status_code == 200
    assert "View on site" in response.content.decode()
    assert response.context["has_absolute_url"] is True
    assert response.context["absolute_url"] == url_for(member.account)


def member_url(member) -> str:
    return f"/lifecycle/members/{member.pk}/health/"


def score_member_with_trend(member, score: int = 64) -> None:
    score_member(member, score)
    for offset in range(1, 4):
        HealthScoreSnapshot.objects.create(
            member=member,
            day=timezone.now().astimezone(UTC).date() - timedelta(days=offset),
            score=score - offset,
            band=band_for(score - offset),
        )


def test_member_health_page_shows_score_components_trend(staff_client, member):
    score_member_with_trend(member)

    response = staff_client.get(member_url(member))

    body = response.content.decode()
    assert response.status_code == 200
    assert [c.label for c in response.context["components"]] == [
        "Activity",
        "Recency",
    ]
    assert [s.score for s in response.context["trend"].snapshots] == [61, 62, 63, 64]
    assert "<polyline" in body
    assert f'href="/lifecycle/accounts/{member.account_id}/health/"' in body


def test_member_health_page_member_sees_own(member_client, member):
    score_member(member, 64)

    response = member_client.get(member_url(member))

    body = response.content.decode()
    assert response.status_code == 200
    assert "/lifecycle/accounts/" not in body


def test_member_health_page_colleague_not_found(member_client, member):
    colleague = factories.MemberFactory(account=member.account)

    response = member_client.get(member_url(colleague))

    assert response.status_code == 404
    assert response.context["exception"] == (
        f"No member {colleague.pk} whose health you may see."
    )


def test_member_health_page_account_admin(client, member):
    admin = factories.MemberFactory(account=member.account, role=Member.Role.ADMIN)
    outsider = factories.MemberFactory()
    client.force_login(admin.user)

    own_account = client.get(member_url(member))
    other_account = client.get(member_url(outsider))

    assert own_account.status_code == 200
    assert other_account.status_code == 404


def test_member_health_page_deactivated_admin_not_found(client, member):
    admin = factories.MemberFactory(
        account=member.account,
        role=Member.Role.ADMIN,
        deactivated_at=timezone.now(),
    )
    client.force_login(admin.user)

    response = client.get(member_url(member))

    assert response.status_code == 404


def test_member_health_page_anonymous_redirected(client, member):
    response = client.get(member_url(member))

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_member_health_page_unscored(staff_client, member):
    response = staff_client.get(member_url(member))

    assert response.status_code == 200
    assert "Member scores are computed every few minutes" in (response.content.decode())


def test_member_health_page_query_count_fixed(staff_client, member):
    score_member(member, 50)
    url = member_url(member)
    staff_client.get(url)
    queries_for_one_day = count_queries(staff_client, url)
    score_member_with_trend(factories.MemberFactory(account=member.account))
    HealthScoreSnapshot.objects.bulk_create(
        HealthScoreSnapshot(
            member=member,
            day=timezone.now().astimezone(UTC).date() - timedelta(days=offset),
            score=40,
            band=band_for(40),
        )
        for offset in range(1, 40)
    )

    assert count_queries(staff_client, url) == queries_for_one_day


def test_account_health_page_links_member_pages(staff_client, member):
    response = staff_client.get(url_for(member.account))

    assert f'href="{member_url(member)}"' in response.content.decode()


@pytest.mark.parametrize(
    ("kind", "value", "shown"),
    [
        ("days_since_activity", 4.5, "4.5 days"),
        ("days_since_activity", 1, "1 day"),
        ("days_since_activity", 0.0, "0 days"),
        ("onboarding_share", 62.5, "62.5 %"),
        ("active_member_share", 100, "100 %"),
        ("event_count", 1234567, "1,234,567"),
        ("event_count", None, ""),
    ],
)
def test_score_component_value_has_unit(kind, value, shown):
    component = ScoreComponent(
        key="k", label="L", kind=kind, value=value, score=0, weight=1.0, position=0
    )

    assert component.display_value == shown


def test_member_health_page_shows_units(staff_client, member):
    score_member(member, 64)

    body = staff_client.get(member_url(member)).content.decode()

    assert "4.5 days" in body
