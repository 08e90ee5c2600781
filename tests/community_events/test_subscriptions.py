from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.community.models import Space, Subscription, Tag
from apps.community.services import post_reply, post_topic
from apps.community.services.subscriptions import (
    notify_reply_watchers,
    send_member_digest,
    unwatch,
    watch,
)
from apps.community.tasks import send_daily_digests_task
from apps.lifecycle.models import Notification
from apps.membership.models import Member
from tests import factories
from tests.community_events.helpers import later_same_utc_day

INSTANT = Member.EmailNotifications.INSTANT
DAILY = Member.EmailNotifications.DAILY
OFF = Member.EmailNotifications.OFF


@pytest.fixture
def author(db):
    return factories.MemberFactory(email_notifications=OFF)


def _post_topic(*, author, space, title):
    # Built by the factory, so these tests do not depend on the posting rules
    # (rate limits, duplicate checks); the author watches it as post_topic does.
    topic = factories.TopicFactory(author=author, space=space, title=title)
    watch(member=author, topic=topic)
    return topic


@pytest.fixture
def topic(author, space):
    return _post_topic(author=author, space=space, title="Export fails")


def _reply(capture, *, topic, author=None, body="Try again."):
    """Create a reply and run the watcher fan-out that post_reply queues."""
    reply = factories.ReplyFactory(
        topic=topic, author=author or factories.MemberFactory(), body=body
    )
    with capture(execute=True):
        notify_reply_watchers(reply_id=reply.pk)
    return reply


def _reply_notices(member):
    return Notification.objects.filter(member=member, kind="community.reply")


def test_watch_twice_keeps_one_subscription(space):
    member = factories.MemberFactory()

    watch(member=member, space=space)
    watch(member=member, space=space)

    assert Subscription.objects.filter(member=member).count() == 1


def test_unwatch_removes_subscription(space):
    member = factories.MemberFactory()
    watch(member=member, space=space)

    removed = unwatch(member=member, space=space)

    assert removed is True
    assert not Subscription.objects.filter(member=member).exists()


def test_post_topic_author_watches(author, space):
    topic = post_topic(author=author, space=space, title="Export fails", body="Why?")

    assert Subscription.objects.filter(member=author, topic=topic).exists()


