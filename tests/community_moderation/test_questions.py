import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.community.models import Space, Topic
from apps.community.services.moderation import hide_post
from apps.community.services.questions import (
    accept_solution,
    set_idea_status,
    unaccept_solution,
)
from apps.lifecycle.models import ActivityEvent, Notification
from rm6.errors import DomainError
from tests import factories
from tests.community_moderation.conftest import (
    assert_counters_exact,
    fix_counters,
    get_stats,
)


def test_accept_solution_by_author_counts(question, replies, asker):
    reply = replies[0]

    changed = accept_solution(topic=question, reply=reply, actor_user=asker.user)

    question.refresh_from_db()
    assert changed is True
    assert question.accepted_reply_id == reply.pk
    assert question.solved_at is not None
    assert (
        question.space.__class__.objects.get(pk=question.space_id).solution_count == 1
    )
    assert get_stats(reply.author).solution_count == 1
    assert_counters_exact()


def test_accept_solution_records_event_on_reply_author(question, replies, asker):
    accept_solution(topic=question, reply=replies[0], actor_user=asker.user)

    event = ActivityEvent.objects.get(kind="community.solution_accepted")
    assert event.member_id == replies[0].author_id
    assert event.properties["topic_id"] == question.pk
    assert event.properties["accepted_by_user_id"] == asker.user.pk


def test_accept_solution_by_champion(question, replies, champion):
    assert accept_solution(topic=question, reply=replies[0], actor_user=champion.user)


def test_accept_solution_by_staff_moderator(question, replies, staff_user):
    assert accept_solution(topic=question, reply=replies[0], actor_user=staff_user)


def test_accept_solution_by_other_member_rejected(question, replies):
    other = factories.MemberFactory()

    with pytest.raises(DomainError) as caught:
        accept_solution(topic=question, reply=replies[0], actor_user=other.user)

    question.refresh_from_db()
    assert caught.value.code == "forbidden"
    assert question.accepted_reply_id is None
    assert get_stats(replies[0].author).solution_count == 0
    assert not ActivityEvent.objects.filter(kind="community.solution_accepted").exists()


def test_accept_view_other_member_forbidden(client, question, replies):
    other = factories.MemberFactory()
    client.force_login(other.user)

    response = client.post(
        reverse("community:solution_accept", kwargs={"pk": question.pk}),
        {"reply": replies[0].pk},
    )

    question.refresh_from_db()
    assert response.status_code == 403
    assert question.accepted_reply_id is None


def test_accept_view_author_redirects(client, question, replies, asker):
    client.force_login(asker.user)

    response = client.post(
        reverse("community:solution_accept", kwargs={"pk": question.pk}),
        {"reply": replies[1].pk},
    )

    question.refresh_from_db()
    assert response.status_code == 302
    assert question.accepted_reply_id == replies[1].pk


def test_accept_solution_replaces_previous(question, replies, asker):
    first, second = replies[0], replies[1]
    accept_solution(topic=question, reply=first, actor_user=asker.user)

    accept_solution(topic=question, reply=second, actor_user=asker.user)

    question.refresh_from_db()
    assert question.accepted_reply_id == second.pk
    assert Space.objects.get(pk=question.space_id).solution_count == 1
    assert get_stats(first.author).solution_count == 0
    assert get_stats(second.author).solution_count == 1
    assert_counters_exact()


def test_accept_solution_twice_is_no_op(question, replies, asker):
    accept_solution(topic=question, reply=replies[0], actor_user=asker.user)

    changed = accept_solution(topic=question, reply=replies[0], actor_user=asker.user)

    assert changed is False
    assert get_stats(replies[0].author).solution_count == 1


def test_unaccept_solution_counts(question, replies, asker):
    accept_solution(topic=question, reply=replies[0], actor_user=asker.user)

    changed = unaccept_solution(topic=question, actor_user=asker.user)

    question.refresh_from_db()
    assert changed is True
    assert question.accepted_reply_id is None
    assert question.solved_at is None
    assert Space.objects.get(pk=question.space_id).solution_count == 0
    assert get_stats(replies[0].author).solution_count == 0
    assert (
        ActivityEvent.objects.filter(kind="community.solution_unaccepted").count() == 1
    )
    assert_counters_exact()


def test_unaccept_by_other_member_rejected(question, replies, asker):
    accept_solution(topic=question, reply=replies[0], actor_user=asker.user)
    other = factories.MemberFactory()

    with pytest.raises(DomainError):
        unaccept_solution(topic=question, actor_user=other.user)

    question.refresh_from_db()
    assert question.accepted_reply_id == replies[0].pk


def test_accept_reply_of_other_topic_rejected(question, replies, asker):
    stranger = factories.ReplyFactory()

    with pytest.raises(DomainError) as caught:
        accept_solution(topic=question, reply=stranger, actor_user=asker.user)

    assert caught.value.message == "That reply belongs to another topic."


def test_accept_on_discussion_rejected(space, asker):
    topic = factories.TopicFactory(
        space=space, author=asker, kind=Topic.Kind.DISCUSSION
    )
    reply = factories.ReplyFactory(topic=topic)

    with pytest.raises(DomainError) as caught:
        accept_solution(topic=topic, reply=reply, actor_user=asker.user)

    assert caught.value.message == "Only questions have accepted solutions."


