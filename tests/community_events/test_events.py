import threading
from datetime import datetime, timedelta

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from apps.community.models import CommunityEvent, Rsvp, Space
from apps.community.selectors.events import (
    ICS_LINE_OCTETS,
    build_event_ics,
    get_event_times,
    list_past_events,
    list_upcoming_events,
)
from apps.community.services.events import (
    cancel_event,
    cancel_rsvp,
    localize_wall_time,
    mark_attendance,
    rsvp_to_event,
)
from apps.lifecycle.models import ActivityEvent, Notification
from apps.membership.models import Member
from rm6.errors import DomainError
from tests import factories
from tests.community_events.conftest import make_event, utc


def test_rsvp_going_while_seats_left(db):
    event = make_event(capacity=2)
    member = factories.MemberFactory()

    rsvp = rsvp_to_event(event=event, member=member)

    event.refresh_from_db()
    assert rsvp.status == Rsvp.Status.GOING
    assert event.going_count == 1


def test_rsvp_waitlisted_when_full(db):
    event = make_event(capacity=1)
    rsvp_to_event(event=event, member=factories.MemberFactory())

    rsvp = rsvp_to_event(event=event, member=factories.MemberFactory())

    event.refresh_from_db()
    assert rsvp.status == Rsvp.Status.WAITLISTED
    assert event.going_count == 1


def test_rsvp_repeated_keeps_place(db):
    event = make_event(capacity=5)
    member = factories.MemberFactory()
    rsvp_to_event(event=event, member=member)

    rsvp_to_event(event=event, member=member)

    event.refresh_from_db()
    assert event.going_count == 1
    assert Rsvp.objects.filter(event=event).count() == 1


def test_rsvp_records_activity_event(db):
    event = make_event()
    member = factories.MemberFactory()

    rsvp_to_event(event=event, member=member)

    recorded = ActivityEvent.objects.get(member=member, kind="community.event_rsvp")
    assert recorded.properties["status"] == "going"


def test_rsvp_rejected_for_cancelled_event(db):
    event = make_event(cancelled_at=timezone.now())

    with pytest.raises(DomainError) as error:
        rsvp_to_event(event=event, member=factories.MemberFactory())

    assert error.value.message == "This event is cancelled."
    assert not Rsvp.objects.exists()


def test_rsvp_rejected_for_hidden_space(db):
    space = factories.SpaceFactory(
        visibility=Space.Visibility.ACCOUNT, account=factories.AccountFactory()
    )
    event = make_event(space=space)

    with pytest.raises(DomainError):
        rsvp_to_event(event=event, member=factories.MemberFactory())

    assert not Rsvp.objects.exists()


def test_cancel_going_promotes_oldest_waitlisted(db):
    event = make_event(capacity=1)
    going = factories.MemberFactory()
    first_waiting = factories.MemberFactory()
    second_waiting = factories.MemberFactory()
    rsvp_to_event(event=event, member=going)
    rsvp_to_event(event=event, member=first_waiting)
    rsvp_to_event(event=event, member=second_waiting)

    cancel_rsvp(event=event, member=going)

    event.refresh_from_db()
    statuses = dict(Rsvp.objects.values_list("member_id", "status"))
    assert statuses[going.pk] == Rsvp.Status.CANCELLED
    assert statuses[first_waiting.pk] == Rsvp.Status.GOING
    assert statuses[second_waiting.pk] == Rsvp.Status.WAITLISTED
    assert event.going_count == 1
    assert Notification.objects.filter(
        member=first_waiting, kind="community.event_promoted"
    ).exists()


def test_cancel_going_without_waitlist_frees_seat(db):
    event = make_event(capacity=1)
    member = factories.MemberFactory()
    rsvp_to_event(event=event, member=member)

    cancel_rsvp(event=event, member=member)

    event.refresh_from_db()
    assert event.going_count == 0


def test_cancel_waitlisted_keeps_count(db):
    event = make_event(capacity=1)
    rsvp_to_event(event=event, member=factories.MemberFactory())
    waiting = factories.MemberFactory()
    rsvp_to_event(event=event, member=waiting)

    cancel_rsvp(event=event, member=waiting)

    event.refresh_from_db()
    assert event.going_count == 1


