import pytest

from apps.community.models import (
    MemberStats,
    Mention,
    PostRevision,
    Reply,
    Space,
    Tag,
    Topic,
)
from apps.community.services import post_reply, post_topic
from apps.community.services.posts import (
    edit_reply,
    edit_topic,
    find_mentioned_members,
    set_topic_tags,
)
from apps.lifecycle.models import ActivityEvent, Notification
from apps.membership.models import Member
from rm6.errors import DomainError
from tests import factories


@pytest.fixture
def space(db):
    return factories.SpaceFactory(visibility=Space.Visibility.MEMBERS)


@pytest.fixture
def author(db):
    return factories.MemberFactory(display_name="Ada Lovelace")


@pytest.fixture
def topic(space, author):
    return post_topic(author=author, space=space, title="Export", body="How?")


# Counters


def test_post_topic_counts_member_topics(topic, author):
    stats = MemberStats.objects.get(member=author)

    assert stats.topic_count == 1
    assert stats.reply_count == 0


def test_post_reply_counts_member_space_and_first_reply(topic, space):
    replier = factories.MemberFactory()

    reply = post_reply(author=replier, topic=topic, body="Use Settings.")

    topic.refresh_from_db()
    space.refresh_from_db()
    assert MemberStats.objects.get(member=replier).reply_count == 1
    assert space.reply_count == 1
    assert topic.first_reply_at == reply.created_at


def test_post_reply_by_author_leaves_first_reply_at(topic, author):
    post_reply(author=author, topic=topic, body="Any ideas?")

    topic.refresh_from_db()
    assert topic.first_reply_at is None


def test_post_reply_second_reply_keeps_first_reply_at(topic):
    first = post_reply(author=factories.MemberFactory(), topic=topic, body="One")
    post_reply(author=factories.MemberFactory(), topic=topic, body="Two")

    topic.refresh_from_db()
    assert topic.first_reply_at == first.created_at


# Quoting


def test_post_reply_quotes_reply_in_same_topic(topic):
    quoted = post_reply(author=factories.MemberFactory(), topic=topic, body="One")

    reply = post_reply(
        author=factories.MemberFactory(),
        topic=topic,
        body="Agreed",
        quoted_reply_id=quoted.pk,
    )

    assert reply.quoted_reply == quoted


def test_post_reply_quote_from_other_topic_rejected(topic, space):
    other_topic = factories.TopicFactory(space=space)
    other_reply = factories.ReplyFactory(topic=other_topic)
    replier = factories.MemberFactory()

    with pytest.raises(DomainError, match="not a visible reply in this topic"):
        post_reply(
            author=replier, topic=topic, body="x", quoted_reply_id=other_reply.pk
        )

    assert not Reply.objects.filter(author=replier).exists()
    topic.refresh_from_db()
    assert topic.reply_count == 0


def test_post_reply_quote_of_hidden_reply_rejected(topic):
    hidden = factories.ReplyFactory(topic=topic, is_hidden=True)

    with pytest.raises(DomainError, match="not a visible reply"):
        post_reply(
            author=factories.MemberFactory(),
            topic=topic,
            body="x",
            quoted_reply_id=hidden.pk,
        )


# Editing


def test_edit_topic_writes_revision_and_event(topic, author):
    edit_topic(topic=topic, editor=author.user, title="Export CSV", body="How now?")

    topic.refresh_from_db()
    revision = PostRevision.objects.get(topic=topic)
    assert topic.title == "Export CSV"
    assert topic.body == "How now?"
    assert topic.edited_at is not None
    assert revision.title == "Export"
    assert revision.body == "How?"
    assert revision.editor == author.user
    event = ActivityEvent.objects.get(kind="community.topic_edited")
    assert event.member == author
    assert event.subject_id == str(topic.pk)


def test_edit_topic_twice_keeps_two_revisions(topic, author):
    edit_topic(topic=topic, editor=author.user, title="Export", body="Second")
    edit_topic(topic=topic, editor=author.user, title="Export", body="Third")

    bodies = list(PostRevision.objects.filter(topic=topic).values_list("body"))
    assert bodies == [("Second",), ("How?",)]


