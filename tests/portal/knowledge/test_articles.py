"""Knowledge base pages: visibility, search, the article page and feedback."""

import threading

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.community.models import SearchLog
from apps.lifecycle.models import ActivityEvent
from apps.portal.models import Article, ArticleFeedback, ContentGap
from apps.portal.services.gaps import group_content_gaps
from apps.portal.services.knowledge import give_article_feedback
from tests import factories
from tests.portal.knowledge.factories import make_article

pytestmark = pytest.mark.django_db
LIST_URL = reverse("portal:articles")


def _article_url(article: Article) -> str:
    return reverse("portal:article", args=[article.slug])


@pytest.fixture
def articles():
    owner = factories.StaffFactory()
    return {
        "public": make_article(
            title="Public export guide", audience=Article.Audience.PUBLIC, owner=owner
        ),
        "members": make_article(
            title="Members export guide", audience=Article.Audience.MEMBERS, owner=owner
        ),
        "draft": make_article(
            title="Draft export guide", is_published=False, owner=owner
        ),
    }


def _listed(response) -> set[str]:
    return {hit.article.title for hit in response.context["article_page"].hits}


def test_list_anonymous_sees_public_only(client, articles):
    response = client.get(LIST_URL)

    assert _listed(response) == {"Public export guide"}


def test_list_member_sees_public_and_members(member_client, articles):
    response = member_client.get(LIST_URL)

    assert _listed(response) == {"Public export guide", "Members export guide"}


def test_list_staff_sees_drafts(staff_client, articles):
    response = staff_client.get(LIST_URL)

    assert _listed(response) == {
        "Public export guide",
        "Members export guide",
        "Draft export guide",
    }


@pytest.mark.parametrize(
    ("name", "status"), [("public", 200), ("members", 404), ("draft", 404)]
)
def test_detail_anonymous(client, articles, name, status):
    response = client.get(_article_url(articles[name]))

    assert response.status_code == status


@pytest.mark.parametrize(
    ("name", "status"), [("public", 200), ("members", 200), ("draft", 404)]
)
def test_detail_member(member_client, articles, name, status):
    response = member_client.get(_article_url(articles[name]))

    assert response.status_code == status


def test_detail_staff_reads_draft(staff_client, articles):
    response = staff_client.get(_article_url(articles["draft"]))

    assert response.status_code == 200


def test_search_ranks_title_first_and_highlights(member_client):
    make_article(title="Invoices", body="Download invoices. Billing exports too.")
    make_article(title="Billing overview", body="How billing works.")

    response = member_client.get(LIST_URL, {"q": "billing"})

    hits = response.context["article_page"].hits
    assert [hit.article.title for hit in hits] == ["Billing overview", "Invoices"]
    assert "<mark>Billing</mark>" in str(hits[0].title)
    assert "<mark>Billing</mark>" in str(hits[1].snippet)


def test_search_escapes_article_text(member_client):
    make_article(title="Scripts", body="Billing <script>alert(1)</script> guide")

    response = member_client.get(LIST_URL, {"q": "billing"})

    assert "<script>" not in response.text


def test_search_no_match_helps(member_client):
    make_article(title="Invoices")

    response = member_client.get(LIST_URL, {"q": "teleport"})

    assert "No articles match" in response.text


def test_list_paginates(member_client):
    owner = factories.StaffFactory()
    for number in range(21):
        make_article(title=f"Guide {number:02d}", owner=owner)

    first = member_client.get(LIST_URL)
    second = member_client.get(LIST_URL, {"page": 2})

    assert len(first.context["article_page"].hits) == 20
    assert first.context["article_page"].has_next is True
    assert _listed(second) == {"Guide 20"}


def _count(client, params) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(LIST_URL, params)
    assert response.status_code == 200
    return len(queries)


@pytest.mark.parametrize("params", [{}, {"q": "guide"}], ids=["list", "search"])
def test_list_query_count_fixed(member_client, params):
    owner = factories.StaffFactory()
    for number in range(2):
        make_article(title=f"Guide {number}", owner=owner)
    few = _count(member_client, params)

    for number in range(2, 15):
        make_article(title=f"Guide {number}", owner=owner)
    many = _count(member_client, params)

    assert few == many
    # Session, user, member, one page of articles, unread notifications.
    assert many == 5


def test_detail_records_view_event(member_client, member, articles):
    article = articles["members"]

    member_client.get(_article_url(article))

    event = ActivityEvent.objects.get(kind="portal.article_viewed")
    assert event.member == member
    assert event.subject_type == ContentType.objects.get_for_model(Article)
    assert event.subject_id == str(article.pk)
    article.refresh_from_db()
    assert article.view_count == 1


def test_detail_renders_markdown_safely(member_client):
    article = make_article(title="Steps", body="## Step one\n\n<script>x()</script>")

    response = member_client.get(_article_url(article))

    assert "<h4>Step one</h4>" in response.text
    assert "<script>x()" not in response.text


