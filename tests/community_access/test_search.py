from datetime import date, timedelta

import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from apps.community.models import SearchLog, Topic
from apps.community.search import (
    SearchFilters,
    list_similar_questions,
    log_search_without_results,
    search_posts,
)
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()


def _topic_ids(page):
    return [result.topic_id for result in page.results]


def test_search_posts_title_match_ranks_first(members_space, outsider):
    in_body = factories.TopicFactory(
        space=members_space, title="Reports", body="How do webhooks retry?"
    )
    in_title = factories.TopicFactory(
        space=members_space, title="Webhooks retry policy", body="Details inside."
    )

    page = search_posts(query="webhooks retry", member=outsider)

    assert _topic_ids(page) == [in_title.pk, in_body.pk]


def test_search_posts_finds_replies(members_space, outsider):
    reply = factories.ReplyFactory(
        topic=factories.TopicFactory(space=members_space),
        body="Rotate the signing secret every quarter.",
    )

    page = search_posts(query="signing secret", member=outsider)

    assert [(r.topic_id, r.reply_id) for r in page.results] == [
        (reply.topic_id, reply.pk)
    ]


def test_search_posts_snippet_escapes_html_and_keeps_marks(members_space, outsider):
    factories.TopicFactory(
        space=members_space,
        title="Embed question",
        body="Pasting <script>alert(1)</script> into the embed widget breaks it.",
    )

    page = search_posts(query="widget", member=outsider)
    snippet = str(page.results[0].snippet)

    assert "<script>" not in snippet
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in snippet
    assert "<mark>widget</mark>" in snippet


def test_search_posts_title_highlight_escaped(members_space, outsider):
    factories.TopicFactory(
        space=members_space, title="<b>Bold</b> exports", body="Nothing else."
    )

    page = search_posts(query="exports", member=outsider)

    assert str(page.results[0].title) == "&lt;b&gt;Bold&lt;/b&gt; <mark>exports</mark>"


def test_search_posts_excludes_private_and_hidden(
    private_topic, members_space, outsider, group_member
):
    factories.TopicFactory(space=members_space, title="Roadmap hidden", is_hidden=True)
    factories.ReplyFactory(topic=private_topic, body="Roadmap reply in private")

    assert search_posts(query="roadmap", member=outsider).results == []
    member_page = search_posts(query="roadmap", member=group_member)
    assert {r.topic_id for r in member_page.results} == {private_topic.pk}


def test_search_posts_filters(members_space, outsider):
    other_space = factories.SpaceFactory(slug="other")
    question = factories.TopicFactory(space=members_space, title="Billing invoices")
    idea = factories.TopicFactory(
        space=members_space, title="Billing invoices idea", kind=Topic.Kind.IDEA
    )
    elsewhere = factories.TopicFactory(space=other_space, title="Billing invoices")
    solved = factories.TopicFactory(space=members_space, title="Billing invoices ok")
    answer = factories.ReplyFactory(topic=solved, body="Use the portal.")
    solved.accepted_reply = answer
    solved.save(update_fields=["accepted_reply"])
    old = factories.TopicFactory(
        space=members_space,
        title="Billing invoices old",
        created_at=timezone.now() - timedelta(days=40),
    )

    def found(**filters):
        page = search_posts(
            query="billing", member=outsider, filters=SearchFilters(**filters)
        )
        return set(_topic_ids(page))

    assert found(space="other") == {elsewhere.pk}
    assert found(kind="idea") == {idea.pk}
    assert found(is_solved=True) == {solved.pk}
    assert found(is_solved=False) == {question.pk, elsewhere.pk, old.pk}
    assert found(date_to=date.today() - timedelta(days=30)) == {old.pk}


def test_search_posts_tag_filter(members_space, outsider):
    from apps.community.models import Tag

    tag = Tag.objects.create(name="SSO", slug="sso")
    tagged = factories.TopicFactory(space=members_space, title="Login loops")
    tagged.tags.add(tag)
    factories.TopicFactory(space=members_space, title="Login page")

    page = search_posts(
        query="login", member=outsider, filters=SearchFilters(tag="sso")
    )

    assert _topic_ids(page) == [tagged.pk]


def test_search_posts_paginates(members_space, outsider):
    factories.TopicFactory.create_batch(5, space=members_space, title="Alerts")

    first = search_posts(query="alerts", member=outsider, per_page=2)
    last = search_posts(query="alerts", member=outsider, per_page=2, page=3)

    assert len(first.results) == 2
    assert first.has_next is True
    assert len(last.results) == 1
    assert last.has_next is False


@pytest.mark.parametrize("per_page", [2, 10])
def test_search_posts_topic_hits_query_count(
    members_space, outsider, per_page, django_assert_num_queries
):
    factories.TopicFactory.create_batch(12, space=members_space, title="Sync")

    with django_assert_num_queries(2):
        page = search_posts(query="sync", member=outsider, per_page=per_page)

    assert len(page.results) == per_page


@pytest.mark.parametrize("per_page", [2, 10])
def test_search_posts_reply_hits_query_count(
    members_space, outsider, per_page, django_assert_num_queries
):
    for topic in factories.TopicFactory.create_batch(12, space=members_space):
        factories.ReplyFactory(topic=topic, body="Sync again")

    with django_assert_num_queries(3):
        page = search_posts(query="sync", member=outsider, per_page=per_page)

    assert len(page.results) == per_page


def test_search_page_logs_no_result_once_a_minute(member_client, member):
    url = reverse("community:search")

    member_client.get(url, {"q": "  nothing   matches "})
    member_client.get(url, {"q": "nothing matches"})

    logs = list(SearchLog.objects.values_list("query", "member_id", "result_count"))
    assert logs == [("nothing matches", member.pk, 0)]


def test_log_search_without_results_stores_filters(outsider):
    logged = log_search_without_results(
        query="sso", member=outsider, filters=SearchFilters(space="questions")
    )

    assert logged is True
    assert SearchLog.objects.get().filters == {"space": "questions"}


def test_search_page_renders_results(member_client, member):
    space = factories.SpaceFactory(visibility="members")
    factories.TopicFactory(space=space, title="Exporting <em>CSV</em>")

    response = member_client.get(reverse("community:search"), {"q": "exporting"})

    content = response.content.decode()
    assert response.status_code == 200
    assert "<mark>Exporting</mark> &lt;em&gt;CSV&lt;/em&gt;" in content
    assert not SearchLog.objects.exists()


def test_list_similar_questions_only_visible_questions(
    private_topic, members_space, outsider, group_member
):
    visible = factories.TopicFactory(
        space=members_space, title="How to schedule an export"
    )
    factories.TopicFactory(
        space=members_space, title="Export idea", kind=Topic.Kind.IDEA
    )

    outsider_found = list_similar_questions(title="export roadmap", member=outsider)
    member_found = list_similar_questions(title="export roadmap", member=group_member)

    assert outsider_found == [visible]
    assert set(member_found) == {visible, private_topic}


def test_similar_questions_endpoint_hides_private(client, private_topic, outsider):
    client.force_login(outsider.user)

    response = client.get(reverse("community:similar_questions"), {"title": "roadmap"})

    assert response.status_code == 200
    assert private_topic.title not in response.content.decode()
