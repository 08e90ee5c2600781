"""Segment sources: creating and changing them, and rotating their write keys.

A source's event prefix must be a kind family registered for integrations,
or lie under one, because the kind of every event the source records starts
with it.
"""

import logging
import re

from django.db import transaction

from apps.lifecycle.ingestion.auth import (
    WRITE_KEY_PREFIX_LENGTH,
    generate_write_key,
    hash_write_key,
)
from apps.lifecycle.ingestion.messages import (
    is_integration_prefix,
    list_integration_families,
)
from apps.lifecycle.models import SegmentSource
from rm6.errors import DomainError

logger = logging.getLogger(__name__)

EVENT_PREFIX_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")
MAX_EVENT_PREFIX_LENGTH = 50


def check_event_prefix(event_prefix: str) -> None:
    """Raise DomainError unless events under the prefix can be recorded.

    The prefix must be `product`, or another kind family registered for
    integrations such as `product.*`, or lie under one.
    """
    if len(event_prefix) > MAX_EVENT_PREFIX_LENGTH or not EVENT_PREFIX_PATTERN.match(
        event_prefix
    ):
        raise DomainError(
            f"{event_prefix!r} is not a valid event prefix. Use at most "
            f"{MAX_EVENT_PREFIX_LENGTH} characters of lower-case words separated "
            "by dots, for example product or product.web.",
            field="event_prefix",
        )
    families = list_integration_families()
    if not is_integration_prefix(event_prefix, families):
        names = ", ".join(f"{family}.*" for family in families)
        raise DomainError(
            f"No kind family registered for integrations covers {event_prefix!r}, "
            "so every tracked event would be rejected. Use a prefix under one "
            f"of: {names}.",
            field="event_prefix",
            code="unknown_kind",
        )


@transaction.atomic
def create_segment_source(
    *,
    name: str,
    event_prefix: str = "product",
    is_active: bool = True,
    links_identities: bool = False,
) -> tuple[SegmentSource, str]:
    """Create a source and return it with its write key.

    Only the key's digest is stored, so the returned key is the only copy.
    """
    check_event_prefix(event_prefix)
    write_key = generate_write_key()

    source = SegmentSource.objects.create(
        name=name,
        event_prefix=event_prefix,
        is_active=is_active,
        links_identities=links_identities,
        write_key_digest=hash_write_key(write_key),
        write_key_prefix=write_key[:WRITE_KEY_PREFIX_LENGTH],
    )

    logger.info("segment source created: source=%s", source.pk)
    return source, write_key


@transaction.atomic
def update_segment_source(
    *,
    source: SegmentSource,
    name: str,
    event_prefix: str,
    is_active: bool,
    links_identities: bool,
) -> SegmentSource:
    """Change a source's name, event prefix, active flag or identity linking."""
    check_event_prefix(event_prefix)

    source.name = name
    source.event_prefix = event_prefix
    source.is_active = is_active
    source.links_identities = links_identities
    source.save(update_fields=["name", "event_prefix", "is_active", "links_identities"])

    logger.info(
        "segment source updated: source=%s active=%s links_identities=%s",
        source.pk,
        is_active,
        links_identities,
    )
    return source


@transaction.atomic
def rotate_segment_write_key(*, source: SegmentSource) -> str:
    """Give a source a new write key and return it. The old key stops working."""
    write_key = generate_write_key()

    source.write_key_digest = hash_write_key(write_key)
    source.write_key_prefix = write_key[:WRITE_KEY_PREFIX_LENGTH]
    source.save(update_fields=["write_key_digest", "write_key_prefix"])

    logger.info("segment write key rotated: source=%s", source.pk)
    return write_key
