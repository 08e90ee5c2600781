from django.utils import timezone

from apps.lifecycle.models import AccountHealthScore, HealthScore
from apps.lifecycle.scoring import refresh_member_health_scores
from tests import factories


def test_score_page_shows_refresh_fields(admin_client):
    member = factories.MemberFactory()
    refresh_member_health_scores(member_ids=[member.pk])
    refresh_member_health_scores(member_ids=[member.pk])
    score = HealthScore.objects.get(member=member)

    response = admin_client.get(f"/admin/lifecycle/healthscore/{score.pk}/change/")

    body = response.content.decode()
    assert response.status_code == 200
    assert "Events read until" in body
    assert "Previous score" in body
    assert "Previous computed at" in body


def test_account_score_page_shows_refresh_fields(admin_client):
    account = factories.AccountFactory()
    score = AccountHealthScore.objects.create(
        account=account,
        score=50,
        band="yellow",
        computed_at=timezone.now(),
        previous_score=30,
        previous_band="red",
    )

    response = admin_client.get(
        f"/admin/lifecycle/accounthealthscore/{score.pk}/change/"
    )

    assert response.status_code == 200
    assert "Previous band" in response.content.decode()


def test_account_admin_links_to_health_page(admin_client):
    account = factories.AccountFactory()

    response = admin_client.get(f"/admin/membership/account/{account.pk}/change/")

    assert response.status_code == 200
    health_link = f'<a href="/lifecycle/accounts/{account.pk}/health/">Health page</a>'
    assert health_link in response.content.decode()
    assert (
        admin_client.get(f"/lifecycle/accounts/{account.pk}/health/").status_code == 200
    )


def test_member_admin_links_to_health_page(admin_client):
    member = factories.MemberFactory()

    response = admin_client.get(f"/admin/membership/member/{member.pk}/change/")

    assert response.status_code == 200
    health_link = f'<a href="/lifecycle/members/{member.pk}/health/">Health page</a>'
    assert health_link in response.content.decode()
    assert (
        admin_client.get(f"/lifecycle/members/{member.pk}/health/").status_code == 200
    )


def test_account_add_page_explains_related_pages(admin_client):
    response = admin_client.get("/admin/membership/account/add/")

    assert response.status_code == 200
    assert "Shown once saved." in response.content.decode()