def test_edit_topic_unchanged_text_writes_nothing(topic, author):
    edit_topic(topic=topic, editor=author.user, title="Export", body="How?")

    assert PostRevision.objects.count() == 0
    assert not ActivityEvent.objects.filter(kind="community.topic_edited").exists()


def test_edit_topic_by_other_member_rejected_and_unchanged(topic):
    other = factories.MemberFactory()

    with pytest.raises(DomainError, match="You cannot edit this post"):
        edit_topic(topic=topic, editor=other.user, title="Spam", body="Spam")

    topic.refresh_from_db()
    assert topic.title == "Export"
    assert topic.body == "How?"
    assert topic.edited_at is None
    assert PostRevision.objects.count() == 0
    assert not ActivityEvent.objects.filter(kind="community.topic_edited").exists()


def test_edit_topic_locked_rejects_author(topic, author):
    Topic.objects.filter(pk=topic.pk).update(is_locked=True)

    with pytest.raises(DomainError, match="You cannot edit this post"):
        edit_topic(topic=topic, editor=author.user, title="New", body="New")

    topic.refresh_from_db()
    assert topic.title == "Export"


def test_edit_topic_locked_allows_champion(topic):
    Topic.objects.filter(pk=topic.pk).update(is_locked=True)
    champion = factories.MemberFactory(role=Member.Role.CHAMPION)

    edit_topic(topic=topic, editor=champion.user, title="Tidy", body="Tidied")

    topic.refresh_from_db()
    assert topic.title == "Tidy"
    assert PostRevision.objects.get().editor == champion.user


def test_edit_topic_staff_without_member_keeps_revision_only(topic, staff_user):
    edit_topic(topic=topic, editor=staff_user, title="Export", body="Fixed typo")

    assert PostRevision.objects.get().editor == staff_user
    assert not ActivityEvent.objects.filter(kind="community.topic_edited").exists()


def test_edit_reply_writes_revision(topic):
    replier = factories.MemberFactory()
    reply = post_reply(author=replier, topic=topic, body="First")

    edit_reply(reply=reply, editor=replier.user, body="Better")

    reply.refresh_from_db()
    assert reply.body == "Better"
    assert reply.edited_at is not None
    assert PostRevision.objects.get(reply=reply).body == "First"
    assert ActivityEvent.objects.filter(kind="community.reply_edited").count() == 1


def test_edit_reply_by_topic_author_rejected(topic, author):
    reply = post_reply(author=factories.MemberFactory(), topic=topic, body="Mine")

    with pytest.raises(DomainError, match="You cannot edit this post"):
        edit_reply(reply=reply, editor=author.user, body="Changed")

    reply.refresh_from_db()
    assert reply.body == "Mine"
    assert PostRevision.objects.count() == 0


def test_edit_reply_empty_body_rejected(topic, author):
    reply = post_reply(author=author, topic=topic, body="Mine")

    with pytest.raises(DomainError, match="The body is empty"):
        edit_reply(reply=reply, editor=author.user, body="  ")

    assert PostRevision.objects.count() == 0


# Mentions


def test_find_mentioned_members_by_id_and_handle(db):
    grace = factories.MemberFactory(display_name="Grace Hopper")
    linus = factories.MemberFactory(display_name="Linus")

    found = find_mentioned_members(
        f"Ask @[Anything](member:{linus.pk}) or @grace-hopper, not a@grace-hopper"
    )

    assert found == [linus, grace]


def test_find_mentioned_members_ambiguous_handle_mentions_nobody(db):
    factories.MemberFactory(display_name="Sam Lee")
    factories.MemberFactory(display_name="Sam-Lee")

    assert find_mentioned_members("Hi @sam-lee") == []


def test_find_mentioned_members_skips_deactivated(db):
    from django.utils import timezone

    gone = factories.MemberFactory(display_name="Gone", deactivated_at=timezone.now())

    assert find_mentioned_members(f"@gone @[Gone](member:{gone.pk})") == []


