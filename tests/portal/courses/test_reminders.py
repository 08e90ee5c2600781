"""Recertification reminders go out from 09:00 on the member's local day.

The DST cases put the reminder day on the day the clocks change, where a
computation with a fixed UTC offset would send an hour early or late.
"""

from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail
from django.utils import timezone

from apps.lifecycle.models import ActivityEvent, Notification
from apps.membership.models import Member
from apps.portal.models import MemberCertificate
from apps.portal.services.certificates import (
    record_certificate_expiries,
    send_certificate_reminders,
)
from apps.portal.tasks.courses import send_certificate_reminders_task
from rm6.celery import app
from tests.portal.courses.helpers import make_certificate


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


# (zone, expiry instant, remind days, last UTC minute before due, first due)
DST_CASES = [
    # Paris springs forward on Sunday 28 March 2027: 09:00 CEST is 07:00 UTC.
    (
        "Europe/Paris",
        utc(2027, 4, 4, 12),
        7,
        utc(2027, 3, 28, 6, 59),
        utc(2027, 3, 28, 7),
    ),
    # Paris falls back on Sunday 31 October 2027: 09:00 CET is 08:00 UTC.
    (
        "Europe/Paris",
        utc(2027, 11, 7, 12),
        7,
        utc(2027, 10, 31, 7, 59),
        utc(2027, 10, 31, 8),
    ),
    # New York springs forward on Sunday 14 March 2027: 09:00 EDT is 13:00 UTC.
    (
        "America/New_York",
        utc(2027, 3, 21, 16),
        7,
        utc(2027, 3, 14, 12, 59),
        utc(2027, 3, 14, 13),
    ),
    # New York falls back on Sunday 7 November 2027: 09:00 EST is 14:00 UTC.
    (
        "America/New_York",
        utc(2027, 11, 14, 16),
        7,
        utc(2027, 11, 7, 13, 59),
        utc(2027, 11, 7, 14),
    ),
]


@pytest.mark.parametrize(
    ("zone", "expires_at", "days", "before", "due"),
    DST_CASES,
    ids=["paris-march", "paris-october", "new-york-march", "new-york-november"],
)
def test_reminder_due_at_local_hour_across_dst(db, zone, expires_at, days, before, due):
    certificate = make_certificate(
        expires_at=expires_at, time_zone=zone, remind_days_before=days
    )

    sent_before = send_certificate_reminders(now=before)
    sent_due = send_certificate_reminders(now=due)

    certificate.refresh_from_db()
    assert sent_before == 0
    assert sent_due == 1
    assert certificate.reminder_sent_at == due


def test_reminder_uses_local_expiry_date(db):
    # 01:30 UTC on 4 April is 21:30 on 3 April in New York, so the local
    # expiry day is the 3rd and the reminder day 7 days before is 27 March.
    certificate = make_certificate(
        expires_at=utc(2027, 4, 4, 1, 30), time_zone="America/New_York"
    )

    assert send_certificate_reminders(now=utc(2027, 3, 27, 12, 59)) == 0
    assert send_certificate_reminders(now=utc(2027, 3, 27, 13)) == 1
    certificate.refresh_from_db()
    assert certificate.reminder_sent_at == utc(2027, 3, 27, 13)


def test_reminder_same_instant_differs_by_zone(db):
    expires_at = utc(2027, 4, 4, 12)
    paris = make_certificate(expires_at=expires_at, time_zone="Europe/Paris")
    new_york = make_certificate(expires_at=expires_at, time_zone="America/New_York")

    send_certificate_reminders(now=utc(2027, 3, 28, 7))

    paris.refresh_from_db()
    new_york.refresh_from_db()
    assert paris.reminder_sent_at is not None
    assert new_york.reminder_sent_at is None


def test_reminder_never_sent_twice(db):
    certificate = make_certificate(expires_at=utc(2027, 4, 4, 12))
    due = utc(2027, 3, 28, 9)

    first = send_certificate_reminders(now=due)
    second = send_certificate_reminders(now=due + timedelta(hours=1))
    third = send_certificate_reminders(now=due + timedelta(days=2))

    assert (first, second, third) == (1, 0, 0)
    events = ActivityEvent.objects.filter(kind="portal.certificate_reminder_sent")
    assert events.count() == 1
    assert events.get().subject_id == str(certificate.pk)