def test_rsvp_after_cancel_joins_waitlist_end(db):
    event = make_event(capacity=1)
    going = factories.MemberFactory()
    early = factories.MemberFactory()
    late = factories.MemberFactory()
    rsvp_to_event(event=event, member=going)
    rsvp_to_event(event=event, member=early)
    cancel_rsvp(event=event, member=early)
    rsvp_to_event(event=event, member=late)
    rsvp_to_event(event=event, member=early)

    cancel_rsvp(event=event, member=going)

    assert Rsvp.objects.get(member=late).status == Rsvp.Status.GOING
    assert Rsvp.objects.get(member=early).status == Rsvp.Status.WAITLISTED


@pytest.mark.django_db(transaction=True)
def test_rsvp_last_seat_race_one_going():
    event = make_event(capacity=1)
    members = [factories.MemberFactory(), factories.MemberFactory()]
    barrier = threading.Barrier(2)
    errors = []

    def take_seat(member: Member) -> None:
        try:
            barrier.wait()
            rsvp_to_event(event=event, member=member)
        except Exception as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=take_seat, args=(m,)) for m in members]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    event.refresh_from_db()
    statuses = sorted(Rsvp.objects.values_list("status", flat=True))
    assert errors == []
    assert statuses == [Rsvp.Status.GOING, Rsvp.Status.WAITLISTED]
    assert event.going_count == 1


def test_cancel_event_notifies_rsvps(db):
    event = make_event(capacity=1)
    going = factories.MemberFactory()
    waiting = factories.MemberFactory()
    rsvp_to_event(event=event, member=going)
    rsvp_to_event(event=event, member=waiting)

    notified = cancel_event(event=event, cancelled_by=factories.StaffFactory())

    assert notified == 2
    assert Notification.objects.filter(kind="community.event_cancelled").count() == 2


def test_cancel_event_twice_notifies_once(db):
    event = make_event()
    rsvp_to_event(event=event, member=factories.MemberFactory())
    staff = factories.StaffFactory()
    cancel_event(event=event, cancelled_by=staff)

    notified = cancel_event(event=event, cancelled_by=staff)

    assert notified == 0
    assert Notification.objects.filter(kind="community.event_cancelled").count() == 1


def test_cancel_event_emails_member(db, mailoutbox, django_capture_on_commit_callbacks):
    event = make_event(title="Roadmap webinar")
    member = factories.MemberFactory(
        email_notifications=Member.EmailNotifications.DAILY
    )
    rsvp_to_event(event=event, member=member)

    with django_capture_on_commit_callbacks(execute=True):
        cancel_event(event=event, cancelled_by=factories.StaffFactory())

    assert [message.to for message in mailoutbox] == [[member.user.email]]
    assert mailoutbox[0].subject == "Cancelled: Roadmap webinar"


def test_mark_attendance_records_event_once(db):
    event = make_event()
    member = factories.MemberFactory()
    rsvp_to_event(event=event, member=member)
    staff = factories.StaffFactory()

    mark_attendance(event=event, member=member, marked_by=staff)
    mark_attendance(event=event, member=member, marked_by=staff)

    assert Rsvp.objects.get(member=member).attended_at is not None
    assert (
        ActivityEvent.objects.filter(
            member=member, kind="community.event_attended"
        ).count()
        == 1
    )


def test_mark_attendance_without_rsvp_rejected(db):
    event = make_event()

    with pytest.raises(DomainError) as error:
        mark_attendance(
            event=event,
            member=factories.MemberFactory(),
            marked_by=factories.StaffFactory(),
        )

    assert error.value.code == "no_rsvp"


def test_attendance_view_rejects_members(client, db):
    event = make_event()
    member = factories.MemberFactory()
    rsvp_to_event(event=event, member=member)
    client.force_login(member.user)

    response = client.post(
        reverse("community:event_attendance", args=[event.pk]), {"member": member.pk}
    )

    assert response.status_code == 403
    assert Rsvp.objects.get(member=member).attended_at is None


def test_attendance_view_marks_for_staff(client, db):
    event = make_event()
    member = factories.MemberFactory()
    rsvp_to_event(event=event, member=member)
    client.force_login(factories.StaffFactory())

    client.post(
        reverse("community:event_attendance", args=[event.pk]), {"member": member.pk}
    )

    assert Rsvp.objects.get(member=member).attended_at is not None


