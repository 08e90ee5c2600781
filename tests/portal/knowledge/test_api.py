"""The knowledge base API: the pages' visibility, search, feedback and gaps."""

import pytest
from rest_framework.test import APIClient

from apps.community.models import SearchLog
from apps.portal.models import Article, ArticleFeedback, ContentGap
from apps.portal.services.gaps import group_content_gaps
from tests import factories
from tests.portal.knowledge.factories import make_article

pytestmark = pytest.mark.django_db
ARTICLES = "/api/v1/portal/articles/"
GAPS = "/api/v1/portal/content-gaps/"


@pytest.fixture
def articles():
    owner = factories.StaffFactory()
    return {
        "public": make_article(
            title="Public export guide", audience=Article.Audience.PUBLIC, owner=owner
        ),
        "members": make_article(title="Members export guide", owner=owner),
        "draft": make_article(title="Draft guide", is_published=False, owner=owner),
    }


@pytest.fixture
def member_api(member):
    client = APIClient()
    client.force_login(member.user)
    return client


@pytest.fixture
def staff_api(staff_user):
    client = APIClient()
    client.force_login(staff_user)
    return client


def _slugs(response) -> set[str]:
    return {row["slug"] for row in response.json()["results"]}


def test_api_list_anonymous_public_only(articles):
    response = APIClient().get(ARTICLES)

    assert response.status_code == 200
    assert _slugs(response) == {articles["public"].slug}


def test_api_list_member(member_api, articles):
    response = member_api.get(ARTICLES)

    assert _slugs(response) == {articles["public"].slug, articles["members"].slug}


def test_api_list_staff_includes_drafts(staff_api, articles):
    response = staff_api.get(ARTICLES)

    assert len(response.json()["results"]) == 3


@pytest.mark.parametrize(("name", "status"), [("members", 200), ("draft", 404)])
def test_api_detail_member(member_api, articles, name, status):
    response = member_api.get(f"{ARTICLES}{articles[name].slug}/")

    assert response.status_code == status


def test_api_detail_anonymous_members_only_404(articles):
    response = APIClient().get(f"{ARTICLES}{articles['members'].slug}/")

    assert response.status_code == 404


def test_api_detail_has_body(member_api, articles):
    response = member_api.get(f"{ARTICLES}{articles['members'].slug}/")

    assert response.json()["body"] == "Open Reports, choose Export and pick CSV."


def test_api_search_ranks_and_hides(member_api, articles):
    response = member_api.get(f"{ARTICLES}search/", {"q": "export guide"})

    body = response.json()
    assert response.status_code == 200
    assert {row["slug"] for row in body["results"]} == {
        articles["public"].slug,
        articles["members"].slug,
    }
    assert (
        "<mark>" in body["results"][0]["snippet"] or body["results"][0]["snippet"] == ""
    )
    assert body["has_next"] is False


def test_api_feedback_member(member_api, member, articles):
    url = f"{ARTICLES}{articles['members'].slug}/feedback/"

    response = member_api.post(
        url, {"helpful": True, "comment": "Clear."}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["helpful_count"] == 1
    assert ArticleFeedback.objects.get().member == member


def test_api_feedback_anonymous_rejected(articles):
    url = f"{ARTICLES}{articles['public'].slug}/feedback/"

    response = APIClient().post(url, {"helpful": True}, format="json")

    assert response.status_code in (401, 403)
    assert ArticleFeedback.objects.count() == 0


def test_api_feedback_hidden_article_404(member_api, articles):
    url = f"{ARTICLES}{articles['draft'].slug}/feedback/"

    response = member_api.post(url, {"helpful": True}, format="json")

    assert response.status_code == 404
    assert ArticleFeedback.objects.count() == 0


def test_api_feedback_bad_value_400(member_api, articles):
    url = f"{ARTICLES}{articles['members'].slug}/feedback/"

    response = member_api.post(url, {"helpful": "perhaps"}, format="json")

    assert response.status_code == 400
    assert ArticleFeedback.objects.count() == 0


@pytest.fixture
def gap(db):
    SearchLog.objects.create(query="okta sso", result_count=0)
    group_content_gaps()
    return ContentGap.objects.get()


def test_api_gaps_staff_only(member_api, gap):
    assert member_api.get(GAPS).status_code == 403
    response = member_api.patch(
        f"{GAPS}{gap.pk}/", {"status": "dismissed"}, format="json"
    )
    assert response.status_code == 403
    gap.refresh_from_db()
    assert gap.status == "open"


def test_api_gaps_list_and_update(staff_api, staff_user, gap):
    listed = staff_api.get(GAPS, {"status": "open"})
    response = staff_api.patch(
        f"{GAPS}{gap.pk}/",
        {"status": "in_progress", "owner": staff_user.pk, "due_on": "2027-02-01"},
        format="json",
    )

    assert [row["key"] for row in listed.json()["results"]] == ["search:okta sso"]
    assert response.status_code == 200
    assert response.json()["status"] == "in_progress"
    gap.refresh_from_db()
    assert gap.owner == staff_user
    assert str(gap.due_on) == "2027-02-01"


def test_api_gaps_reject_published_without_article(staff_api, gap):
    response = staff_api.patch(
        f"{GAPS}{gap.pk}/", {"status": "published"}, format="json"
    )

    assert response.status_code == 400
    assert "no published article" in response.json()["status"][0]
    gap.refresh_from_db()
    assert gap.status == "open"
