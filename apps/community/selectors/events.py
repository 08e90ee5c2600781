"""Reads for community events: lists, the event page, times and calendar files."""

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from django.db.models import Q, QuerySet
from django.utils import timezone

from apps.community.models import CommunityEvent, Rsvp
from apps.community.selectors import can_view_space, list_visible_spaces
from apps.membership.models import Member


def _visible_events(*, member: Member | None, is_staff: bool) -> QuerySet:
    events = CommunityEvent.objects.select_related("space")
    if is_staff:
        return events
    spaces = list_visible_spaces(member=member, is_staff=False)
    return events.filter(Q(space__isnull=True) | Q(space__in=spaces))


def list_upcoming_events(
    *, member: Member | None, is_staff: bool = False, now: datetime | None = None
) -> QuerySet[CommunityEvent]:
    """Return events that have not ended, soonest first, in spaces the viewer reads."""
    now = now or timezone.now()
    events = _visible_events(member=member, is_staff=is_staff)
    return events.filter(ends_at__gt=now).order_by("starts_at", "id")


def list_past_events(
    *, member: Member | None, is_staff: bool = False, now: datetime | None = None
) -> QuerySet[CommunityEvent]:
    """Return events that have ended, most recent first, in spaces the viewer reads."""
    now = now or timezone.now()
    events = _visible_events(member=member, is_staff=is_staff)
    return events.filter(ends_at__lte=now).order_by("-starts_at", "-id")


def can_view_event(
    *, member: Member | None, event: CommunityEvent, is_staff: bool = False
) -> bool:
    if is_staff or event.space_id is None:
        return True
    return can_view_space(member=member, space=event.space)


def access_event(
    *, pk: int, member: Member | None, is_staff: bool = False
) -> CommunityEvent:
    """Return the event if the viewer may read its space.

    Raise `CommunityEvent.DoesNotExist` also when its space is hidden from the
    viewer, so that a private event's existence does not leak.
    """
    event = CommunityEvent.objects.select_related("space").get(pk=pk)
    if not can_view_event(member=member, event=event, is_staff=is_staff):
        raise CommunityEvent.DoesNotExist(f"No event {pk} visible to this viewer.")
    return event


def get_member_rsvp(*, event: CommunityEvent, member: Member | None) -> Rsvp | None:
    if member is None:
        return None
    return Rsvp.objects.filter(event=event, member=member).first()


def list_event_rsvps(*, event: CommunityEvent) -> QuerySet[Rsvp]:
    """Return the event's RSVPs that are not cancelled, going before waitlisted."""
    return (
        Rsvp.objects.filter(event=event)
        .exclude(status=Rsvp.Status.CANCELLED)
        .select_related("member__user")
        .order_by("status", "updated_at", "id")
    )


@dataclass(frozen=True)
class EventTimes:
    """An event's start and end as wall-clock times in one time zone."""

    starts_at: datetime
    ends_at: datetime
    time_zone: str

    @property
    def label(self) -> str:
        """Return the times as text, such as "Sun 29 Mar 2026, 10:00 to 11:00 CEST"."""
        start, end = self.starts_at, self.ends_at
        day = f"{start:%a} {start.day} {start:%b %Y}"
        if start.date() == end.date():
            return f"{day}, {start:%H:%M} to {end:%H:%M} {end:%Z}"
        end_day = f"{end:%a} {end.day} {end:%b %Y}"
        return f"{day}, {start:%H:%M %Z} to {end_day}, {end:%H:%M %Z}"


def get_event_times(*, event: CommunityEvent, time_zone: str) -> EventTimes:
    """Return the event's times in the given IANA zone.

    The event stores UTC instants, so zoneinfo applies the offset in force on
    the event's own date, including a daylight saving change between now and
    then.
    """
    zone = ZoneInfo(time_zone)
    return EventTimes(
        starts_at=event.starts_at.astimezone(zone),
        ends_at=event.ends_at.astimezone(zone),
        time_zone=time_zone,
    )


def get_viewer_time_zone(*, event: CommunityEvent, member: Member | None) -> str:
    """Return the zone to show times in: the member's, or the host's for visitors."""
    if member is None:
        return event.time_zone
    return member.time_zone or event.time_zone


# RFC 5545, section 3.1: content lines are folded at 75 octets.
ICS_LINE_OCTETS = 75


def _escape_ics_text(value: str) -> str:
    """Escape a TEXT value as RFC 5545, section 3.3.11 requires."""
    value = value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    return value.replace("\r\n", "\\n").replace("\r", "\\n").replace("\n", "\\n")


def _fold_ics_line(line: str) -> str:
    """Fold a content line into parts of at most 75 octets, never inside a character.

    Each continuation line starts with one space, which counts toward its 75.
    """
    parts = []
    current = b""
    limit = ICS_LINE_OCTETS
    for character in line:
        encoded = character.encode("utf-8")
        if len(current) + len(encoded) > limit:
            parts.append(current.decode("utf-8"))
            current = b""
            limit = ICS_LINE_OCTETS - 1
        current += encoded
    parts.append(current.decode("utf-8"))
    return "\r\n ".join(parts)


def _format_ics_utc(value: datetime) -> str:
    return value.astimezone(ZoneInfo("UTC")).strftime("%Y%m%dT%H%M%SZ")


def build_event_ics(
    *, event: CommunityEvent, url: str, host: str, now: datetime | None = None
) -> str:
    """Return an iCalendar file (RFC 5545) with the event as one VEVENT.

    The UID stays the same across downloads, so calendars update the entry
    instead of adding a second one; a cancelled event is sent with
    STATUS:CANCELLED for the same reason.
    """
    location = event.location or event.join_url
    description = event.description
    if event.join_url:
        description = f"{description}\n\nJoin: {event.join_url}".strip()
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//RM6 Loyalty Hub//Community events//EN",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        "BEGIN:VEVENT",
        f"UID:event-{event.pk}@{host}",
        f"DTSTAMP:{_format_ics_utc(now or timezone.now())}",
        f"DTSTART:{_format_ics_utc(event.starts_at)}",
        f"DTEND:{_format_ics_utc(event.ends_at)}",
        f"SUMMARY:{_escape_ics_text(event.title)}",
        f"DESCRIPTION:{_escape_ics_text(description)}",
        f"URL:{url}",
        f"LOCATION:{_escape_ics_text(location)}",
        f"STATUS:{'CANCELLED' if event.cancelled_at else 'CONFIRMED'}",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return "".join(_fold_ics_line(line) + "\r\n" for line in lines)