# Europe/Paris moves from CET (+01:00) to CEST (+02:00) at 01:00 UTC on
# 29 March 2026; America/New_York moves from EDT (-04:00) to EST (-05:00) at
# 06:00 UTC on 1 November 2026.
@pytest.mark.parametrize(
    ("wall_time", "zone", "expected_utc"),
    [
        (datetime(2026, 3, 28, 10, 0), "Europe/Paris", utc(2026, 3, 28, 9, 0)),
        (datetime(2026, 3, 29, 10, 0), "Europe/Paris", utc(2026, 3, 29, 8, 0)),
        (datetime(2026, 10, 31, 12, 0), "America/New_York", utc(2026, 10, 31, 16, 0)),
        (datetime(2026, 11, 1, 12, 0), "America/New_York", utc(2026, 11, 1, 17, 0)),
    ],
)
def test_localize_wall_time_across_dst(wall_time, zone, expected_utc):
    assert localize_wall_time(wall_time, time_zone=zone) == expected_utc


@pytest.mark.parametrize(
    ("starts_at", "host_zone", "viewer_zone", "expected"),
    [
        # Paris weekly office hours at 10:00: the day before and the day of
        # the change, seen from New York (already on EDT) and from Tokyo.
        (
            utc(2026, 3, 28, 9, 0),
            "Europe/Paris",
            "America/New_York",
            "Sat 28 Mar 2026, 05:00 to 06:00 EDT",
        ),
        (
            utc(2026, 3, 29, 8, 0),
            "Europe/Paris",
            "America/New_York",
            "Sun 29 Mar 2026, 04:00 to 05:00 EDT",
        ),
        (
            utc(2026, 3, 29, 8, 0),
            "Europe/Paris",
            "Asia/Tokyo",
            "Sun 29 Mar 2026, 17:00 to 18:00 JST",
        ),
        (
            utc(2026, 3, 29, 8, 0),
            "Europe/Paris",
            "Europe/Paris",
            "Sun 29 Mar 2026, 10:00 to 11:00 CEST",
        ),
        # New York webinar at 12:00 on the day the clocks go back, seen from
        # London (already on GMT) and from Paris.
        (
            utc(2026, 11, 1, 17, 0),
            "America/New_York",
            "Europe/London",
            "Sun 1 Nov 2026, 17:00 to 18:00 GMT",
        ),
        (
            utc(2026, 11, 1, 17, 0),
            "America/New_York",
            "Europe/Paris",
            "Sun 1 Nov 2026, 18:00 to 19:00 CET",
        ),
        (
            utc(2026, 11, 1, 17, 0),
            "America/New_York",
            "America/New_York",
            "Sun 1 Nov 2026, 12:00 to 13:00 EST",
        ),
    ],
)
def test_event_times_across_dst(starts_at, host_zone, viewer_zone, expected):
    event = CommunityEvent(
        starts_at=starts_at, ends_at=starts_at + timedelta(hours=1), time_zone=host_zone
    )

    times = get_event_times(event=event, time_zone=viewer_zone)

    assert times.label == expected


def test_event_times_overnight_label():
    starts_at = utc(2026, 11, 1, 23, 30)
    event = CommunityEvent(starts_at=starts_at, ends_at=starts_at + timedelta(hours=1))

    times = get_event_times(event=event, time_zone="UTC")

    assert times.label == "Sun 1 Nov 2026, 23:30 UTC to Mon 2 Nov 2026, 00:30 UTC"


def test_event_page_shows_viewer_and_host_times(client, db):
    event = make_event(
        starts_at=utc(2026, 3, 29, 8, 0), time_zone="Europe/Paris", title="Paris OH"
    )
    member = factories.MemberFactory(time_zone="America/New_York")
    client.force_login(member.user)

    response = client.get(reverse("community:event", args=[event.pk]))

    content = response.content.decode()
    assert "Sun 29 Mar 2026, 04:00 to 05:00 EDT" in content
    assert "Sun 29 Mar 2026, 10:00 to 11:00 CEST" in content