def test_post_reply_notifies_watchers_on_commit(
    topic, author, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        post_reply(author=factories.MemberFactory(), topic=topic, body="Try again.")

    assert _reply_notices(author).count() == 1


def test_reply_notifies_topic_watcher(
    topic, author, django_capture_on_commit_callbacks
):
    _reply(django_capture_on_commit_callbacks, topic=topic)

    assert _reply_notices(author).count() == 1


def test_reply_notifies_overlapping_watcher_once(
    topic, space, django_capture_on_commit_callbacks
):
    tag = Tag.objects.create(name="exports", slug="exports")
    topic.tags.add(tag)
    watcher = factories.MemberFactory(email_notifications=OFF)
    watch(member=watcher, topic=topic)
    watch(member=watcher, space=space)
    watch(member=watcher, tag=tag)

    _reply(django_capture_on_commit_callbacks, topic=topic)

    assert _reply_notices(watcher).count() == 1


def test_reply_notifies_tag_watcher(topic, django_capture_on_commit_callbacks):
    tag = Tag.objects.create(name="exports", slug="exports")
    topic.tags.add(tag)
    watcher = factories.MemberFactory()
    watch(member=watcher, tag=tag)

    _reply(django_capture_on_commit_callbacks, topic=topic)

    assert _reply_notices(watcher).count() == 1


def test_reply_author_not_notified(topic, author, django_capture_on_commit_callbacks):
    _reply(django_capture_on_commit_callbacks, topic=topic, author=author)

    assert _reply_notices(author).count() == 0


def test_notify_twice_creates_one_notification(
    topic, author, django_capture_on_commit_callbacks
):
    reply = _reply(django_capture_on_commit_callbacks, topic=topic)

    notify_reply_watchers(reply_id=reply.pk)

    assert _reply_notices(author).count() == 1


def test_in_app_off_creates_no_notification(
    topic, author, django_capture_on_commit_callbacks
):
    Member.objects.filter(pk=author.pk).update(in_app_notifications=False)

    _reply(django_capture_on_commit_callbacks, topic=topic)

    assert _reply_notices(author).count() == 0


def test_instant_preference_sends_email(
    topic, space, mailoutbox, django_capture_on_commit_callbacks
):
    watcher = factories.MemberFactory(email_notifications=INSTANT)
    watch(member=watcher, space=space)

    _reply(django_capture_on_commit_callbacks, topic=topic)

    assert [message.to for message in mailoutbox] == [[watcher.user.email]]
    assert mailoutbox[0].subject == "New reply in Export fails"


def test_daily_preference_sends_no_instant_email(
    topic, space, mailoutbox, django_capture_on_commit_callbacks
):
    watcher = factories.MemberFactory(email_notifications=DAILY)
    watch(member=watcher, space=space)

    _reply(django_capture_on_commit_callbacks, topic=topic)

    assert mailoutbox == []


def test_member_moved_account_gets_nothing(author, django_capture_on_commit_callbacks):
    account_space = factories.SpaceFactory(
        visibility=Space.Visibility.ACCOUNT, account=author.account
    )
    topic = _post_topic(author=author, space=account_space, title="Ours")
    colleague = factories.MemberFactory(
        account=author.account, email_notifications=INSTANT
    )
    watch(member=colleague, space=account_space)
    colleague.account = factories.AccountFactory()
    colleague.save(update_fields=["account"])

    _reply(django_capture_on_commit_callbacks, topic=topic, author=author)

    assert _reply_notices(colleague).count() == 0


def test_lost_access_hides_old_notifications(
    client, author, django_capture_on_commit_callbacks
):
    account_space = factories.SpaceFactory(
        visibility=Space.Visibility.ACCOUNT, account=author.account
    )
    topic = _post_topic(author=author, space=account_space, title="Secret plan")
    colleague = factories.MemberFactory(account=author.account)
    _reply(django_capture_on_commit_callbacks, topic=topic, author=colleague)
    assert _reply_notices(author).count() == 1
    client.force_login(author.user)
    before = client.get(reverse("delivery:notifications")).content.decode()
    author.account = factories.AccountFactory()
    author.save(update_fields=["account"])

    after = client.get(reverse("delivery:notifications")).content.decode()

    assert "New reply in Secret plan" in before
    assert "New reply in Secret plan" not in after


def test_notification_list_queries_fixed(
    client, author, space, django_assert_max_num_queries
):
    other_topic = _post_topic(author=author, space=space, title="Other")
    for _index in range(8):
        reply = factories.ReplyFactory(topic=other_topic)
        notify_reply_watchers(reply_id=reply.pk)
    client.force_login(author.user)
    client.get(reverse("delivery:notifications"))

    with django_assert_max_num_queries(12) as few:
        client.get(reverse("delivery:notifications"))
    for _index in range(8):
        reply = factories.ReplyFactory(topic=other_topic)
        notify_reply_watchers(reply_id=reply.pk)
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get(reverse("delivery:notifications"))


def test_digest_lists_new_reply(
    topic, space, mailoutbox, django_capture_on_commit_callbacks
):
    watcher = factories.MemberFactory(email_notifications=DAILY)
    watch(member=watcher, space=space)
    _reply(django_capture_on_commit_callbacks, topic=topic)

    sent = send_member_digest(member=watcher, now=timezone.now() + timedelta(hours=1))

    assert sent is True
    assert "Export fails" in mailoutbox[0].body


def test_digest_sent_once_per_day(
    topic, space, mailoutbox, django_capture_on_commit_callbacks
):
    watcher = factories.MemberFactory(email_notifications=DAILY)
    watch(member=watcher, space=space)
    _reply(django_capture_on_commit_callbacks, topic=topic)
    now = timezone.now() + timedelta(minutes=5)

    send_member_digest(member=watcher, now=now)
    second = send_member_digest(member=watcher, now=later_same_utc_day(now))

    assert second is False
    assert len(mailoutbox) == 1


def test_digest_skips_instant_members(
    topic, space, mailoutbox, django_capture_on_commit_callbacks
):
    watcher = factories.MemberFactory(email_notifications=INSTANT)
    watch(member=watcher, space=space)
    _reply(django_capture_on_commit_callbacks, topic=topic)
    mailoutbox.clear()

    sent = send_member_digest(member=watcher, now=timezone.now() + timedelta(hours=1))

    assert sent is False
    assert mailoutbox == []


def test_digest_rechecks_visibility(
    author, mailoutbox, django_capture_on_commit_callbacks
):
    account_space = factories.SpaceFactory(
        visibility=Space.Visibility.ACCOUNT, account=author.account
    )
    topic = _post_topic(author=author, space=account_space, title="Ours")
    watcher = factories.MemberFactory(account=author.account, email_notifications=DAILY)
    watch(member=watcher, space=account_space)
    _reply(django_capture_on_commit_callbacks, topic=topic, author=author)
    watcher.account = factories.AccountFactory()
    watcher.save(update_fields=["account"])

    sent = send_member_digest(member=watcher, now=timezone.now() + timedelta(hours=1))

    assert sent is False
    assert mailoutbox == []


def test_daily_digest_task_sends_each_member_once(
    topic, space, mailoutbox, django_capture_on_commit_callbacks
):
    watchers = [factories.MemberFactory(email_notifications=DAILY) for _ in range(3)]
    for watcher in watchers:
        watch(member=watcher, space=space)
    _reply(django_capture_on_commit_callbacks, topic=topic)

    send_daily_digests_task.delay()
    send_daily_digests_task.delay()

    assert sorted(m.to[0] for m in mailoutbox) == sorted(w.user.email for w in watchers)


def test_watch_view_toggles(client, space):
    member = factories.MemberFactory()
    client.force_login(member.user)
    url = reverse("community:watch", args=["space", space.pk])

    client.post(url, {"action": "watch"}, HTTP_HX_REQUEST="true")
    watching = Subscription.objects.filter(member=member, space=space).exists()
    response = client.post(url, {"action": "unwatch"}, HTTP_HX_REQUEST="true")

    assert watching is True
    assert not Subscription.objects.filter(member=member, space=space).exists()
    assert "Watch" in response.content.decode()


def test_watch_view_hidden_space_404(client, db):
    hidden = factories.SpaceFactory(
        visibility=Space.Visibility.ACCOUNT, account=factories.AccountFactory()
    )
    member = factories.MemberFactory()
    client.force_login(member.user)

    response = client.post(reverse("community:watch", args=["space", hidden.pk]))

    assert response.status_code == 404
    assert not Subscription.objects.exists()


def test_watch_view_requires_sign_in(client, space):
    response = client.post(reverse("community:watch", args=["space", space.pk]))

    assert response.status_code == 302
    assert not Subscription.objects.exists()
