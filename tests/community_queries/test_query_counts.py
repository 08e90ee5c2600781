"""Each community page and API list runs the same number of queries at two sizes.

Every test fills a list with one item and then with a full page, and checks
the exact count both times, so a query added per item fails it.
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from apps.community.models import Kudos, Space, Tag, Vote
from apps.community.search import RESULTS_PER_PAGE
from apps.community.views import REPLIES_PER_PAGE, TOPICS_PER_PAGE
from apps.membership.models import Member
from apps.membership.services.roles import sync_role_groups
from tests import factories

SIZES = ["one", "full page"]


def _count(client, url: str, **extra) -> int:
    with CaptureQueriesContext(connection) as context:
        response = client.get(url, **extra)
    assert response.status_code == 200, url
    return len(context.captured_queries)


def _warm_count(client, url: str, **extra) -> int:
    """Return the queries of a second request, after caches have filled."""
    _count(client, url, **extra)
    return _count(client, url, **extra)


@pytest.fixture
def public_space(db):
    return factories.SpaceFactory(visibility=Space.Visibility.PUBLIC)


@pytest.fixture
def champion_client(client, db):
    champion = factories.MemberFactory(role=Member.Role.CHAMPION)
    sync_role_groups(champion)
    client.force_login(champion.user)
    return client


def _fill_topics(space, size: str) -> None:
    count = 1 if size == "one" else TOPICS_PER_PAGE + 1
    tags = [
        Tag.objects.get_or_create(name=name, slug=name)[0] for name in ["sso", "api"]
    ]
    for topic in factories.TopicFactory.create_batch(count, space=space):
        topic.tags.add(*tags)


def _fill_replies(topic, size: str, *, voter: Member | None = None) -> None:
    count = 1 if size == "one" else REPLIES_PER_PAGE + 1
    replies = factories.ReplyFactory.create_batch(count, topic=topic, quoted_reply=None)
    factories.ReplyFactory(topic=topic, quoted_reply=replies[0])
    if voter is not None:
        for reply in replies:
            Vote.objects.create(member=voter, reply=reply, value=1)
            Kudos.objects.create(member=voter, reply=reply)


# Space page


@pytest.mark.parametrize("size", SIZES)
def test_space_page_anonymous_query_count(client, public_space, size):
    _fill_topics(public_space, size)
    url = reverse("community:space", kwargs={"slug": public_space.slug})

    # Space, topic page with authors, the page's tags.
    assert _warm_count(client, url) == 3


@pytest.mark.parametrize("size", SIZES)
def test_space_page_champion_query_count(champion_client, public_space, size):
    _fill_topics(public_space, size)
    factories.TopicFactory(space=public_space, is_hidden=True)
    url = reverse("community:space", kwargs={"slug": public_space.slug})

    # Session, user, member, space, topics with authors, tags, unread
    # notification count. A champion moderates by role, with no query.
    assert _warm_count(champion_client, url) == 7


# Topic page


@pytest.mark.parametrize("size", SIZES)
def test_topic_page_anonymous_query_count(client, public_space, size):
    topic = factories.TopicFactory(space=public_space)
    _fill_replies(topic, size)
    url = reverse("community:topic", kwargs={"pk": topic.pk})

    # Topic with space and author, reply page with authors and quoted
    # replies, the topic's tags.
    assert _warm_count(client, url) == 3


@pytest.mark.parametrize("size", SIZES)
def test_topic_page_voter_query_count(client, public_space, size):
    voter = factories.MemberFactory()
    topic = factories.TopicFactory(space=public_space)
    Vote.objects.create(member=voter, topic=topic, value=1)
    _fill_replies(topic, size, voter=voter)
    client.force_login(voter.user)
    url = reverse("community:topic", kwargs={"pk": topic.pk})

    # Session, user, member, topic, topic_viewed event (one insert),
    # moderator permission on the space, reply page, the viewer's votes and
    # kudos, unread notification count, tags.
    assert _warm_count(client, url) == 10


@pytest.mark.parametrize("size", SIZES)
def test_topic_page_champion_query_count(champion_client, public_space, size):
    topic = factories.TopicFactory(space=public_space)
    _fill_replies(topic, size)
    factories.ReplyFactory(topic=topic, is_hidden=True)
    url = reverse("community:topic", kwargs={"pk": topic.pk})

    # As for a member, less the moderator permission check, plus the
    # spaces of the move form.
    assert _warm_count(champion_client, url) == 10


# Search page


def _fill_search(space, size: str) -> None:
    """Add one matching topic and one or a page of matching replies.

    Both sizes put topics and replies on the first page, because the reply
    snippets query runs only when the page contains a reply.
    """
    factories.TopicFactory(space=space, title="Exporter setup")
    count = 1 if size == "one" else RESULTS_PER_PAGE + 1
    # The factory's default body mentions the export, so these bodies do not.
    for topic in factories.TopicFactory.create_batch(
        count, space=space, body="How do I configure the token?"
    ):
        factories.ReplyFactory(topic=topic, body="The exporter needs a token.")


@pytest.mark.parametrize("size", SIZES)
def test_search_page_anonymous_query_count(client, public_space, size):
    _fill_search(public_space, size)
    url = reverse("community:search") + "?q=exporter"

    # Ranked page, topic snippets, reply snippets, the spaces filter.
    assert _warm_count(client, url) == 4


@pytest.mark.parametrize("size", SIZES)
def test_search_page_member_query_count(member_client, public_space, size):
    _fill_search(public_space, size)
    url = reverse("community:search") + "?q=exporter"

    # Session, user, member, then as for a visitor, and the unread
    # notification count.
    assert _warm_count(member_client, url) == 8


# API lists


@pytest.fixture
def member_api(member):
    client = APIClient()
    client.force_login(member.user)
    return client


@pytest.mark.parametrize("page_size", [1, 10])
def test_api_spaces_list_query_count(member_api, page_size):
    factories.SpaceFactory.create_batch(12, visibility=Space.Visibility.MEMBERS)

    # Session, user, member, the page of spaces.
    count = _warm_count(member_api, f"/api/v1/community/spaces/?page_size={page_size}")

    assert count == 4


@pytest.mark.parametrize("page_size", [1, 10])
def test_api_topics_list_query_count(member_api, public_space, page_size):
    _fill_topics(public_space, "full page")

    # Session, user, member, the page of topics, their tags.
    url = f"/api/v1/community/topics/?page_size={page_size}"

    assert _warm_count(member_api, url) == 5


@pytest.mark.parametrize("page_size", [1, 10])
def test_api_replies_list_query_count(member_api, public_space, page_size):
    topic = factories.TopicFactory(space=public_space)
    _fill_replies(topic, "full page")
    factories.ReplyFactory(topic=topic, is_hidden=True)

    # Session, user, member, the topic, the page of replies, and the
    # pagination's look-ahead.
    url = f"/api/v1/community/topics/{topic.pk}/replies/?page_size={page_size}"

    assert _warm_count(member_api, url) == 6