def test_mention_notified_once_across_two_edits(space, author):
    grace = factories.MemberFactory(display_name="Grace Hopper")
    topic = post_topic(author=author, space=space, title="Q", body="@grace-hopper?")

    edit_topic(topic=topic, editor=author.user, title="Q", body="@grace-hopper!")
    edit_topic(topic=topic, editor=author.user, title="Q", body="Still @grace-hopper")

    assert Mention.objects.filter(member=grace, topic=topic).count() == 1
    notices = Notification.objects.filter(member=grace, kind="community.mention")
    assert notices.count() == 1
    assert notices.get().url == topic.get_absolute_url()


def test_mention_added_by_edit_notified(topic, author):
    grace = factories.MemberFactory(display_name="Grace Hopper")

    edit_topic(topic=topic, editor=author.user, title="Export", body="@grace-hopper")

    assert Notification.objects.filter(member=grace).count() == 1


def test_mention_in_reply_notified(topic):
    grace = factories.MemberFactory(display_name="Grace Hopper")
    replier = factories.MemberFactory()

    reply = post_reply(author=replier, topic=topic, body="cc @grace-hopper")

    assert Mention.objects.get(member=grace).reply == reply
    assert Notification.objects.get(member=grace).url == reply.get_absolute_url()


def test_mention_of_member_without_access_not_notified(author):
    private = factories.SpaceFactory(
        visibility=Space.Visibility.ACCOUNT, account=author.account
    )
    outsider = factories.MemberFactory(display_name="Outsider")

    post_topic(author=author, space=private, title="Q", body="@outsider look")

    assert not Mention.objects.filter(member=outsider).exists()
    assert not Notification.objects.filter(member=outsider).exists()


def test_mention_of_self_not_notified(space, author):
    post_topic(author=author, space=space, title="Q", body="@ada-lovelace here")

    assert not Mention.objects.exists()
    assert not Notification.objects.exists()


# Tags


def test_set_topic_tags_counts_added_and_removed(topic, author):
    billing = Tag.objects.create(name="Billing", slug="billing")
    api = Tag.objects.create(name="API", slug="api")

    set_topic_tags(topic=topic, editor=author.user, names=["Billing", "api"])
    set_topic_tags(topic=topic, editor=author.user, names=["API"])

    billing.refresh_from_db()
    api.refresh_from_db()
    assert billing.topic_count == 0
    assert api.topic_count == 1
    assert list(topic.tags.all()) == [api]


def test_set_topic_tags_repeat_counts_once(topic, author):
    api = Tag.objects.create(name="API", slug="api")

    set_topic_tags(topic=topic, editor=author.user, names=["API"])
    set_topic_tags(topic=topic, editor=author.user, names=["API", "API"])

    api.refresh_from_db()
    assert api.topic_count == 1


def test_set_topic_tags_member_cannot_create_tag(topic, author):
    with pytest.raises(DomainError, match="There is no tag 'Brand new'"):
        set_topic_tags(topic=topic, editor=author.user, names=["Brand new"])

    assert not Tag.objects.exists()


def test_set_topic_tags_champion_creates_tag(topic):
    champion = factories.MemberFactory(role=Member.Role.CHAMPION)

    set_topic_tags(topic=topic, editor=champion.user, names=["Brand new"])

    tag = Tag.objects.get()
    assert tag.slug == "brand-new"
    assert tag.topic_count == 1


def test_set_topic_tags_more_than_five_rejected(topic, author):
    for index in range(6):
        Tag.objects.create(name=f"T{index}", slug=f"t{index}")

    with pytest.raises(DomainError, match="at most 5 tags; 6 were given"):
        set_topic_tags(
            topic=topic, editor=author.user, names=[f"T{i}" for i in range(6)]
        )

    assert topic.tags.count() == 0


def test_set_topic_tags_other_member_rejected(topic):
    Tag.objects.create(name="API", slug="api")
    other = factories.MemberFactory()

    with pytest.raises(DomainError, match="You cannot edit this post"):
        set_topic_tags(topic=topic, editor=other.user, names=["API"])

    assert topic.tags.count() == 0
    assert Tag.objects.get().topic_count == 0
