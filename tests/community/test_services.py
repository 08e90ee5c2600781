import pytest

from apps.community.models import Space, Topic
from apps.community.services import post_reply, post_topic
from apps.lifecycle.models import ActivityEvent
from apps.membership.models import Member
from rm6.errors import DomainError
from tests import factories


def test_post_topic_question_records_event_and_counts(db):
    space = factories.SpaceFactory()
    member = factories.MemberFactory()

    topic = post_topic(author=member, space=space, title="  Export?  ", body="How?")

    space.refresh_from_db()
    assert topic.title == "Export?"
    assert space.topic_count == 1
    event = ActivityEvent.objects.get(member=member)
    assert event.kind == "community.question_posted"
    assert event.subject_id == str(topic.pk)


def test_post_topic_discussion_records_topic_posted(db):
    member = factories.MemberFactory()

    post_topic(
        author=member,
        space=factories.SpaceFactory(),
        title="Share your dashboards",
        body="Post a screenshot.",
        kind=Topic.Kind.DISCUSSION,
    )

    assert ActivityEvent.objects.get().kind == "community.topic_posted"


def test_post_topic_empty_title_rejected_and_nothing_written(db):
    member = factories.MemberFactory()

    with pytest.raises(DomainError, match="The title is empty") as caught:
        post_topic(author=member, space=factories.SpaceFactory(), title=" ", body="x")

    assert caught.value.field == "title"
    assert Topic.objects.count() == 0
    assert ActivityEvent.objects.count() == 0


def test_post_topic_overlong_body_names_the_limit(db):
    member = factories.MemberFactory()

    with pytest.raises(DomainError, match="has 20001 characters; the maximum is 20000"):
        post_topic(
            author=member, space=factories.SpaceFactory(), title="t", body="x" * 20001
        )


def test_post_topic_announcement_needs_account_admin(db):
    member = factories.MemberFactory(role=Member.Role.CHAMPION)

    with pytest.raises(DomainError, match="Only account admins"):
        post_topic(
            author=member,
            space=factories.SpaceFactory(),
            title="News",
            body="Release 5 is out.",
            kind=Topic.Kind.ANNOUNCEMENT,
        )


def test_post_topic_in_other_accounts_space_rejected(db):
    member = factories.MemberFactory()
    private = factories.SpaceFactory(
        visibility=Space.Visibility.ACCOUNT, account=factories.AccountFactory()
    )

    with pytest.raises(DomainError) as caught:
        post_topic(author=member, space=private, title="Hi", body="Hello")

    assert caught.value.code == "forbidden"
    assert Topic.objects.count() == 0


def test_post_reply_updates_counters_and_awards_points(db):
    topic = factories.TopicFactory()
    replier = factories.MemberFactory()

    reply = post_reply(author=replier, topic=topic, body="Use the export button.")

    topic.refresh_from_db()
    assert topic.reply_count == 1
    assert topic.last_activity_at == reply.created_at
    event = ActivityEvent.objects.get(kind="community.reply_posted")
    assert event.properties["is_own_topic"] is False
    from apps.advocacy.selectors import get_points_balance

    assert get_points_balance(member=replier) == 10


def test_post_reply_to_own_topic_earns_no_points(db):
    topic = factories.TopicFactory()

    post_reply(author=topic.author, topic=topic, body="Solved it myself.")

    from apps.advocacy.selectors import get_points_balance

    assert get_points_balance(member=topic.author) == 0
