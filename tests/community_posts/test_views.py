from django.urls import reverse

from apps.community.models import PostRevision, Space, Tag
from tests import factories

HTMX_HEADERS = {"HTTP_HX_REQUEST": "true"}


def test_topic_edit_by_author_saves(member_client, member):
    topic = factories.TopicFactory(author=member, title="Old")

    response = member_client.post(
        reverse("community:topic_edit", args=[topic.pk]),
        {"title": "New", "body": "**Body**"},
    )

    topic.refresh_from_db()
    assert response.status_code == 302
    assert topic.title == "New"
    assert PostRevision.objects.get().title == "Old"


def test_topic_edit_by_other_member_forbidden_and_unchanged(member_client):
    topic = factories.TopicFactory(title="Old")

    response = member_client.post(
        reverse("community:topic_edit", args=[topic.pk]),
        {"title": "New", "body": "Spam"},
    )

    topic.refresh_from_db()
    assert response.status_code == 403
    assert topic.title == "Old"
    assert not PostRevision.objects.exists()


def test_post_history_forbidden_for_other_member(member_client):
    topic = factories.TopicFactory()

    response = member_client.get(
        reverse("community:post_history", args=["topic", topic.pk])
    )

    assert response.status_code == 403


def test_post_history_shown_to_author(member_client, member):
    topic = factories.TopicFactory(author=member)
    PostRevision.objects.create(topic=topic, editor=member.user, body="Before")

    response = member_client.get(
        reverse("community:post_history", args=["topic", topic.pk])
    )

    assert response.status_code == 200
    assert "Before" in response.content.decode()


def test_vote_htmx_returns_score(member_client):
    topic = factories.TopicFactory()

    response = member_client.post(
        reverse("community:vote", args=["topic", topic.pk]),
        {"value": "1"},
        **HTMX_HEADERS,
    )

    topic.refresh_from_db()
    assert response.status_code == 200
    assert topic.vote_score == 1
    assert 'aria-label="Score">1<' in response.content.decode()


def test_vote_anonymous_redirected_and_unchanged(client, db):
    topic = factories.TopicFactory(space__visibility=Space.Visibility.PUBLIC)

    response = client.post(
        reverse("community:vote", args=["topic", topic.pk]), {"value": "1"}
    )

    topic.refresh_from_db()
    assert response.status_code == 302
    assert topic.vote_score == 0


def test_kudos_on_other_account_space_is_404(member_client):
    topic = factories.TopicFactory(
        space__visibility=Space.Visibility.ACCOUNT,
        space__account=factories.AccountFactory(),
    )

    response = member_client.post(reverse("community:kudos", args=["topic", topic.pk]))

    topic.refresh_from_db()
    assert response.status_code == 404
    assert topic.kudos_count == 0


def test_tag_page_lists_visible_topics_only(client, db):
    tag = Tag.objects.create(name="API", slug="api")
    public = factories.TopicFactory(
        title="Public one", space__visibility=Space.Visibility.PUBLIC
    )
    members_only = factories.TopicFactory(title="Members one")
    public.tags.add(tag)
    members_only.tags.add(tag)

    response = client.get(reverse("community:tag", args=["api"]))

    html = response.content.decode()
    assert response.status_code == 200
    assert "Public one" in html
    assert "Members one" not in html


def test_topic_page_renders_markdown_and_quote(member_client):
    topic = factories.TopicFactory(body="**bold**")
    quoted = factories.ReplyFactory(topic=topic, body="Original words")
    factories.ReplyFactory(topic=topic, body="Agreed", quoted_reply=quoted)

    html = member_client.get(topic.get_absolute_url()).content.decode()

    assert "<strong>bold</strong>" in html
    assert 'class="post__quote"' in html
    assert f'href="#reply-{quoted.pk}"' in html


def test_mention_search_returns_snippet(member_client):
    grace = factories.MemberFactory(display_name="Grace Hopper")

    response = member_client.get(reverse("community:mention_search"), {"q": "grace"})

    assert f"@[Grace Hopper](member:{grace.pk})" in response.content.decode()
