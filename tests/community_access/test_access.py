import pytest
from django.urls import reverse
from django.utils import timezone

from apps.community.models import Reply, SpaceMembership, Topic
from apps.community.selectors import (
    can_moderate_space,
    can_post_in_space,
    can_view_space,
    filter_visible_replies,
    filter_visible_topics,
    list_member_posts_visible_to,
    list_visible_spaces,
)
from apps.community.services.access import add_space_member, remove_space_member
from rm6.errors import DomainError
from tests import factories

pytestmark = pytest.mark.django_db


def test_list_visible_spaces_private_only_for_group(
    private_space, members_space, group_member, outsider
):
    assert set(list_visible_spaces(member=outsider)) == {members_space}
    assert set(list_visible_spaces(member=group_member)) == {
        members_space,
        private_space,
    }
    assert private_space in list_visible_spaces(member=None, is_staff=True)
    assert private_space not in list_visible_spaces(member=None)


def test_list_visible_spaces_one_query(
    private_space, group_member, django_assert_num_queries
):
    factories.SpaceFactory.create_batch(3)
    with django_assert_num_queries(1):
        list(list_visible_spaces(member=group_member))


def test_can_view_space_follows_membership(private_space, group_member, outsider):
    assert can_view_space(member=group_member, space=private_space)
    assert not can_view_space(member=outsider, space=private_space)
    assert not can_view_space(member=None, space=private_space)
    assert can_post_in_space(member=group_member, space=private_space)
    assert not can_post_in_space(member=outsider, space=private_space)


def test_remove_space_member_revokes_access(private_space, group_member):
    removed = remove_space_member(space=private_space, member=group_member)

    assert removed is True
    assert not can_view_space(member=group_member, space=private_space)
    assert not SpaceMembership.objects.filter(member=group_member).exists()
    assert not group_member.user.has_perm("community.view_space", private_space)


def test_add_space_member_grants_guardian_permissions(private_space, group_moderator):
    user = group_moderator.user

    assert user.has_perm("community.view_space", private_space)
    assert user.has_perm("community.change_space", private_space)
    assert can_moderate_space(member=group_moderator, space=private_space)


def test_add_space_member_demotion_revokes_moderation(private_space, group_moderator):
    add_space_member(space=private_space, member=group_moderator, role="member")

    assert not can_moderate_space(member=group_moderator, space=private_space)
    assert can_view_space(member=group_moderator, space=private_space)


def test_add_space_member_rejects_open_space(members_space, outsider):
    with pytest.raises(DomainError) as raised:
        add_space_member(space=members_space, member=outsider)

    assert raised.value.message == (
        "Questions is not a private group, so it has no member list; set its "
        "visibility to private group first."
    )
    assert not SpaceMembership.objects.exists()


def test_filter_visible_topics_hides_private_and_hidden(
    private_topic, members_space, group_member, outsider, group_moderator
):
    public = factories.TopicFactory(space=members_space)
    hidden = factories.TopicFactory(space=members_space, is_hidden=True)
    deleted = factories.TopicFactory(space=members_space, deleted_at=timezone.now())
    hidden_private = factories.TopicFactory(space=private_topic.space, is_hidden=True)

    outsider_sees = set(filter_visible_topics(Topic.objects.all(), outsider))
    member_sees = set(filter_visible_topics(Topic.objects.all(), group_member))
    moderator_sees = set(filter_visible_topics(Topic.objects.all(), group_moderator))
    staff_sees = set(filter_visible_topics(Topic.objects.all(), None, True))

    assert outsider_sees == {public}
    assert member_sees == {public, private_topic}
    assert moderator_sees == {public, private_topic, hidden_private}
    assert staff_sees == {public, hidden, deleted, private_topic, hidden_private}


def test_filter_visible_replies_hides_replies_of_hidden_topic(members_space, outsider):
    topic = factories.TopicFactory(space=members_space, is_hidden=True)
    factories.ReplyFactory(topic=topic)
    visible = factories.ReplyFactory(topic=factories.TopicFactory(space=members_space))
    factories.ReplyFactory(topic=visible.topic, is_hidden=True)

    assert list(filter_visible_replies(Reply.objects.all(), outsider)) == [visible]


def test_filter_visible_topics_suspended_member_still_reads(members_space, outsider):
    from apps.community.models import Suspension

    topic = factories.TopicFactory(space=members_space)
    Suspension.objects.create(member=outsider, starts_at=timezone.now(), reason="Spam")

    assert list(filter_visible_topics(Topic.objects.all(), outsider)) == [topic]


def test_list_member_posts_visible_to_hides_private(
    private_topic, group_member, outsider
):
    factories.ReplyFactory(topic=private_topic, author=group_member)

    posts = list_member_posts_visible_to(author=group_member, viewer=outsider)

    assert posts["topics"] == []
    assert posts["replies"] == []
    assert posts["topic_count"] == 0
    assert posts["reply_count"] == 0


def test_topic_page_private_topic_is_404_for_outsider(client, private_topic, outsider):
    client.force_login(outsider.user)

    response = client.get(reverse("community:topic", kwargs={"pk": private_topic.pk}))

    assert response.status_code == 404


def test_topic_page_private_topic_for_group_member(client, private_topic, group_member):
    client.force_login(group_member.user)

    response = client.get(reverse("community:topic", kwargs={"pk": private_topic.pk}))

    assert response.status_code == 200


def test_space_list_page_hides_private_group(client, private_space, outsider):
    client.force_login(outsider.user)

    response = client.get(reverse("community:spaces"))

    assert "Champions" not in response.content.decode()


def test_member_posts_page_hides_private(client, private_topic, group_member, outsider):
    group_member.show_activity = True
    group_member.save(update_fields=["show_activity"])
    client.force_login(outsider.user)

    response = client.get(
        reverse("community:member_posts", kwargs={"pk": group_member.pk})
    )

    assert private_topic.title not in response.content.decode()
