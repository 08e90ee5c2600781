"""Deliver activity events to the webhook endpoints subscribed to their kinds.

An endpoint lists the event kinds it receives, exactly (`community.reply_posted`)
or by prefix (`community.*`). A beat task sweeps the events recorded since its
previous run, as the play trigger sweep does, and creates one delivery per
event and endpoint. The delivery key names both, and it is unique, so a sweep
that reads an event twice creates nothing new. The deliveries are then sent
and retried like those of play steps (see apps.lifecycle.delivery.webhooks).
"""

import logging
from datetime import datetime, timedelta

from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from apps.lifecycle import attribution, registry
from apps.lifecycle.delivery.webhooks import (
    describe_account,
    describe_member,
    queue_due_webhook_deliveries,
)
from apps.lifecycle.horizon import read_commit_horizon
from apps.lifecycle.models import ActivityEvent, WebhookDelivery, WebhookEndpoint

logger = logging.getLogger(__name__)

# Without a stored position (a new deployment, a flushed cache), the sweep
# reads the events recorded in this window.
SWEEP_WINDOW = timedelta(minutes=30)
SWEEP_BATCH_SIZE = 1000
SWEPT_UNTIL_KEY = "lifecycle:webhooks:events-swept-until"
# The key of the advisory lock under which a sweep creates deliveries.
DELIVERY_LOCK_KEY = 0x726D_365F_7768_6576


def get_event_kind_error(name: str) -> str | None:
    """Return why an endpoint cannot subscribe to `name`, or None if it can."""
    if name.endswith(".*"):
        prefix = name[:-1]
        if any(kind.name.startswith(prefix) for kind in registry.list_kinds()):
            return None
        # A prefix under a registered family, such as product.mobile.* under
        # product.*, names kinds that a Segment source's prefix may record.
        if registry.get_kind(prefix + "x") is not None:
            return None
    elif registry.get_kind(name) is not None:
        return None
    return (
        f"{name!r} is not a registered event kind or prefix. Use a kind such "
        "as community.reply_posted, or a prefix such as community.*."
    )


def is_event_kind_subscribed(patterns: list[str], kind: str) -> bool:
    """Return whether a kind matches an endpoint's kinds or prefixes."""
    return any(
        kind == pattern or (pattern.endswith(".*") and kind.startswith(pattern[:-1]))
        for pattern in patterns
    )


def _kind_filter(patterns: set[str]) -> Q:
    condition = Q(pk__in=[])
    for pattern in sorted(patterns):
        if pattern.endswith(".*"):
            condition |= Q(kind__startswith=pattern[:-1])
        else:
            condition |= Q(kind=pattern)
    return condition


def get_event_delivery_key(*, event_id: int, endpoint_id: int) -> str:
    return f"event:{event_id}:endpoint:{endpoint_id}"


def build_event_payload(event: ActivityEvent, *, delivery_key: str) -> dict:
    """Return the payload that delivers one activity event."""
    subject = None
    if event.subject_type_id is not None:
        subject_type = event.subject_type
        subject = {
            "type": f"{subject_type.app_label}.{subject_type.model}",
            "id": event.subject_id,
        }
    return {
        "event": event.kind,
        "delivery_key": delivery_key,
        "event_id": event.pk,
        "occurred_at": event.occurred_at.isoformat(),
        "recorded_at": event.recorded_at.isoformat(),
        "member": describe_member(event.member),
        "account": describe_account(event.account),
        "subject": subject,
        "properties": event.properties,
        "attribution": {name: getattr(event, name) for name in attribution.PARAMETERS},
    }


def _create_deliveries(
    events: list[ActivityEvent], endpoints: list[WebhookEndpoint], now: datetime
) -> int:
    """Create the missing deliveries of these events; return how many are new."""
    deliveries = {}
    for event in events:
        for endpoint in endpoints:
            # An endpoint receives only events recorded after it was set up.
            if event.recorded_at < endpoint.created_at:
                continue
            if not is_event_kind_subscribed(endpoint.event_kinds, event.kind):
                continue
            key = get_event_delivery_key(event_id=event.pk, endpoint_id=endpoint.pk)
            deliveries[key] = WebhookDelivery(
                endpoint=endpoint,
                delivery_key=key,
                event_kind=event.kind,
                payload=build_event_payload(event, delivery_key=key),
                next_attempt_at=now,
            )
    # Concurrent sweeps read the same events. The lock makes them look up and
    # insert one after the other, so each counts only the rows it created.
    # The unique key would keep one row anyway.
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [DELIVERY_LOCK_KEY])
        existing = set(
            WebhookDelivery.objects.filter(
                delivery_key__in=list(deliveries)
            ).values_list("delivery_key", flat=True)
        )
        new = [delivery for key, delivery in deliveries.items() if key not in existing]
        WebhookDelivery.objects.bulk_create(new, ignore_conflicts=True)
    return len(new)


def sweep_event_webhooks(*, now: datetime | None = None) -> int:
    """Queue a delivery of each new event to each endpoint subscribed to its kind.

    Reads the events recorded since the previous sweep's commit horizon (see
    apps.lifecycle.horizon), so an event whose transaction commits late is
    still read once it is visible. Returns how many deliveries were created.
    They are due at once and sent by this call, through the queue that sends
    and retries every webhook delivery.
    """
    now = now or timezone.now()
    swept_until = cache.get(SWEPT_UNTIL_KEY) or now - SWEEP_WINDOW
    horizon = read_commit_horizon()
    endpoints = list(
        WebhookEndpoint.objects.filter(is_active=True).exclude(event_kinds=[])
    )
    created = 0
    if endpoints:
        patterns = {name for endpoint in endpoints for name in endpoint.event_kinds}
        since = max(swept_until, min(endpoint.created_at for endpoint in endpoints))
        events = (
            ActivityEvent.objects.filter(_kind_filter(patterns), recorded_at__gte=since)
            .select_related("member__user", "account", "subject_type")
            .order_by("pk")
        )
        last_id = 0
        while batch := list(events.filter(pk__gt=last_id)[:SWEEP_BATCH_SIZE]):
            created += _create_deliveries(batch, endpoints, now)
            last_id = batch[-1].pk
    cache.set(SWEPT_UNTIL_KEY, horizon, timeout=None)

    if created:
        logger.info("event webhook sweep created %d delivery(ies)", created)
        queue_due_webhook_deliveries(now=now)
    return created
