"""Visit attribution: the campaign ID, play ID and UTM parameters of a visit.

The first request of a visit whose query string carries any of `PARAMETERS`
stores the valid values in the session. The session outlives redirects,
sign-up, sign-in and email confirmation in the same browser, because Django's
`login()` cycles the session key but keeps its data. Signing in as a different
user than the one already signed in flushes the session, and so ends the
attribution too, as does signing out.

A visit ends after `VISIT_TIMEOUT_SECONDS` without a request. The next request
with parameters then starts a new attribution, while parameters arriving
during an attributed visit are ignored: the first touch of a visit wins.

While a request runs, `current_attribution()` returns its visit's values, and
`record_activity` uses them for events recorded without explicit attribution
of the signed-in user's own member. An event that the request records for
another member, such as the author of a reply the visitor accepts, gets none,
because it does not come from that member's visit.
"""

import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar

from django.conf import settings
from django.http import HttpRequest, HttpResponse

# The query parameters, named like the ActivityEvent fields they fill.
PARAMETERS = (
    "campaign_id",
    "play_id",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
)
MAX_VALUE_LENGTH = 100
SESSION_KEY = "lifecycle_attribution"
VISIT_TIMEOUT_SECONDS = 30 * 60
# An attributed visit rewrites its last-seen time at most once a minute, so it
# costs one session write a minute instead of one a request. A visit may
# therefore end up to a minute before 30 minutes of inactivity have passed.
LAST_SEEN_INTERVAL_SECONDS = 60
CAPTURING_METHODS = ("GET", "HEAD")

_current: ContextVar[dict[str, str] | None] = ContextVar(
    "lifecycle_attribution", default=None
)
_current_request: ContextVar[HttpRequest | None] = ContextVar(
    "lifecycle_attribution_request", default=None
)


def current_attribution() -> dict[str, str]:
    """Return the attribution of the visit whose request is running, or {}.

    Outside a request, in workers and management commands, it is always empty.
    """
    return dict(_current.get() or {})


def current_attribution_for(*, user_id: int | None) -> dict[str, str]:
    """Return the running visit's attribution for an event of `user_id`'s member.

    Inside a request, that is the visit's attribution when `user_id` is the
    signed-in user, and {} for anyone else.
    """
    request = _current_request.get()
    if request is not None:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated or user.pk != user_id:
            return {}
    return current_attribution()


def clean_attribution(values: Mapping) -> dict[str, str]:
    """Return the valid attribution values among `values`, dropping the others.

    A valid value is a string of at most 100 characters, after stripping
    surrounding whitespace, with no control or other non-printable characters.
    """
    cleaned = {}
    for name in PARAMETERS:
        value = values.get(name)
        if not isinstance(value, str):
            continue
        value = value.strip()
        if value and len(value) <= MAX_VALUE_LENGTH and value.isprintable():
            cleaned[name] = value
    return cleaned


def update_visit_attribution(
    session, query: Mapping, *, now: float, can_capture: bool = True
) -> dict[str, str]:
    """Expire, refresh or capture the visit's attribution in `session`.

    `now` is a Unix time in seconds. Return the attribution that applies to
    the request: the stored one, the one just captured from `query`, or {}.
    """
    stored = _read_stored(session)
    if stored is not None and now - stored["last_seen"] > VISIT_TIMEOUT_SECONDS:
        del session[SESSION_KEY]
        stored = None

    if stored is not None:
        if now - stored["last_seen"] >= LAST_SEEN_INTERVAL_SECONDS:
            session[SESSION_KEY] = {**stored, "last_seen": now}
        return dict(stored["values"])

    values = clean_attribution(query) if can_capture else {}
    if values:
        session[SESSION_KEY] = {"values": values, "last_seen": now}
    return values


def _read_stored(session) -> dict | None:
    stored = session.get(SESSION_KEY)
    if (
        isinstance(stored, dict)
        and isinstance(stored.get("values"), dict)
        and isinstance(stored.get("last_seen"), int | float)
    ):
        return stored
    if stored is not None:
        # A value this module did not write, for example from an older format.
        del session[SESSION_KEY]
    return None


class AttributionMiddleware:
    """Keep each visit's attribution in the session and expose it per request.

    It must come after SessionMiddleware. Only GET and HEAD requests capture
    parameters, since links from emails, ads and notifications are GETs.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = _current.set(self._visit_attribution(request))
        request_token = _current_request.set(request)
        try:
            return self.get_response(request)
        finally:
            _current_request.reset(request_token)
            _current.reset(token)

    def _visit_attribution(self, request: HttpRequest) -> dict[str, str]:
        session = getattr(request, "session", None)
        if session is None:
            return {}
        can_capture = request.method in CAPTURING_METHODS
        has_parameters = can_capture and any(name in request.GET for name in PARAMETERS)
        # Without a session cookie there is no stored attribution to read, and
        # reading the session would add "Vary: Cookie" to the response.
        if not has_parameters and settings.SESSION_COOKIE_NAME not in request.COOKIES:
            return {}
        return update_visit_attribution(
            session, request.GET, now=time.time(), can_capture=can_capture
        )
