"""The recertify link and the reminder email open at the same local instant.

The window opens at 09:00 on the holder's local day `remind_days_before`
days before their local expiry day, which can differ from the UTC day.
"""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.portal.selectors.courses import (
    get_reminder_window_start,
    is_recertification_due,
)
from apps.portal.services.certificates import send_certificate_reminders
from tests.portal.courses.helpers import make_certificate

REMINDER_HOUR = 9


@pytest.fixture(autouse=True)
def reminder_hour(settings):
    settings.RM6_CERTIFICATE_REMINDER_HOUR = REMINDER_HOUR


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


# (zone, expiry instant, last UTC minute before the window, window start)
WINDOW_CASES = [
    # Expires 14:00 CEST on 20 June: the window opens 09:00 CEST on 13 June.
    (
        "Europe/Paris",
        utc(2027, 6, 20, 12),
        utc(2027, 6, 13, 6, 59),
        utc(2027, 6, 13, 7),
    ),
    # Expires 12:00 EDT on 20 June: the window opens 09:00 EDT on 13 June.
    (
        "America/New_York",
        utc(2027, 6, 20, 16),
        utc(2027, 6, 13, 12, 59),
        utc(2027, 6, 13, 13),
    ),
    # 01:30 UTC on 21 June is 21:30 EDT on 20 June, so the local expiry day
    # is the 20th, a day before the UTC one.
    (
        "America/New_York",
        utc(2027, 6, 21, 1, 30),
        utc(2027, 6, 13, 12, 59),
        utc(2027, 6, 13, 13),
    ),
    # 23:30 UTC on 20 June is 01:30 CEST on 21 June, so the local expiry day
    # is the 21st, a day after the UTC one. Counting 7 times 24 hours back
    # from the expiry would open the window at 23:30 UTC on 13 June.
    (
        "Europe/Paris",
        utc(2027, 6, 20, 23, 30),
        utc(2027, 6, 14, 6, 59),
        utc(2027, 6, 14, 7),
    ),
]
WINDOW_CASE_IDS = [
    "paris",
    "new-york",
    "new-york-local-day-before-utc",
    "paris-local-day-after-utc",
]


@pytest.mark.parametrize(
    ("zone", "expires_at", "before", "start"), WINDOW_CASES, ids=WINDOW_CASE_IDS
)
def test_reminder_window_start_in_local_days(zone, expires_at, before, start):
    window_start = get_reminder_window_start(
        expires_at=expires_at, remind_days_before=7, time_zone=zone
    )

    assert window_start == start


@pytest.mark.parametrize(
    ("zone", "expires_at", "before", "start"), WINDOW_CASES, ids=WINDOW_CASE_IDS
)
def test_recertification_due_from_window_start(db, zone, expires_at, before, start):
    certificate = make_certificate(
        expires_at=expires_at, time_zone=zone, remind_days_before=7
    )

    assert (
        is_recertification_due(
            certificate, now=before, time_zone=zone, is_superseded=False
        )
        is False
    )
    assert (
        is_recertification_due(
            certificate, now=start, time_zone=zone, is_superseded=False
        )
        is True
    )


@pytest.mark.parametrize(
    ("zone", "expires_at", "before", "start"), WINDOW_CASES, ids=WINDOW_CASE_IDS
)
def test_reminder_sent_from_window_start(db, zone, expires_at, before, start):
    make_certificate(expires_at=expires_at, time_zone=zone, remind_days_before=7)

    assert send_certificate_reminders(now=before) == 0
    assert send_certificate_reminders(now=start) == 1


def test_recertification_due_once_expired(db):
    certificate = make_certificate(expires_at=utc(2027, 6, 20, 12))

    assert is_recertification_due(
        certificate, now=utc(2027, 6, 20, 12), time_zone="UTC", is_superseded=False
    )


def test_recertification_not_due_when_revoked(db):
    certificate = make_certificate(
        expires_at=utc(2027, 6, 20, 12), revoked_at=utc(2027, 6, 1)
    )

    assert not is_recertification_due(
        certificate, now=utc(2027, 6, 19), time_zone="UTC", is_superseded=False
    )
    assert not is_recertification_due(
        certificate, now=utc(2027, 6, 21), time_zone="UTC", is_superseded=False
    )


def test_recertification_without_reminder_due_at_expiry(db):
    certificate = make_certificate(
        expires_at=utc(2027, 6, 20, 12), remind_days_before=0
    )

    assert not is_recertification_due(
        certificate, now=utc(2027, 6, 20, 11, 59), time_zone="UTC", is_superseded=False
    )
    assert is_recertification_due(
        certificate, now=utc(2027, 6, 20, 12), time_zone="UTC", is_superseded=False
    )


def _reminder_hour_on(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(REMINDER_HOUR), tzinfo=zone)


def _last_window_start(now: datetime, zone: ZoneInfo) -> datetime:
    """Return the latest local reminder hour at or before `now`."""
    today = now.astimezone(zone).date()
    start = _reminder_hour_on(today, zone)
    if start > now:
        start = _reminder_hour_on(today - timedelta(days=1), zone)
    return start


def _next_window_start(now: datetime, zone: ZoneInfo) -> datetime:
    """Return the earliest local reminder hour after `now`."""
    today = now.astimezone(zone).date()
    start = _reminder_hour_on(today, zone)
    if start <= now:
        start = _reminder_hour_on(today + timedelta(days=1), zone)
    return start


@pytest.mark.parametrize("zone_name", ["Europe/Paris", "America/New_York"])
def test_certificate_list_recertify_link_in_local_window(
    member, member_client, zone_name
):
    # The window opened at the last local 09:00. Counting 7 times 24 hours
    # back from this expiry would open it at 23:59 local on the same day.
    zone = ZoneInfo(zone_name)
    member.time_zone = zone_name
    member.save(update_fields=["time_zone"])
    window_start = _last_window_start(timezone.now(), zone)
    expiry_day = window_start.date() + timedelta(days=7)
    make_certificate(
        expires_at=datetime.combine(expiry_day, time(23, 59), tzinfo=zone),
        member=member,
    )

    response = member_client.get(reverse("portal:certificate_list"))

    assert response.status_code == 200
    assert b">Recertify</a>" in response.content


@pytest.mark.parametrize("zone_name", ["Europe/Paris", "America/New_York"])
def test_certificate_list_no_recertify_link_before_local_window(
    member, member_client, zone_name
):
    # The window opens at the next local 09:00. Counting 7 times 24 hours
    # back from this expiry would open it at 00:01 local on the same day.
    zone = ZoneInfo(zone_name)
    member.time_zone = zone_name
    member.save(update_fields=["time_zone"])
    window_start = _next_window_start(timezone.now(), zone)
    expiry_day = window_start.date() + timedelta(days=7)
    make_certificate(
        expires_at=datetime.combine(expiry_day, time(0, 1), tzinfo=zone),
        member=member,
    )

    response = member_client.get(reverse("portal:certificate_list"))

    assert response.status_code == 200
    assert b">Recertify</a>" not in response.content