def test_reminder_sent_late_when_task_missed_the_day(db):
    make_certificate(expires_at=utc(2027, 4, 4, 12))

    sent = send_certificate_reminders(now=utc(2027, 3, 30, 2))

    assert sent == 1


def test_reminder_not_sent_after_expiry(db):
    make_certificate(expires_at=utc(2027, 4, 4, 12))

    sent = send_certificate_reminders(now=utc(2027, 4, 4, 12))

    assert sent == 0


def test_reminder_skips_superseded_certificate(db):
    old = make_certificate(expires_at=utc(2027, 4, 4, 12))
    make_certificate(
        expires_at=utc(2028, 3, 20, 12),
        member=old.member,
        certification=old.certification,
    )

    sent = send_certificate_reminders(now=utc(2027, 3, 28, 9))

    old.refresh_from_db()
    assert sent == 0
    assert old.reminder_sent_at is None


def test_reminder_skips_revoked_certificate(db):
    make_certificate(expires_at=utc(2027, 4, 4, 12), revoked_at=utc(2027, 1, 1))

    assert send_certificate_reminders(now=utc(2027, 3, 28, 9)) == 0


def test_reminder_skips_deactivated_member(db):
    certificate = make_certificate(expires_at=utc(2027, 4, 4, 12))
    Member.objects.filter(pk=certificate.member_id).update(
        deactivated_at=utc(2027, 1, 1)
    )

    assert send_certificate_reminders(now=utc(2027, 3, 28, 9)) == 0


def test_reminder_notifies_in_app_and_by_email(db, django_capture_on_commit_callbacks):
    certificate = make_certificate(
        expires_at=utc(2027, 4, 4, 12), time_zone="Europe/Paris"
    )

    with django_capture_on_commit_callbacks(execute=True):
        send_certificate_reminders(now=utc(2027, 3, 28, 7))

    notification = Notification.objects.get(member=certificate.member)
    assert notification.kind == "portal.certificate_reminder"
    assert "expires on 4 April 2027" in notification.title
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [certificate.member.email]
    assert "4 April 2027 at 14:00 (Europe/Paris)" in mail.outbox[0].body


def test_reminder_without_email_when_member_turned_email_off(
    db, django_capture_on_commit_callbacks
):
    certificate = make_certificate(expires_at=utc(2027, 4, 4, 12))
    Member.objects.filter(pk=certificate.member_id).update(
        email_notifications=Member.EmailNotifications.OFF
    )

    with django_capture_on_commit_callbacks(execute=True):
        send_certificate_reminders(now=utc(2027, 3, 28, 9))

    assert Notification.objects.filter(member=certificate.member).count() == 1
    assert mail.outbox == []


def test_expiry_recorded_at_exact_boundary(db):
    expires_at = utc(2027, 4, 4, 12)
    certificate = make_certificate(expires_at=expires_at)

    before = record_certificate_expiries(now=expires_at - timedelta(microseconds=1))
    at = record_certificate_expiries(now=expires_at)
    again = record_certificate_expiries(now=expires_at + timedelta(hours=1))

    assert (before, at, again) == (0, 1, 0)
    event = ActivityEvent.objects.get(kind="portal.certificate_expired")
    assert event.subject_id == str(certificate.pk)
    assert event.occurred_at == expires_at


def test_expiry_of_superseded_certificate_records_no_event(db):
    old = make_certificate(expires_at=utc(2027, 4, 4, 12))
    make_certificate(
        expires_at=utc(2028, 4, 1, 12),
        member=old.member,
        certification=old.certification,
    )

    handled = record_certificate_expiries(now=utc(2027, 4, 5))

    assert handled == 1
    assert not ActivityEvent.objects.filter(kind="portal.certificate_expired").exists()
    assert MemberCertificate.objects.get(pk=old.pk).expiry_recorded_at is not None


def test_reminder_beat_tasks_are_registered(settings):
    names = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}

    assert "portal.send_certificate_reminders" in names
    assert "portal.record_certificate_expiries" in names
    assert "portal.send_certificate_reminders" in app.tasks
    assert "portal.record_certificate_expiries" in app.tasks


def test_reminder_task_sends_due_reminders(db):
    certificate = make_certificate(
        expires_at=timezone.now() + timedelta(days=3), remind_days_before=5
    )

    sent = send_certificate_reminders_task.apply().get()

    certificate.refresh_from_db()
    assert sent == 1
    assert certificate.reminder_sent_at is not None
