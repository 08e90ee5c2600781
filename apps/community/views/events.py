from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from apps.community.models import CommunityEvent, Rsvp
from apps.community.selectors.events import (
    access_event,
    build_event_ics,
    get_event_times,
    get_member_rsvp,
    get_viewer_time_zone,
    list_event_rsvps,
    list_past_events,
    list_upcoming_events,
)
from apps.community.services.events import cancel_rsvp, mark_attendance, rsvp_to_event
from apps.membership.models import Member
from apps.membership.selectors import get_member_for_user
from rm6.errors import DomainError

PAST_EVENTS_SHOWN = 20


def _get_event_or_404(request: HttpRequest, *, pk: int, member: Member | None):
    try:
        return access_event(pk=pk, member=member, is_staff=request.user.is_staff)
    except CommunityEvent.DoesNotExist:
        raise Http404("Event not found.") from None


def _with_times(events, *, member: Member | None) -> list[dict]:
    return [
        {
            "event": event,
            "times": get_event_times(
                event=event,
                time_zone=get_viewer_time_zone(event=event, member=member),
            ),
        }
        for event in events
    ]


@require_GET
def event_list(request: HttpRequest) -> HttpResponse:
    """List upcoming events soonest first, then the latest past ones."""
    member = get_member_for_user(request.user)
    is_staff = request.user.is_staff
    upcoming = list_upcoming_events(member=member, is_staff=is_staff)
    past = list_past_events(member=member, is_staff=is_staff)[:PAST_EVENTS_SHOWN]
    context = {
        "upcoming": _with_times(upcoming, member=member),
        "past": _with_times(past, member=member),
        "member": member,
    }
    return render(request, "community/events/event_list.html", context)


def _render_event(
    request: HttpRequest, *, event: CommunityEvent, member: Member | None
) -> HttpResponse:
    viewer_zone = get_viewer_time_zone(event=event, member=member)
    context = {
        "event": event,
        "member": member,
        "rsvp": get_member_rsvp(event=event, member=member),
        "viewer_times": get_event_times(event=event, time_zone=viewer_zone),
        "host_times": get_event_times(event=event, time_zone=event.time_zone),
        "rsvps": list_event_rsvps(event=event) if request.user.is_staff else None,
    }
    template = (
        "community/events/_rsvp.html" if request.htmx else "community/events/event.html"
    )
    return render(request, template, context)


@require_GET
def event_detail(request: HttpRequest, pk: int) -> HttpResponse:
    member = get_member_for_user(request.user)
    event = _get_event_or_404(request, pk=pk, member=member)
    return _render_event(request, event=event, member=member)


def _require_member(request: HttpRequest) -> Member:
    member = get_member_for_user(request.user)
    if member is None:
        raise PermissionDenied("Only members can RSVP to events.")
    return member


@login_required
@require_POST
def event_rsvp(request: HttpRequest, pk: int) -> HttpResponse:
    """Put the member on the event, or on its waitlist when it is full."""
    member = _require_member(request)
    event = _get_event_or_404(request, pk=pk, member=member)

    try:
        rsvp = rsvp_to_event(event=event, member=member)
    except DomainError as error:
        messages.error(request, error.message)
    else:
        if rsvp.status == Rsvp.Status.GOING:
            messages.success(request, "You are going.")
        else:
            messages.info(request, "The event is full, so you are on the waitlist.")

    event.refresh_from_db()
    if request.htmx:
        return _render_event(request, event=event, member=member)
    return redirect("community:event", pk=event.pk)


@login_required
@require_POST
def event_rsvp_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    member = _require_member(request)
    event = _get_event_or_404(request, pk=pk, member=member)

    if cancel_rsvp(event=event, member=member) is not None:
        messages.success(request, "Your RSVP is cancelled.")

    event.refresh_from_db()
    if request.htmx:
        return _render_event(request, event=event, member=member)
    return redirect("community:event", pk=event.pk)


@require_GET
def event_ics(request: HttpRequest, pk: int) -> HttpResponse:
    """Return the event as an iCalendar file to add to a calendar."""
    member = get_member_for_user(request.user)
    event = _get_event_or_404(request, pk=pk, member=member)

    content = build_event_ics(
        event=event,
        url=request.build_absolute_uri(
            reverse("community:event", kwargs={"pk": event.pk})
        ),
        host=request.get_host().split(":")[0],
    )
    response = HttpResponse(content, content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="event-{event.pk}.ics"'
    return response


@login_required
@require_POST
def event_attendance(request: HttpRequest, pk: int) -> HttpResponse:
    """Mark one member as attended; staff only."""
    if not request.user.is_staff:
        raise PermissionDenied("Only staff mark attendance.")
    event = _get_event_or_404(request, pk=pk, member=None)
    try:
        attendee = Member.objects.get(pk=request.POST.get("member"))
    except (Member.DoesNotExist, ValueError):
        raise Http404("Member not found.") from None

    try:
        mark_attendance(event=event, member=attendee, marked_by=request.user)
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"{attendee.name} is marked as attended.")
    return redirect("community:event", pk=event.pk)
