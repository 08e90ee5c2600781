import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.community.models import Flag, ModerationAction, Space, Topic
from apps.community.services import post_reply, post_topic
from apps.community.services.moderation import (
    delete_post,
    dismiss_flags,
    flag_post,
    hide_post,
    lock_topic,
    merge_topic,
    move_topic,
    suspend_member,
    undelete_post,
    unhide_post,
    unlock_topic,
    unsuspend_member,
)
from apps.community.services.questions import accept_solution
from apps.lifecycle.models import ActivityEvent
from rm6.errors import DomainError
from tests import factories
from tests.community_moderation.conftest import assert_counters_exact, fix_counters


@pytest.fixture
def solved(question, replies):
    accept_solution(topic=question, reply=replies[0], actor_user=question.author.user)
    return question


# Flags


def test_flag_post_once_per_member(question):
    reporter = factories.MemberFactory()
    flag_post(reporter=reporter, post=question, reason="spam")

    with pytest.raises(DomainError) as caught:
        flag_post(reporter=reporter, post=question, reason="abuse")

    assert caught.value.code == "duplicate"
    assert Flag.objects.filter(topic=question).count() == 1


def test_flag_own_post_rejected(question):
    with pytest.raises(DomainError):
        flag_post(reporter=question.author, post=question, reason="spam")


def test_flag_threshold_hides_post(question, replies):
    reply = replies[1]
    for _ in range(3):
        flag_post(reporter=factories.MemberFactory(), post=reply, reason="spam")

    reply.refresh_from_db()
    assert reply.is_hidden is True
    assert ModerationAction.objects.filter(action="hide", reply=reply).count() == 1
    assert_counters_exact()


def test_flag_below_threshold_keeps_post(question):
    for _ in range(2):
        flag_post(reporter=factories.MemberFactory(), post=question, reason="spam")

    question.refresh_from_db()
    assert question.is_hidden is False


def test_dismiss_flags_unhides_automatic_hide(question, replies, staff_user):
    for _ in range(3):
        flag_post(reporter=factories.MemberFactory(), post=question, reason="spam")

    dismissed = dismiss_flags(post=question, actor_user=staff_user)

    question.refresh_from_db()
    assert dismissed == 3
    assert question.is_hidden is False
    assert_counters_exact()


def test_flag_in_invisible_space_not_found(db):
    private = factories.SpaceFactory(
        visibility=Space.Visibility.ACCOUNT, account=factories.AccountFactory()
    )
    topic = factories.TopicFactory(space=private)

    with pytest.raises(DomainError) as caught:
        flag_post(reporter=factories.MemberFactory(), post=topic, reason="spam")

    assert caught.value.code == "not_found"


# Counters through every action


def test_counters_after_hide_and_unhide_topic(solved, staff_user):
    hide_post(post=solved, actor_user=staff_user)
    assert_counters_exact()
    assert Space.objects.get(pk=solved.space_id).topic_count == 0

    unhide_post(post=solved, actor_user=staff_user)
    assert_counters_exact()
    assert Space.objects.get(pk=solved.space_id).solution_count == 1


def test_counters_after_hide_and_unhide_accepted_reply(solved, replies, staff_user):
    hide_post(post=replies[0], actor_user=staff_user)
    assert_counters_exact()
    assert Space.objects.get(pk=solved.space_id).solution_count == 0

    unhide_post(post=replies[0], actor_user=staff_user)
    assert_counters_exact()


def test_counters_after_delete_and_undelete(solved, replies, staff_user):
    delete_post(post=replies[1], actor_user=staff_user)
    assert_counters_exact()
    delete_post(post=solved, actor_user=staff_user)
    assert_counters_exact()

    undelete_post(post=solved, actor_user=staff_user)
    assert_counters_exact()
    undelete_post(post=replies[1], actor_user=staff_user)
    assert_counters_exact()
    assert Space.objects.get(pk=solved.space_id).reply_count == 3


def test_counters_after_hide_of_deleted_topic(solved, staff_user):
    delete_post(post=solved, actor_user=staff_user)
    hide_post(post=solved, actor_user=staff_user)
    undelete_post(post=solved, actor_user=staff_user)

    assert_counters_exact()
    assert Space.objects.get(pk=solved.space_id).topic_count == 0


def test_counters_after_move(solved, other_space, staff_user):
    move_topic(topic=solved, space=other_space, actor_user=staff_user)

    other_space.refresh_from_db()
    assert_counters_exact()
    assert (other_space.topic_count, other_space.reply_count) == (1, 3)
    assert other_space.solution_count == 1


