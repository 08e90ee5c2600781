"""Show times in the signed-in member's own time zone.

Sign-in stores the member's zone in the session, and the middleware
activates it for each request of that session, so pages and forms read and
write local times without a query per request. A change of zone on the
profile page updates the session at once; a change made by staff in admin
applies from the member's next sign-in.
"""

import zoneinfo
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from apps.membership.models import Member

SESSION_KEY = "member_time_zone"


def remember_time_zone(request: HttpRequest, member: Member) -> None:
    """Store the member's time zone in the request's session."""
    request.session[SESSION_KEY] = member.time_zone


class MemberTimeZoneMiddleware:
    """Activate the time zone stored in the session, or the default (UTC)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        name = request.session.get(SESSION_KEY) if hasattr(request, "session") else None
        zone = _load_zone(name) if name else None
        if zone is None:
            timezone.deactivate()
        else:
            timezone.activate(zone)
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()


def _load_zone(name: str) -> zoneinfo.ZoneInfo | None:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None
