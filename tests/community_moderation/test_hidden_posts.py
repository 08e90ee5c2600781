"""Hidden and deleted posts reach moderators only, on every list."""

from django.urls import reverse
from django.utils import timezone

from apps.community.models import SpaceMembership
from apps.community.selectors import list_recent_posts_by_member
from apps.community.services.access import add_space_member
from tests import factories

HTMX_HEADERS = {"HTTP_HX_REQUEST": "true"}


def topic_url(topic) -> str:
    return reverse("community:topic", kwargs={"pk": topic.pk})


def space_url(space) -> str:
    return reverse("community:space", kwargs={"slug": space.slug})


def _reply_ids(response) -> list[int]:
    return [reply.pk for reply in response.context["page_obj"].object_list]


def test_topic_page_hides_hidden_reply_from_members(client, question, asker):
    shown = factories.ReplyFactory(topic=question)
    hidden = factories.ReplyFactory(topic=question, is_hidden=True, body="Secret")
    client.force_login(factories.MemberFactory().user)

    response = client.get(topic_url(question))

    assert _reply_ids(response) == [shown.pk]
    assert f'id="reply-{hidden.pk}"' not in response.content.decode()


def test_topic_page_hides_hidden_reply_from_its_author(client, question):
    hidden = factories.ReplyFactory(topic=question, is_hidden=True)
    client.force_login(hidden.author.user)

    response = client.get(topic_url(question))

    assert _reply_ids(response) == []


def test_topic_page_hides_deleted_reply_from_members(member_client, question):
    factories.ReplyFactory(topic=question, deleted_at=timezone.now())

    response = member_client.get(topic_url(question))

    assert _reply_ids(response) == []


def test_topic_page_shows_hidden_reply_to_champion(champion_client, question):
    hidden = factories.ReplyFactory(topic=question, is_hidden=True)

    response = champion_client.get(topic_url(question))

    assert _reply_ids(response) == [hidden.pk]
    assert "Hidden: only moderators see this reply." in response.content.decode()


def test_topic_page_shows_hidden_reply_to_group_moderator(client, db):
    group = factories.SpaceFactory(visibility="private")
    moderator = factories.MemberFactory()
    add_space_member(space=group, member=moderator, role=SpaceMembership.Role.MODERATOR)
    topic = factories.TopicFactory(space=group)
    hidden = factories.ReplyFactory(topic=topic, is_hidden=True)
    client.force_login(moderator.user)

    response = client.get(topic_url(topic))

    assert _reply_ids(response) == [hidden.pk]


def test_topic_page_hides_hidden_reply_from_visitor(client, db):
    space = factories.SpaceFactory(visibility="public")
    topic = factories.TopicFactory(space=space)
    factories.ReplyFactory(topic=topic, is_hidden=True)

    response = client.get(topic_url(topic))

    assert _reply_ids(response) == []


def test_space_page_hides_hidden_topic_from_members(member_client, space):
    shown = factories.TopicFactory(space=space)
    factories.TopicFactory(space=space, is_hidden=True)
    factories.TopicFactory(space=space, deleted_at=timezone.now())

    response = member_client.get(space_url(space))

    assert [t.pk for t in response.context["page_obj"].object_list] == [shown.pk]


def test_space_page_marks_hidden_topic_for_champion(champion_client, space):
    hidden = factories.TopicFactory(space=space, is_hidden=True)

    response = champion_client.get(space_url(space))

    assert [t.pk for t in response.context["page_obj"].object_list] == [hidden.pk]
    assert '<span class="badge badge--yellow">Hidden</span>' in (
        response.content.decode()
    )


def test_reply_htmx_count_leaves_out_hidden(client, question):
    factories.ReplyFactory(topic=question, is_hidden=True)
    member = factories.MemberFactory()
    client.force_login(member.user)

    response = client.post(
        reverse("community:reply", kwargs={"pk": question.pk}),
        {"body": "A first visible answer to this question."},
        **HTMX_HEADERS,
    )

    assert response.status_code == 200
    assert '<span id="reply-count" hx-swap-oob="true">1 reply</span>' in (
        response.content.decode()
    )


def test_recent_posts_leave_out_hidden(question, asker):
    factories.TopicFactory(space=question.space, author=asker, is_hidden=True)
    factories.ReplyFactory(topic=question, author=asker, is_hidden=True)
    shown = factories.ReplyFactory(topic=question, author=asker)

    posts = list_recent_posts_by_member(member=asker)

    assert posts["topics"] == [question]
    assert posts["replies"] == [shown]


def test_recent_posts_leave_out_left_group(db):
    group = factories.SpaceFactory(visibility="private")
    author = factories.MemberFactory()
    factories.TopicFactory(space=group, author=author)

    posts = list_recent_posts_by_member(member=author)

    assert posts["topics"] == []


def test_accept_hidden_reply_is_404(client, question, asker):
    hidden = factories.ReplyFactory(topic=question, is_hidden=True)
    client.force_login(asker.user)

    response = client.post(
        reverse("community:solution_accept", kwargs={"pk": question.pk}),
        {"reply": hidden.pk},
    )

    question.refresh_from_db()
    assert response.status_code == 404
    assert question.accepted_reply_id is None