def test_counters_after_merge(solved, replies, other_space, staff_user):
    target = factories.TopicFactory(space=other_space, kind=Topic.Kind.QUESTION)
    factories.ReplyFactory(topic=target)
    fix_counters()

    moved = merge_topic(source=solved, target=target, actor_user=staff_user)

    solved.refresh_from_db()
    target.refresh_from_db()
    assert moved == 3
    assert solved.merged_into_id == target.pk
    assert solved.is_hidden is True
    assert target.reply_count == 4
    assert target.accepted_reply_id == replies[0].pk
    assert_counters_exact()


def test_counters_after_merge_of_hidden_reply(solved, replies, staff_user, space):
    target = factories.TopicFactory(space=space, kind=Topic.Kind.DISCUSSION)
    fix_counters()
    hide_post(post=replies[2], actor_user=staff_user)

    merge_topic(source=solved, target=target, actor_user=staff_user)

    target.refresh_from_db()
    assert target.reply_count == 2
    assert target.accepted_reply_id is None
    assert_counters_exact()


def test_merged_topic_cannot_be_unhidden(solved, space, staff_user):
    target = factories.TopicFactory(space=space)
    merge_topic(source=solved, target=target, actor_user=staff_user)

    with pytest.raises(DomainError):
        unhide_post(post=solved, actor_user=staff_user)


def test_counters_after_accept_on_hidden_reply_flow(solved, replies, staff_user):
    accept_solution(topic=solved, reply=replies[1], actor_user=staff_user)
    delete_post(post=replies[0], actor_user=staff_user)
    hide_post(post=replies[1], actor_user=staff_user)

    assert_counters_exact()


def test_moderation_by_member_rejected(question, replies):
    other = factories.MemberFactory()

    with pytest.raises(DomainError) as caught:
        hide_post(post=question, actor_user=other.user)

    question.refresh_from_db()
    assert caught.value.code == "forbidden"
    assert question.is_hidden is False
    assert not ModerationAction.objects.exists()


def test_moderation_by_champion_allowed(question, champion):
    assert lock_topic(topic=question, actor_user=champion.user) is True


# Suspensions and locks


def test_suspended_member_cannot_post_topic(space, staff_user):
    member = factories.MemberFactory()
    suspend_member(member=member, actor_user=staff_user, reason="Spam links.")

    with pytest.raises(DomainError) as caught:
        post_topic(author=member, space=space, title="Hello", body="Buy now")

    assert caught.value.message == "You are suspended indefinitely: Spam links."


def test_suspended_member_cannot_reply(question, staff_user):
    member = factories.MemberFactory()
    suspend_member(member=member, actor_user=staff_user, reason="Spam links.")

    with pytest.raises(DomainError) as caught:
        post_reply(author=member, topic=question, body="Buy now")

    assert caught.value.code == "suspended"


def test_unsuspended_member_can_reply(question, staff_user):
    member = factories.MemberFactory()
    suspend_member(member=member, actor_user=staff_user, reason="Spam links.")

    unsuspend_member(member=member, actor_user=staff_user)
    reply = post_reply(author=member, topic=question, body="Sorry, here is the fix.")

    assert reply.pk is not None


def test_suspend_by_member_rejected(staff_user):
    member = factories.MemberFactory()
    other = factories.MemberFactory()

    with pytest.raises(DomainError):
        suspend_member(member=member, actor_user=other.user, reason="Spite.")

    assert not member.suspensions.exists()


def test_locked_topic_rejects_reply(question, staff_user):
    lock_topic(topic=question, actor_user=staff_user)
    question.refresh_from_db()

    with pytest.raises(DomainError) as caught:
        post_reply(author=factories.MemberFactory(), topic=question, body="Late")

    assert caught.value.message == "This topic is locked; it takes no new replies."


# Audit log


def test_every_action_writes_audit_row_and_event(
    solved, replies, other_space, staff_user
):
    member = replies[2].author
    merge_target = factories.TopicFactory(space=other_space)
    fix_counters()
    flag_post(reporter=factories.MemberFactory(), post=replies[1], reason="spam")
    dismiss_flags(post=replies[1], actor_user=staff_user)
    hide_post(post=replies[1], actor_user=staff_user)
    unhide_post(post=replies[1], actor_user=staff_user)
    lock_topic(topic=solved, actor_user=staff_user)
    unlock_topic(topic=solved, actor_user=staff_user)
    move_topic(topic=solved, space=other_space, actor_user=staff_user)
    delete_post(post=replies[2], actor_user=staff_user)
    undelete_post(post=replies[2], actor_user=staff_user)
    suspend_member(member=member, actor_user=staff_user, reason="Rude.")
    unsuspend_member(member=member, actor_user=staff_user)
    merge_topic(
        source=solved,
        target=merge_target,
        actor_user=staff_user,
    )

    actions = sorted(ModerationAction.objects.values_list("action", flat=True))
    kinds = sorted(
        ActivityEvent.objects.filter(
            kind__startswith="community.moderation_"
        ).values_list("kind", flat=True)
    )
    expected = sorted(
        [
            "flag",
            "dismiss_flags",
            "hide",
            "unhide",
            "lock",
            "unlock",
            "move",
            "delete",
            "undelete",
            "suspend",
            "unsuspend",
            "merge",
        ]
    )
    assert actions == expected
    assert kinds == [f"community.moderation_{action}" for action in expected]
    assert_counters_exact()


