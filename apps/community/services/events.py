"""Community events: scheduling, RSVPs with a waitlist, cancellation, attendance.

Every change to who is going happens under a row lock on the event
(`select_for_update`), and `going_count` moves only through F() updates, so
two members taking the last seat at once end with one going and one
waitlisted. The database check `going_count <= capacity` backs this up.
"""

import logging
from datetime import datetime
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from apps.community.models import CommunityEvent, Rsvp, Space
from apps.community.selectors.events import can_view_event, get_event_times
from apps.community.services.subscriptions import send_member_email_on_commit
from apps.lifecycle.delivery.notifications import notify_member
from apps.lifecycle.services import record_activity
from apps.membership.models import Member
from rm6.errors import DomainError

logger = logging.getLogger(__name__)


def localize_wall_time(value: datetime, *, time_zone: str) -> datetime:
    """Return the instant at which the zone's clocks show `value`'s wall time.

    `value` may be naive or aware; only its date and clock time are used.
    NOTE: a wall time skipped by a daylight saving change (02:30 on a
    spring-forward night) resolves to the instant one hour later, as
    zoneinfo does with fold=0.
    """
    naive = value.replace(tzinfo=None)
    return naive.replace(tzinfo=ZoneInfo(time_zone)).astimezone(ZoneInfo("UTC"))


@transaction.atomic
def schedule_event(
    *,
    created_by,
    kind: str,
    title: str,
    starts_at: datetime,
    ends_at: datetime,
    time_zone: str,
    space: Space | None = None,
    description: str = "",
    capacity: int | None = None,
    join_url: str = "",
    location: str = "",
) -> CommunityEvent:
    """Create an office hour or webinar; aware datetimes are stored as UTC."""
    if not created_by.is_staff:
        raise DomainError("Only staff schedule community events.", code="forbidden")
    if kind not in CommunityEvent.Kind.values:
        raise DomainError(
            f"Invalid event kind {kind!r}. Use one of "
            f"{', '.join(CommunityEvent.Kind.values)}.",
            field="kind",
        )
    if not title.strip():
        raise DomainError("The title is missing. Name the event.", field="title")
    if ends_at <= starts_at:
        raise DomainError("The event must end after it starts.", field="ends_at")

    return CommunityEvent.objects.create(
        created_by=created_by,
        kind=kind,
        title=title.strip(),
        starts_at=starts_at,
        ends_at=ends_at,
        time_zone=time_zone,
        space=space,
        description=description,
        capacity=capacity,
        join_url=join_url,
        location=location,
    )


def _lock_event(event: CommunityEvent) -> CommunityEvent:
    return CommunityEvent.objects.select_for_update().get(pk=event.pk)


def _check_open_for_rsvps(event: CommunityEvent) -> None:
    if event.cancelled_at is not None:
        raise DomainError("This event is cancelled.", code="event_cancelled")
    if event.ends_at <= timezone.now():
        raise DomainError("This event has ended.", code="event_ended")


def _record_rsvp(*, member: Member, event: CommunityEvent, status: str) -> None:
    record_activity(
        member=member,
        kind="community.event_rsvp",
        subject=event,
        properties={"status": status, "event_kind": event.kind},
    )


@transaction.atomic
def rsvp_to_event(*, event: CommunityEvent, member: Member) -> Rsvp:
    """Put the member on the event: going while seats are left, else waitlisted.

    A member who is already going or waitlisted keeps that place, so a
    repeated request changes nothing.
    """
    event = _lock_event(event)
    if not can_view_event(member=member, event=event):
        raise DomainError("You cannot join this event.", code="forbidden")
    _check_open_for_rsvps(event)

    rsvp = Rsvp.objects.filter(event=event, member=member).first()
    if rsvp is not None and rsvp.status != Rsvp.Status.CANCELLED:
        return rsvp

    has_seat = event.capacity is None or event.going_count < event.capacity
    status = Rsvp.Status.GOING if has_seat else Rsvp.Status.WAITLISTED
    if rsvp is None:
        rsvp = Rsvp.objects.create(event=event, member=member, status=status)
    else:
        rsvp.status = status
        rsvp.save(update_fields=["status", "updated_at"])
    if has_seat:
        CommunityEvent.objects.filter(pk=event.pk).update(
            going_count=F("going_count") + 1
        )

    _record_rsvp(member=member, event=event, status=status)
    return rsvp


def _event_url(event: CommunityEvent) -> str:
    return reverse("community:event", kwargs={"pk": event.pk})


