"""The moderator queue and the moderation log: styles and query counts."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.community.models import Flag, ModerationAction
from tests import factories

LOG_URL = reverse("community:moderation_log")
QUEUE_URL = reverse("community:moderation_queue")
STYLESHEET = "css/community-moderation.css"


def _count(client, url: str) -> int:
    with CaptureQueriesContext(connection) as context:
        response = client.get(url)
    assert response.status_code == 200
    return len(context.captured_queries)


def _log_reply_actions(space, count: int) -> None:
    for _ in range(count):
        reply = factories.ReplyFactory(topic=factories.TopicFactory(space=space))
        ModerationAction.objects.create(action="hide", reply=reply, reason="Spam")


@pytest.mark.parametrize("count", [1, 10])
def test_moderation_log_query_count(champion_client, space, count):
    _log_reply_actions(space, count)
    champion_client.get(LOG_URL)

    # Session, user, member, the user's and the group's permissions, the
    # page count, the page of actions with their actors, posts and members,
    # and the unread notification count. No query runs per row, not even
    # for the reply links.
    assert _count(champion_client, LOG_URL) == 8


def test_moderation_log_marks_action_kind(champion_client, space):
    _log_reply_actions(space, 1)

    html = champion_client.get(LOG_URL).content.decode()

    assert '<span class="log-action log-action--hide">hide</span>' in html
    assert STYLESHEET in html


def test_moderation_queue_uses_its_stylesheet(champion_client, question):
    Flag.objects.create(
        reporter=factories.MemberFactory(), topic=question, reason="spam", note="Ad"
    )

    html = champion_client.get(QUEUE_URL).content.decode()

    assert STYLESHEET in html
    assert '<li class="moderation-item">' in html
    assert '<span class="flag-reasons__note">Ad</span>' in html
