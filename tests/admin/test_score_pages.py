import pytest
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


@pytest.mark.parametrize("model", ["account", "member"])
def test_admin_page_links_to_health_page(admin_client, model):
    subject = (
        factories.AccountFactory() if model == "account" else factories.MemberFactory()
    )
    health_url = f"/lifecycle/{model}s/{subject.pk}/health/"

    response = admin_client.get(f"/admin/membership/{model}/{subject.pk}/change/")

    assert response.status_code == 200
    assert f'<a href="{health_url}">Health page</a>' in response.content.decode()
    assert admin_client.get(health_url).status_code == 200


def test_account_add_page_explains_related_pages(admin_client):
    response = admin_client.get("/admin/membership/account/add/")

    assert response.status_code == 200
    assert "Shown once saved." in response.content.decode()
