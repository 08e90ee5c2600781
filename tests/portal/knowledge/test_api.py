"""The knowledge base API: the pages' visibility, search, feedback and gaps."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from apps.community.models import SearchLog
from apps.portal.models import Article, ArticleFeedback, ContentGap
from apps.portal.services.gaps import group_content_gaps
from rm6.api import STAFF_ONLY_MESSAGE
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


@pytest.mark.parametrize("page", ["99999999999999999999", "2"])
@pytest.mark.parametrize("query", ["", "export"], ids=["list", "search"])
def test_api_search_page_out_of_range_404(member_api, articles, page, query):
    response = member_api.get(f"{ARTICLES}search/", {"q": query, "page": page})

    assert response.status_code == 404
    assert response.json()["detail"] == (
        f"Invalid page {page}: that page contains no results; use a smaller page "
        "number."
    )


def test_api_search_without_result_is_logged_and_grouped(member_api, member):
    member_api.get(f"{ARTICLES}search/", {"q": "zzzqqq"})
    member_api.get(f"{ARTICLES}search/", {"q": "zzzqqq"})

    logged = SearchLog.objects.get()
    assert (logged.query, logged.member, logged.result_count) == ("zzzqqq", member, 0)
    group_content_gaps()
    assert ContentGap.objects.get().key == "search:zzzqqq"


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
    listed = member_api.get(GAPS)
    assert listed.status_code == 403
    assert listed.json() == {"detail": STAFF_ONLY_MESSAGE}
    response = member_api.patch(
        f"{GAPS}{gap.pk}/", {"status": "dismissed"}, format="json"
    )
    assert response.status_code == 403
    gap.refresh_from_db()
    assert gap.status == "open"


def test_api_gaps_list_and_update(staff_api, staff_user, gap):
    due_on = timezone.localdate() + timedelta(days=60)
    listed = staff_api.get(GAPS, {"status": "open"})
    response = staff_api.patch(
        f"{GAPS}{gap.pk}/",
        {"status": "in_progress", "owner": staff_user.pk, "due_on": str(due_on)},
        format="json",
    )

    assert [row["key"] for row in listed.json()["results"]] == ["search:okta sso"]
    assert response.status_code == 200
    assert response.json()["status"] == "in_progress"
    gap.refresh_from_db()
    assert gap.owner == staff_user
    assert gap.due_on == due_on


def test_api_gaps_reject_published_without_article(staff_api, gap):
    response = staff_api.patch(
        f"{GAPS}{gap.pk}/", {"status": "published"}, format="json"
    )

    assert response.status_code == 400
    assert "no published article" in response.json()["status"][0]
    gap.refresh_from_db()
    assert gap.status == "open"


def test_api_gaps_reject_due_date_in_past(staff_api, gap):
    response = staff_api.patch(
        f"{GAPS}{gap.pk}/", {"due_on": "1900-01-01"}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["due_on"][0].startswith(
        "The due date 1900-01-01 is in the past;"
    )
    gap.refresh_from_db()
    assert gap.due_on is None