def test_event_page_anonymous_sees_host_zone(client, db):
    event = make_event(starts_at=utc(2026, 11, 1, 17, 0), time_zone="America/New_York")

    response = client.get(reverse("community:event", args=[event.pk]))

    assert "Sun 1 Nov 2026, 12:00 to 13:00 EST" in response.content.decode()


def test_event_page_hidden_space_404(client, db):
    space = factories.SpaceFactory(
        visibility=Space.Visibility.ACCOUNT, account=factories.AccountFactory()
    )
    event = make_event(space=space)
    client.force_login(factories.MemberFactory().user)

    response = client.get(reverse("community:event", args=[event.pk]))

    assert response.status_code == 404


def test_event_lists_split_upcoming_and_past(db):
    now = timezone.now()
    past = make_event(starts_at=now - timedelta(days=2), title="Past")
    later = make_event(starts_at=now + timedelta(days=5), title="Later")
    sooner = make_event(starts_at=now + timedelta(days=1), title="Sooner")
    hidden_space = factories.SpaceFactory(
        visibility=Space.Visibility.ACCOUNT, account=factories.AccountFactory()
    )
    make_event(starts_at=now + timedelta(days=1), space=hidden_space)
    member = factories.MemberFactory()

    upcoming = list(list_upcoming_events(member=member))
    past_events = list(list_past_events(member=member))

    assert upcoming == [sooner, later]
    assert past_events == [past]


def test_event_list_page_renders(client, db):
    make_event(title="Admin office hours")

    response = client.get(reverse("community:events"))

    assert response.status_code == 200
    assert "Admin office hours" in response.content.decode()


def test_rsvp_view_requires_sign_in(client, db):
    event = make_event()

    response = client.post(reverse("community:event_rsvp", args=[event.pk]))

    assert response.status_code == 302
    assert not Rsvp.objects.exists()


def test_rsvp_view_puts_member_on_event(client, db):
    event = make_event()
    member = factories.MemberFactory()
    client.force_login(member.user)

    client.post(reverse("community:event_rsvp", args=[event.pk]))

    assert Rsvp.objects.get(event=event).member == member


def _unfold(content: str) -> list[str]:
    return content.replace("\r\n ", "").split("\r\n")


def test_ics_content(db):
    event = make_event(
        starts_at=utc(2026, 3, 29, 8, 0),
        time_zone="Europe/Paris",
        title="Q&A: exports, imports; and more",
        description="Line one\nLine two, with a comma",
        location="Room 1; floor 2",
    )

    content = build_event_ics(
        event=event,
        url="https://hub.example.com/community/events/1/",
        host="hub.example.com",
        now=utc(2026, 3, 1, 12, 0),
    )

    lines = _unfold(content)
    assert lines[0] == "BEGIN:VCALENDAR"
    assert f"UID:event-{event.pk}@hub.example.com" in lines
    assert "DTSTAMP:20260301T120000Z" in lines
    assert "DTSTART:20260329T080000Z" in lines
    assert "DTEND:20260329T090000Z" in lines
    assert "SUMMARY:Q&A: exports\\, imports\\; and more" in lines
    assert "DESCRIPTION:Line one\\nLine two\\, with a comma" in lines
    assert "LOCATION:Room 1\\; floor 2" in lines
    assert "URL:https://hub.example.com/community/events/1/" in lines
    assert content.endswith("END:VCALENDAR\r\n")


def test_ics_folds_long_lines_at_75_octets(db):
    event = make_event(description="é" * 200 + "x" * 100)

    content = build_event_ics(event=event, url="https://x.test/", host="x.test")

    physical_lines = content.split("\r\n")
    assert max(len(line.encode()) for line in physical_lines) <= ICS_LINE_OCTETS
    assert "DESCRIPTION:" + "é" * 200 + "x" * 100 in _unfold(content)


def test_ics_view_download(client, db):
    event = make_event()

    response = client.get(reverse("community:event_ics", args=[event.pk]))

    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    assert f"UID:event-{event.pk}@testserver" in response.content.decode()


def test_ics_view_hidden_space_404(client, db):
    space = factories.SpaceFactory(visibility=Space.Visibility.MEMBERS)
    event = make_event(space=space)

    response = client.get(reverse("community:event_ics", args=[event.pk]))

    assert response.status_code == 404
