"""A per-source cap on the messages the Segment endpoint accepts per minute.

The module also contains the system checks of the ingestion limit settings.

Each source has a counter per clock minute in the shared cache (Redis), so
every web process counts against the same total. A request that would go
over the cap is rejected whole and does not count. analytics-python 2.4
keeps a batch that got 429 with a Retry-After and sends it again after
that many seconds.
"""

import logging
import time
from dataclasses import dataclass

from django.conf import settings
from django.core import checks
from django.core.cache import cache

from apps.lifecycle.models import SegmentSource

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60
# analytics-python 2.4 sends up to 100 messages per request by default. Any
# cap below this warns at start-up, because a request larger than the cap
# gets 413, which Segment clients do not retry: its messages are lost.
SAFE_MINIMUM_CAP = 500


def _now() -> float:
    return time.time()


@dataclass(frozen=True)
class Rejection:
    """The reason for rejecting a request: the cap and the seconds until it resets."""

    limit: int
    retry_after: int
    is_too_large: bool


def take_allowance(source: SegmentSource, count: int) -> Rejection | None:
    """Count `count` messages against the source's minute, or return a Rejection.

    A cap of 0 turns the limit off. When the cache fails, the request is let
    through with a warning, because the limit only protects the database from
    one busy source, and losing usage would be worse.
    """
    limit = settings.RM6_SEGMENT_MESSAGES_PER_MINUTE
    if limit <= 0 or count <= 0:
        return None
    now = _now()
    window = int(now // WINDOW_SECONDS)
    retry_after = max(1, int((window + 1) * WINDOW_SECONDS - now + 0.999))
    if count > limit:
        return Rejection(limit=limit, retry_after=retry_after, is_too_large=True)

    # The digest, not the id, names the source: ids repeat across databases
    # that share one cache, as test databases do.
    key = f"segment:messages:{source.write_key_digest[:16]}:{window}"
    try:
        cache.add(key, 0, timeout=2 * WINDOW_SECONDS)
        total = cache.incr(key, count)
        if total <= limit:
            return None
        cache.decr(key, count)
    except Exception:  # Any cache failure: see the docstring.
        logger.warning(
            "segment rate limit not checked: the cache failed", exc_info=True
        )
        return None
    return Rejection(limit=limit, retry_after=retry_after, is_too_large=False)


def check_message_cap(**kwargs) -> list[checks.CheckMessage]:
    """Warn when RM6_SEGMENT_MESSAGES_PER_MINUTE could be below one request."""
    limit = settings.RM6_SEGMENT_MESSAGES_PER_MINUTE
    if limit <= 0 or limit >= SAFE_MINIMUM_CAP:
        return []
    return [
        checks.Warning(
            f"RM6_SEGMENT_MESSAGES_PER_MINUTE is {limit}. A Segment client's "
            "request can carry more messages than that, and such a request "
            "gets 413, which the client does not retry, so its usage is lost.",
            hint=f"Set it to {SAFE_MINIMUM_CAP} or more, or to 0 for no limit.",
            id="lifecycle.W001",
        )
    ]


def check_held_message_cap(**kwargs) -> list[checks.CheckMessage]:
    """Reject a negative RM6_SEGMENT_MAX_HELD_MESSAGES."""
    limit = settings.RM6_SEGMENT_MAX_HELD_MESSAGES
    if limit >= 0:
        return []
    return [
        checks.Error(
            f"RM6_SEGMENT_MAX_HELD_MESSAGES is {limit}, but it must be 0 or more. "
            "A negative value would read as no limit by mistake.",
            hint="Set it to the number of held messages each Segment source "
            "may keep, such as the default 100000. 0 turns the limit off, so "
            "anyone with a browser source's public write key could fill the "
            "database with held messages.",
            id="lifecycle.E001",
        )
    ]
