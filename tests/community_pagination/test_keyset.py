import base64
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from apps.community.models import Reply, Space, Topic
from apps.community.pagination import (
    InvalidCursor,
    KeysetPage,
    PageRequest,
    decode_cursor,
    encode_cursor,
)
from apps.community.views import REPLIES_PER_PAGE, TOPICS_PER_PAGE, reply_page_url
from apps.lifecycle.models import ActivityEvent
from tests import factories

REPLY_ORDERING = ("created_at", "id")
TOPIC_ORDERING = ("-last_activity_at", "-id")


@pytest.fixture
def space(db):
    return factories.SpaceFactory(
        name="Questions", slug="questions", visibility=Space.Visibility.MEMBERS
    )


@pytest.fixture
def topic(space):
    return factories.TopicFactory(space=space)


def topic_url(topic) -> str:
    return reverse("community:topic", kwargs={"pk": topic.pk})


def space_url(space) -> str:
    return reverse("community:space", kwargs={"slug": space.slug})


def create_replies(topic, count: int, *, same_timestamp_run: int = 1) -> list[Reply]:
    """Create `count` replies, `same_timestamp_run` of them per created_at value."""
    author = factories.MemberFactory()
    start = timezone.now() - timedelta(days=1)
    replies = [
        Reply(
            topic=topic,
            author=author,
            body=f"Reply {index}",
            created_at=start + timedelta(seconds=index // same_timestamp_run),
        )
        for index in range(count)
    ]
    return Reply.objects.bulk_create(replies)


def ordered_reply_ids(topic) -> list[int]:
    return list(
        Reply.objects.filter(topic=topic)
        .order_by("created_at", "id")
        .values_list("id", flat=True)
    )


def encode_raw(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


# Cursor encoding


def test_cursor_round_trip():
    position = (timezone.now(), 1234)

    assert decode_cursor(encode_cursor(position)) == position


def test_cursor_has_no_padding():
    cursor = encode_cursor((timezone.now(), 7))

    assert "=" not in cursor


# Walking pages


def test_reply_pages_forward_no_gaps(member_client, topic):
    # Runs of 7 equal timestamps put page boundaries inside a run.
    create_replies(topic, 3 * REPLIES_PER_PAGE + 10, same_timestamp_run=7)

    seen = []
    url = topic_url(topic)
    for _ in range(10):
        page = member_client.get(url).context["page_obj"]
        seen.extend(reply.pk for reply in page.object_list)
        if not page.has_next:
            break
        url = f"{topic_url(topic)}?after={page.next_cursor}"

    assert len(seen) == len(set(seen))
    assert seen == ordered_reply_ids(topic)


def test_reply_pages_backward_no_gaps(member_client, topic):
    create_replies(topic, 3 * REPLIES_PER_PAGE + 10, same_timestamp_run=7)

    pages = []
    url = f"{topic_url(topic)}?page=last"
    for _ in range(10):
        page = member_client.get(url).context["page_obj"]
        pages.append([reply.pk for reply in page.object_list])
        if not page.has_previous:
            break
        url = f"{topic_url(topic)}?before={page.previous_cursor}"
    seen = [pk for page_ids in reversed(pages) for pk in page_ids]

    assert len(seen) == len(set(seen))
    assert seen == ordered_reply_ids(topic)
    assert len(pages[0]) == REPLIES_PER_PAGE


def test_reply_previous_after_next_returns_same(member_client, topic):
    create_replies(topic, 2 * REPLIES_PER_PAGE + 5, same_timestamp_run=3)
    first = member_client.get(topic_url(topic)).context["page_obj"]
    second = member_client.get(f"{topic_url(topic)}?after={first.next_cursor}").context[
        "page_obj"
    ]

    back = member_client.get(
        f"{topic_url(topic)}?before={second.previous_cursor}"
    ).context["page_obj"]

    assert back.object_list == first.object_list
    assert not back.has_previous
    assert back.has_next


def test_topic_pages_newest_first_no_gaps(member_client, space):
    now = timezone.now()
    topics = [
        factories.TopicFactory(
            space=space, last_activity_at=now - timedelta(minutes=index // 4)
        )
        for index in range(2 * TOPICS_PER_PAGE + 3)
    ]
    expected = [
        topic.pk
        for topic in sorted(
            topics, key=lambda t: (t.last_activity_at, t.pk), reverse=True
        )
    ]

    seen = []
    url = space_url(space)
    for _ in range(10):
        page = member_client.get(url).context["page_obj"]
        seen.extend(topic.pk for topic in page.object_list)
        if not page.has_next:
            break
        url = f"{space_url(space)}?after={page.next_cursor}"

    assert len(seen) == len(set(seen))
    assert seen == expected


def test_topic_page_links_use_cursors(member_client, space):
    factories.TopicFactory.create_batch(TOPICS_PER_PAGE + 1, space=space)
    first = member_client.get(space_url(space))
    page = first.context["page_obj"]
    second = member_client.get(f"{space_url(space)}?after={page.next_cursor}")

    first_html = first.content.decode()
    second_html = second.content.decode()
    previous_cursor = second.context["page_obj"].previous_cursor
    assert f'href="?after={page.next_cursor}" rel="next">Older topics' in first_html
    assert 'href="?page=last">Oldest topics' in first_html
    assert f'href="?before={previous_cursor}" rel="prev">Newer topics' in second_html
    assert f'href="{space_url(space)}">Latest topics' in second_html


def test_keyset_page_cursor_past_end_shows_last(topic):
    create_replies(topic, 5)
    beyond = (timezone.now() + timedelta(days=1), 1)

    page = KeysetPage(
        Reply.objects.filter(topic=topic),
        ordering=REPLY_ORDERING,
        per_page=3,
        request=PageRequest(after=beyond),
    )

    assert [reply.pk for reply in page.object_list] == ordered_reply_ids(topic)[2:]
    assert page.has_previous
    assert not page.has_next


def test_keyset_page_rejects_mixed_directions(topic):
    with pytest.raises(ValueError, match="one direction"):
        KeysetPage(
            Reply.objects.all(),
            ordering=("-created_at", "id"),
            per_page=3,
            request=PageRequest(),
        )


# Malformed cursors

MALFORMED_QUERIES = [
    "after=not%20base64!",
    "after=",
    "before=" + "A" * 500,
    "after=" + encode_raw("no separator"),
    "after=" + encode_raw("yesterday|12"),
    "after=" + encode_raw("2024-05-01T10:00:00|12"),
    "before=" + encode_raw("2024-05-01T10:00:00+00:00|twelve"),
    "before=" + encode_raw("2024-05-01T10:00:00+00:00|-3"),
    "after={cursor}&before={cursor}",
]


@pytest.mark.parametrize("query", MALFORMED_QUERIES)
def test_topic_page_malformed_cursor_400(member_client, member, topic, query):
    cursor = encode_cursor((timezone.now(), 1))

    response = member_client.get(f"{topic_url(topic)}?{query.format(cursor=cursor)}")

    assert response.status_code == 400
    assert response.content.decode().startswith("Invalid page link:")
    assert not ActivityEvent.objects.filter(kind="community.topic_viewed").exists()


@pytest.mark.parametrize("query", MALFORMED_QUERIES)
def test_space_page_malformed_cursor_400(member_client, space, query):
    cursor = encode_cursor((timezone.now(), 1))

    response = member_client.get(f"{space_url(space)}?{query.format(cursor=cursor)}")

    assert response.status_code == 400
    assert "Open the list from its first page." in response.content.decode()


def test_decode_cursor_naive_timestamp_rejected():
    with pytest.raises(InvalidCursor, match="time zone"):
        decode_cursor(encode_raw("2024-05-01T10:00:00|12"))


# Cost of deep pages


@pytest.fixture
def long_topic(topic):
    create_replies(topic, 300, same_timestamp_run=2)
    return topic


def deep_cursor(topic) -> str:
    """Return an `after` cursor for the 251st reply of the topic."""
    reply = Reply.objects.filter(topic=topic).order_by("created_at", "id")[250]
    return encode_cursor((reply.created_at, reply.pk))


def test_deep_page_same_query_count(
    member_client, long_topic, django_assert_num_queries
):
    first_url = topic_url(long_topic)
    deep_url = f"{topic_url(long_topic)}?after={deep_cursor(long_topic)}"
    member_client.get(first_url)
    with CaptureQueriesContext(connection) as first_page:
        member_client.get(first_url)
    first_count = len(first_page.captured_queries)

    with django_assert_num_queries(first_count):
        response = member_client.get(deep_url)

    assert response.status_code == 200
    assert len(response.context["page_obj"].object_list) == REPLIES_PER_PAGE - 1
    with django_assert_num_queries(first_count):
        member_client.get(f"{first_url}?page=last")


def test_deep_page_sql_has_no_offset(member_client, long_topic):
    deep_url = f"{topic_url(long_topic)}?after={deep_cursor(long_topic)}"

    with CaptureQueriesContext(connection) as context:
        response = member_client.get(deep_url)

    reply_sql = [query["sql"] for query in context.captured_queries]
    reply_sql = [sql for sql in reply_sql if '"community_reply"' in sql]
    assert response.status_code == 200
    assert reply_sql
    for sql in reply_sql:
        assert "OFFSET" not in sql.upper()
        assert "COUNT(" not in sql.upper()


def test_space_deep_page_sql_has_no_offset(member_client, space):
    factories.TopicFactory.create_batch(2 * TOPICS_PER_PAGE, space=space)
    first = member_client.get(space_url(space)).context["page_obj"]

    with CaptureQueriesContext(connection) as context:
        member_client.get(f"{space_url(space)}?after={first.next_cursor}")

    topic_sql = [query["sql"] for query in context.captured_queries]
    topic_sql = [sql for sql in topic_sql if 'FROM "community_topic"' in sql]
    assert topic_sql
    for sql in topic_sql:
        assert "OFFSET" not in sql.upper()
        assert "COUNT(" not in sql.upper()


# Links to a reply


def test_reply_post_redirect_shows_new_reply(member_client, long_topic):
    response = member_client.post(
        reverse("community:reply", kwargs={"pk": long_topic.pk}),
        {"body": "The newest answer."},
    )
    reply = Reply.objects.get(body="The newest answer.")
    landing = member_client.get(response.url)
    page = landing.context["page_obj"]
    html = landing.content.decode()

    assert response.status_code == 302
    assert response.url.endswith(f"#reply-{reply.pk}")
    assert page.object_list[-1] == reply
    assert len(page.object_list) == REPLIES_PER_PAGE
    assert not page.has_next
    assert 'hx-post="' in html


def test_reply_page_url_middle_reply(member_client, long_topic):
    reply = Reply.objects.filter(topic=long_topic).order_by("created_at", "id")[120]

    page = member_client.get(reply_page_url(reply)).context["page_obj"]

    assert reply in page.object_list
    assert page.object_list[-1] == reply
    assert page.has_next
    assert page.has_previous


def test_reply_page_url_equal_timestamps(member_client, topic):
    replies = create_replies(topic, 12, same_timestamp_run=12)
    target = sorted(replies, key=lambda reply: reply.pk)[5]

    page = member_client.get(reply_page_url(target)).context["page_obj"]

    assert [reply.pk for reply in page.object_list] == ordered_reply_ids(topic)[:6]
    assert page.has_next


def test_topic_ordering_matches_model_meta():
    assert tuple(Topic._meta.ordering) == TOPIC_ORDERING
    assert tuple(Reply._meta.ordering) == REPLY_ORDERING