def test_accept_hidden_reply_rejected(question, replies, asker, staff_user):
    hide_post(post=replies[0], actor_user=staff_user)

    with pytest.raises(DomainError):
        accept_solution(topic=question, reply=replies[0], actor_user=asker.user)


def test_topic_page_shows_accepted_solution(member_client, question, replies, asker):
    accept_solution(topic=question, reply=replies[2], actor_user=asker.user)

    response = member_client.get(question.get_absolute_url())

    assert response.context["accepted_solution"] == replies[2]
    assert b"Accepted solution" in response.content


# Lists


def test_unanswered_list_shows_questions_without_other_replies(member_client, space):
    asker = factories.MemberFactory()
    unanswered = factories.TopicFactory(space=space, author=asker)
    answered = factories.TopicFactory(space=space, author=asker)
    answered.first_reply_at = answered.created_at
    answered.save(update_fields=["first_reply_at"])

    response = member_client.get(reverse("community:unanswered"))

    topics = list(response.context["page_obj"].object_list)
    assert topics == [unanswered]


def test_unsolved_list_hides_solved_and_private(
    member_client, space, question, replies
):
    accept_solution(topic=question, reply=replies[0], actor_user=question.author.user)
    unsolved = factories.TopicFactory(space=space)
    private = factories.SpaceFactory(
        visibility=Space.Visibility.ACCOUNT, account=factories.AccountFactory()
    )
    factories.TopicFactory(space=private)

    response = member_client.get(reverse("community:unsolved"))

    assert list(response.context["page_obj"].object_list) == [unsolved]


def test_unsolved_list_hides_hidden_topics(champion_client, space, staff_user):
    hidden = factories.TopicFactory(space=space)
    hide_post(post=hidden, actor_user=staff_user)

    response = champion_client.get(reverse("community:unsolved"))

    assert list(response.context["page_obj"].object_list) == []


@pytest.mark.parametrize(
    "url_name", ["community:unanswered", "community:unsolved", "community:ideas"]
)
def test_question_lists_fixed_query_count(member_client, space, url_name):
    def count_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            response = member_client.get(reverse(url_name))
        assert response.status_code == 200
        return len(queries)

    for kind in (Topic.Kind.QUESTION, Topic.Kind.IDEA):
        factories.TopicFactory.create_batch(2, space=space, kind=kind)
    small = count_queries()
    for kind in (Topic.Kind.QUESTION, Topic.Kind.IDEA):
        factories.TopicFactory.create_batch(12, space=space, kind=kind)
    large = count_queries()

    assert small == large


# Ideas


@pytest.fixture
def idea(space, asker):
    return factories.TopicFactory(space=space, author=asker, kind=Topic.Kind.IDEA)


def test_set_idea_status_by_staff(idea, staff_user):
    set_idea_status(
        topic=idea, status="planned", response="Coming in May.", staff_user=staff_user
    )

    idea.refresh_from_db()
    assert idea.idea_status == "planned"
    assert idea.official_response == "Coming in May."
    assert idea.official_response_by == staff_user
    assert idea.official_response_at is not None


def test_set_idea_status_notifies_author(idea, staff_user, asker):
    set_idea_status(topic=idea, status="shipped", response="", staff_user=staff_user)

    notification = Notification.objects.get(member=asker)
    assert notification.kind == "community.idea_status_changed"
    assert notification.title == f"Your idea “{idea.title}” is now Shipped"
    assert ActivityEvent.objects.filter(
        kind="community.idea_status_changed", member=asker
    ).exists()


def test_set_idea_status_by_champion_rejected(idea, champion):
    with pytest.raises(DomainError) as caught:
        set_idea_status(
            topic=idea, status="planned", response="", staff_user=champion.user
        )

    idea.refresh_from_db()
    assert caught.value.code == "forbidden"
    assert idea.idea_status == ""
    assert not Notification.objects.exists()


def test_idea_status_view_member_forbidden(member_client, idea):
    response = member_client.post(
        reverse("community:idea_status", kwargs={"pk": idea.pk}),
        {"status": "declined", "response": "No."},
    )

    idea.refresh_from_db()
    assert response.status_code == 403
    assert idea.idea_status == ""


def test_idea_list_sorted_by_votes_and_filtered(member_client, space):
    low = factories.TopicFactory(space=space, kind=Topic.Kind.IDEA, vote_score=1)
    high = factories.TopicFactory(space=space, kind=Topic.Kind.IDEA, vote_score=9)
    planned = factories.TopicFactory(
        space=space, kind=Topic.Kind.IDEA, vote_score=5, idea_status="planned"
    )

    everything = member_client.get(reverse("community:ideas"))
    only_planned = member_client.get(reverse("community:ideas"), {"status": "planned"})
    only_new = member_client.get(reverse("community:ideas"), {"status": "new"})

    assert list(everything.context["page_obj"].object_list) == [high, planned, low]
    assert list(only_planned.context["page_obj"].object_list) == [planned]
    assert list(only_new.context["page_obj"].object_list) == [high, low]


def test_fix_counters_baseline_is_exact(replies):
    fix_counters()

    assert_counters_exact()