# Pages


@pytest.mark.parametrize(
    "url_name", ["community:moderation_queue", "community:moderation_log"]
)
def test_moderator_pages_member_forbidden(member_client, url_name):
    response = member_client.get(reverse(url_name))

    assert response.status_code == 403


@pytest.mark.parametrize(
    "url_name", ["community:moderation_queue", "community:moderation_log"]
)
def test_moderator_pages_anonymous_redirected(client, url_name):
    response = client.get(reverse(url_name))

    assert response.status_code == 302


@pytest.mark.parametrize(
    "url_name", ["community:moderation_queue", "community:moderation_log"]
)
def test_moderator_pages_champion_allowed(champion_client, url_name):
    response = champion_client.get(reverse(url_name))

    assert response.status_code == 200


def test_moderation_queue_groups_flags_by_post(champion_client, question, replies):
    for _ in range(2):
        flag_post(reporter=factories.MemberFactory(), post=replies[0], reason="spam")
    flag_post(reporter=factories.MemberFactory(), post=question, reason="off_topic")

    response = champion_client.get(reverse("community:moderation_queue"))

    counts = sorted(item.flag_count for item in response.context["flagged_posts"])
    assert counts == [1, 2]


def test_moderation_queue_fixed_query_count(staff_client, space):
    def count_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            response = staff_client.get(reverse("community:moderation_queue"))
        assert response.status_code == 200
        return len(queries)

    def add_flagged(count: int) -> None:
        for _ in range(count):
            topic = factories.TopicFactory(space=space)
            reply = factories.ReplyFactory(topic=topic)
            flag_post(reporter=factories.MemberFactory(), post=topic, reason="spam")
            flag_post(reporter=factories.MemberFactory(), post=reply, reason="abuse")

    add_flagged(1)
    small = count_queries()
    add_flagged(6)
    large = count_queries()

    assert small == large


def test_moderation_log_fixed_query_count(staff_client, space, staff_user):
    def count_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            response = staff_client.get(reverse("community:moderation_log"))
        assert response.status_code == 200
        return len(queries)

    lock_topic(topic=factories.TopicFactory(space=space), actor_user=staff_user)
    small = count_queries()
    for _ in range(5):
        topic = factories.TopicFactory(space=space)
        lock_topic(topic=topic, actor_user=staff_user)
        suspend_member(member=topic.author, actor_user=staff_user, reason="Spam.")
    large = count_queries()

    assert small == large


def test_moderation_log_filters_by_action(staff_client, question, staff_user):
    lock_topic(topic=question, actor_user=staff_user)
    hide_post(post=question, actor_user=staff_user)

    response = staff_client.get(reverse("community:moderation_log"), {"action": "lock"})

    actions = [row.action for row in response.context["page_obj"].object_list]
    assert actions == ["lock"]


def test_moderate_view_member_forbidden(member_client, question):
    url = reverse(
        "community:moderate",
        kwargs={"kind": "topic", "pk": question.pk, "action": "hide"},
    )

    response = member_client.post(url)

    question.refresh_from_db()
    assert response.status_code == 403
    assert question.is_hidden is False


def test_moderate_view_champion_hides(champion_client, question):
    url = reverse(
        "community:moderate",
        kwargs={"kind": "topic", "pk": question.pk, "action": "hide"},
    )

    response = champion_client.post(url)

    question.refresh_from_db()
    assert response.status_code == 302
    assert question.is_hidden is True


def test_topic_page_shows_toolbar_to_champion(champion_client, question):
    response = champion_client.get(question.get_absolute_url())

    assert response.context["is_moderator"] is True
    assert b"moderation-toolbar" in response.content


def test_topic_page_hides_toolbar_from_member(member_client, question):
    response = member_client.get(question.get_absolute_url())

    assert response.context["is_moderator"] is False
    assert b"moderation-toolbar" not in response.content


def test_flag_view_creates_flag(member_client, member, question):
    url = reverse("community:flag", kwargs={"kind": "topic", "pk": question.pk})

    response = member_client.post(url, {"reason": "spam", "note": "Link farm"})

    assert response.status_code == 302
    assert Flag.objects.get(topic=question).reporter == member


def test_suspend_view_member_forbidden(member_client):
    target = factories.MemberFactory()
    url = reverse("community:member_suspend", kwargs={"pk": target.pk})

    response = member_client.post(url, {"reason": "Spite."})

    assert response.status_code == 403
    assert not target.suspensions.exists()