def _promote_from_waitlist(event: CommunityEvent) -> Rsvp | None:
    """Give a freed seat to the member who joined the waitlist first."""
    rsvp = (
        Rsvp.objects.select_for_update()
        .filter(event=event, status=Rsvp.Status.WAITLISTED)
        .select_related("member__user")
        .order_by("updated_at", "id")
        .first()
    )
    if rsvp is None:
        return None

    rsvp.status = Rsvp.Status.GOING
    rsvp.save(update_fields=["status", "updated_at"])

    member = rsvp.member
    title = f"A seat opened up: you are going to {event.title}"
    notify_member(
        member=member,
        kind="community.event_promoted",
        title=title,
        url=_event_url(event),
        subject=event,
    )
    if member.email_notifications != Member.EmailNotifications.OFF:
        times = get_event_times(event=event, time_zone=member.time_zone)
        send_member_email_on_commit(
            member=member,
            subject=title,
            body=f"{event.title}\n{times.label}\n\n"
            f"{settings.SITE_URL.rstrip('/')}{_event_url(event)}",
        )
    return rsvp


@transaction.atomic
def cancel_rsvp(*, event: CommunityEvent, member: Member) -> Rsvp | None:
    """Take the member off the event; a freed seat goes to the waitlist's oldest.

    Return the cancelled RSVP, or None when the member had no active one.
    """
    event = _lock_event(event)
    rsvp = (
        Rsvp.objects.select_for_update()
        .filter(event=event, member=member)
        .exclude(status=Rsvp.Status.CANCELLED)
        .first()
    )
    if rsvp is None:
        return None

    was_going = rsvp.status == Rsvp.Status.GOING
    rsvp.status = Rsvp.Status.CANCELLED
    rsvp.save(update_fields=["status", "updated_at"])
    if was_going and _promote_from_waitlist(event) is None:
        # A promoted member takes the seat over, so the count stays.
        CommunityEvent.objects.filter(pk=event.pk).update(
            going_count=F("going_count") - 1
        )

    _record_rsvp(member=member, event=event, status=Rsvp.Status.CANCELLED)
    return rsvp


@transaction.atomic
def cancel_event(*, event: CommunityEvent, cancelled_by) -> int:
    """Cancel the event and notify everyone going or waitlisted; return how many.

    Cancelling twice notifies nobody the second time.
    """
    if not cancelled_by.is_staff:
        raise DomainError("Only staff cancel community events.", code="forbidden")
    now = timezone.now()
    changed = CommunityEvent.objects.filter(
        pk=event.pk, cancelled_at__isnull=True
    ).update(cancelled_at=now)
    if not changed:
        return 0
    event.cancelled_at = now

    rsvps = (
        Rsvp.objects.filter(event=event)
        .exclude(status=Rsvp.Status.CANCELLED)
        .select_related("member__user")
    )
    title = f"Cancelled: {event.title}"
    notified = 0
    for rsvp in rsvps.iterator(chunk_size=500):
        member = rsvp.member
        if member.deactivated_at is not None:
            continue
        notify_member(
            member=member,
            kind="community.event_cancelled",
            title=title,
            url=_event_url(event),
            subject=event,
        )
        if member.email_notifications != Member.EmailNotifications.OFF:
            times = get_event_times(event=event, time_zone=member.time_zone)
            send_member_email_on_commit(
                member=member,
                subject=title,
                body=f"{event.title}, planned for {times.label}, is cancelled.",
            )
        notified += 1

    logger.info("community event cancelled: event %s, notified %d", event.pk, notified)
    return notified


@transaction.atomic
def mark_attendance(*, event: CommunityEvent, member: Member, marked_by) -> Rsvp:
    """Record that the member attended the event; repeating changes nothing.

    Attendance is marked on an existing RSVP only, whatever its status,
    because members who cancelled or waited sometimes join anyway.
    """
    if not marked_by.is_staff:
        raise DomainError("Only staff mark attendance.", code="forbidden")
    try:
        rsvp = Rsvp.objects.select_for_update().get(event=event, member=member)
    except Rsvp.DoesNotExist:
        raise DomainError(
            f"{member.name} has no RSVP for this event. Only members who "
            "answered it can be marked as attended.",
            code="no_rsvp",
        ) from None
    if rsvp.attended_at is not None:
        return rsvp

    rsvp.attended_at = timezone.now()
    rsvp.save(update_fields=["attended_at", "updated_at"])

    record_activity(
        member=member,
        kind="community.event_attended",
        subject=event,
        occurred_at=rsvp.attended_at,
        properties={"event_kind": event.kind, "rsvp_status": rsvp.status},
        idempotency_key=f"community.event_attended:{event.pk}:{member.pk}",
    )
    return rsvp
