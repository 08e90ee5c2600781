"""Vote and kudos buttons show the viewer's own vote and kudos."""

import re

from django.urls import reverse

from apps.community.models import Kudos, Space, Vote
from tests import factories

HTMX_HEADERS = {"HTTP_HX_REQUEST": "true"}


def _reactions_html(html: str, kind: str, pk: int) -> str:
    match = re.search(
        rf'<div class="reactions" id="reactions-{kind}-{pk}">(.*?)</div>', html, re.S
    )
    assert match is not None, f"no reactions block for {kind} {pk}"
    return match.group(1)


def _pressed_labels(block: str) -> list[str]:
    """Return the aria-label or text of each pressed button in the block."""
    labels = []
    for button in re.findall(r"<button[^>]*aria-pressed=\"true\"[^>]*>[^<]*", block):
        label = re.search(r'aria-label="([^"]+)"', button)
        labels.append(label.group(1) if label else button.rsplit(">", 1)[1].strip())
    return labels


def _topic_page(client, topic) -> str:
    response = client.get(reverse("community:topic", kwargs={"pk": topic.pk}))
    assert response.status_code == 200
    return response.content.decode()


def test_topic_page_presses_own_votes(member_client, member):
    space = factories.SpaceFactory(visibility=Space.Visibility.MEMBERS)
    topic = factories.TopicFactory(space=space)
    up, down, untouched = factories.ReplyFactory.create_batch(3, topic=topic)
    Vote.objects.create(member=member, topic=topic, value=1)
    Vote.objects.create(member=member, reply=up, value=1)
    Vote.objects.create(member=member, reply=down, value=-1)
    Kudos.objects.create(member=member, reply=up)

    html = _topic_page(member_client, topic)

    assert _pressed_labels(_reactions_html(html, "topic", topic.pk)) == ["Vote up"]
    assert _pressed_labels(_reactions_html(html, "reply", up.pk)) == [
        "Vote up",
        "Kudos · 0",
    ]
    assert _pressed_labels(_reactions_html(html, "reply", down.pk)) == ["Vote down"]
    assert _pressed_labels(_reactions_html(html, "reply", untouched.pk)) == []


def test_topic_page_ignores_other_members_votes(member_client, member):
    space = factories.SpaceFactory(visibility=Space.Visibility.MEMBERS)
    topic = factories.TopicFactory(space=space)
    reply = factories.ReplyFactory(topic=topic)
    other = factories.MemberFactory()
    Vote.objects.create(member=other, reply=reply, value=1)
    Kudos.objects.create(member=other, reply=reply)

    html = _topic_page(member_client, topic)

    assert _pressed_labels(_reactions_html(html, "reply", reply.pk)) == []


def test_pressed_vote_button_withdraws(member_client, member):
    space = factories.SpaceFactory(visibility=Space.Visibility.MEMBERS)
    reply = factories.ReplyFactory(topic=factories.TopicFactory(space=space))
    url = reverse("community:vote", args=["reply", reply.pk])

    pressed = member_client.post(url, {"value": "1"}, **HTMX_HEADERS).content.decode()
    withdrawn = member_client.post(url, {"value": "0"}, **HTMX_HEADERS)

    assert _pressed_labels(pressed) == ["Vote up"]
    assert 'name="value" value="0"' in pressed
    assert _pressed_labels(withdrawn.content.decode()) == []
    assert not Vote.objects.filter(member=member, reply=reply).exists()


def test_kudos_response_shows_pressed(member_client, member):
    space = factories.SpaceFactory(visibility=Space.Visibility.MEMBERS)
    topic = factories.TopicFactory(space=space)
    url = reverse("community:kudos", args=["topic", topic.pk])

    given = member_client.post(url, {"action": "give"}, **HTMX_HEADERS)
    removed = member_client.post(url, {"action": "remove"}, **HTMX_HEADERS)

    assert _pressed_labels(given.content.decode()) == ["Kudos · 1"]
    assert _pressed_labels(removed.content.decode()) == []
    assert not Kudos.objects.filter(member=member, topic=topic).exists()
