"""The daily digest goes at most once per member and UTC day, by database record."""

import threading
import time
from datetime import timedelta

import pytest
from django.core import mail
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from apps.community.models import DigestSent, Space
from apps.community.services import subscriptions
from apps.community.services.subscriptions import send_member_digest, watch
from apps.membership.models import Member
from tests import factories
from tests.community_events.helpers import later_same_utc_day

DAILY = Member.EmailNotifications.DAILY


def _watched_reply(space):
    """Return a daily-digest watcher of the space, after a new reply in it."""
    topic = factories.TopicFactory(space=space, title="Export fails")
    factories.ReplyFactory(topic=topic)
    watcher = factories.MemberFactory(email_notifications=DAILY)
    watch(member=watcher, space=space)
    return watcher


def test_digest_records_the_day(space, mailoutbox):
    watcher = _watched_reply(space)
    now = timezone.now() + timedelta(minutes=5)

    send_member_digest(member=watcher, now=now)

    record = DigestSent.objects.get(member=watcher)
    assert record.day == now.date()
    assert record.reply_count == 1


def test_digest_once_after_cache_flush(space, mailoutbox):
    watcher = _watched_reply(space)
    now = timezone.now() + timedelta(minutes=5)

    send_member_digest(member=watcher, now=now)
    cache.clear()
    second = send_member_digest(member=watcher, now=later_same_utc_day(now))

    assert second is False
    assert len(mailoutbox) == 1
    assert DigestSent.objects.filter(member=watcher).count() == 1


def test_digest_next_day_sent_again(space, mailoutbox):
    watcher = _watched_reply(space)
    now = timezone.now() + timedelta(minutes=5)
    send_member_digest(member=watcher, now=now)
    factories.ReplyFactory(
        topic=factories.TopicFactory(space=space),
        created_at=now + timedelta(hours=20),
    )

    second = send_member_digest(member=watcher, now=now + timedelta(days=1))

    assert second is True
    assert DigestSent.objects.filter(member=watcher).count() == 2


def test_digest_failed_email_can_retry(space, mailoutbox, monkeypatch):
    watcher = _watched_reply(space)
    now = timezone.now() + timedelta(minutes=5)

    def refuse(*args, **kwargs):
        raise ConnectionRefusedError("SMTP server down")

    monkeypatch.setattr(subscriptions, "send_mail", refuse)
    first = send_member_digest(member=watcher, now=now)
    recorded_after_failure = DigestSent.objects.filter(member=watcher).exists()
    monkeypatch.undo()
    second = send_member_digest(member=watcher, now=now + timedelta(minutes=10))

    assert first is False
    assert recorded_after_failure is False
    assert second is True
    assert len(mailoutbox) == 1


@pytest.mark.django_db(transaction=True)
def test_digest_concurrent_runs_send_once(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    mail.outbox = []
    space = factories.SpaceFactory(visibility=Space.Visibility.MEMBERS)
    watcher = _watched_reply(space)
    now = timezone.now() + timedelta(minutes=5)
    first_sent = threading.Event()
    results = {}

    def first_run() -> None:
        # Holds its transaction open after sending, so the second run's
        # insert has to wait for it on the unique index.
        try:
            with transaction.atomic():
                results["first"] = send_member_digest(member=watcher, now=now)
                first_sent.set()
                time.sleep(0.5)
        finally:
            connection.close()

    def second_run() -> None:
        first_sent.wait(timeout=10)
        try:
            results["second"] = send_member_digest(member=watcher, now=now)
        finally:
            connection.close()

    threads = [threading.Thread(target=first_run), threading.Thread(target=second_run)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert results == {"first": True, "second": False}
    assert len(mail.outbox) == 1
    assert DigestSent.objects.filter(member=watcher).count() == 1


def test_digest_admin_lists_records(admin_client, space, mailoutbox):
    watcher = _watched_reply(space)
    send_member_digest(member=watcher, now=timezone.now() + timedelta(minutes=5))

    response = admin_client.get("/admin/community/digestsent/")

    assert response.status_code == 200
    assert response.context["cl"].result_count == 1