def test_feedback_counts_and_changes(member_client, member, articles):
    article = articles["members"]
    url = reverse("portal:article_feedback", args=[article.slug])

    member_client.post(url, {"helpful": "yes"})
    member_client.post(url, {"helpful": "no", "comment": "Step 3 is wrong."})

    article.refresh_from_db()
    assert article.helpful_count == 0
    assert article.not_helpful_count == 1
    feedback = ArticleFeedback.objects.get()
    assert feedback.helpful is False
    assert feedback.comment == "Step 3 is wrong."
    assert ActivityEvent.objects.filter(kind="portal.article_feedback").count() == 2


def test_feedback_same_answer_twice_counts_once(member_client, articles):
    article = articles["members"]
    url = reverse("portal:article_feedback", args=[article.slug])

    member_client.post(url, {"helpful": "yes"})
    member_client.post(url, {"helpful": "yes"})

    article.refresh_from_db()
    assert article.helpful_count == 1


def test_feedback_htmx_returns_partial(member_client, articles):
    article = articles["members"]
    url = reverse("portal:article_feedback", args=[article.slug])

    response = member_client.post(url, {"helpful": "yes"}, HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    assert "1 found it helpful" in response.text
    assert "<html" not in response.text


def test_feedback_invalid_value_changes_nothing(member_client, articles):
    article = articles["members"]
    url = reverse("portal:article_feedback", args=[article.slug])

    response = member_client.post(url, {"helpful": "maybe"})

    assert response.status_code == 400
    assert ArticleFeedback.objects.count() == 0


def test_feedback_anonymous_redirected(client, articles):
    article = articles["public"]

    response = client.post(
        reverse("portal:article_feedback", args=[article.slug]), {"helpful": "yes"}
    )

    assert response.status_code == 302
    assert ArticleFeedback.objects.count() == 0


def test_feedback_on_hidden_article_404(member_client, articles):
    article = articles["draft"]

    response = member_client.post(
        reverse("portal:article_feedback", args=[article.slug]), {"helpful": "yes"}
    )

    assert response.status_code == 404
    assert ArticleFeedback.objects.count() == 0


def _run_in_threads(*targets) -> list[BaseException]:
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(targets))

    def run(target):
        try:
            barrier.wait()
            target()
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(target,)) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


@pytest.mark.django_db(transaction=True)
def test_feedback_concurrent_votes_counted_exactly():
    article = make_article(title="Concurrent")
    first, second = factories.MemberFactory(), factories.MemberFactory()

    errors = _run_in_threads(
        lambda: give_article_feedback(article=article, member=first, helpful=True),
        lambda: give_article_feedback(article=article, member=second, helpful=True),
    )

    assert errors == []
    article.refresh_from_db()
    assert article.helpful_count == 2
    assert article.not_helpful_count == 0


@pytest.mark.django_db(transaction=True)
def test_feedback_concurrent_same_member_counted_once():
    article = make_article(title="Concurrent")
    member = factories.MemberFactory()

    errors = _run_in_threads(
        lambda: give_article_feedback(article=article, member=member, helpful=True),
        lambda: give_article_feedback(article=article, member=member, helpful=False),
    )

    assert errors == []
    article.refresh_from_db()
    feedback = ArticleFeedback.objects.get()
    assert article.helpful_count + article.not_helpful_count == 1
    assert article.helpful_count == int(feedback.helpful)


@pytest.mark.parametrize("params", [{}, {"q": "guide"}], ids=["list", "search"])
@pytest.mark.parametrize("page", ["99999999999999999999", "7"])
def test_page_out_of_range_shows_last_page(member_client, params, page):
    owner = factories.StaffFactory()
    for number in range(21):
        make_article(title=f"Guide {number:02d}", owner=owner)

    response = member_client.get(LIST_URL, {**params, "page": page})

    assert response.status_code == 200
    assert response.context["article_page"].page == 2
    assert len(response.context["article_page"].hits) == 1


def test_search_snippet_drops_markdown_markers(member_client):
    make_article(
        title="Reports",
        body="Open the menu and choose **Export** then `CSV` or _all_ rows.\n"
        "## Export limits\nsnake_case names stay.",
    )

    response = member_client.get(LIST_URL, {"q": "export"})

    snippet = str(response.context["article_page"].hits[0].snippet)
    assert "<mark>Export</mark>" in snippet
    for marker in ("*", "`", "#", "_all_"):
        assert marker not in snippet
    assert "all rows" in snippet


def test_search_without_result_is_logged_and_grouped(member_client, member):
    make_article(title="Invoices")

    member_client.get(LIST_URL, {"q": "zzzqqq"})
    member_client.get(LIST_URL, {"q": "zzzqqq"})
    member_client.get(LIST_URL, {"q": "invoices"})
    member_client.get(LIST_URL, {"q": "zzzqqq", "page": 2})

    logged = SearchLog.objects.get()
    assert (logged.query, logged.member, logged.result_count) == ("zzzqqq", member, 0)
    group_content_gaps()
    assert ContentGap.objects.get().key == "search:zzzqqq"
