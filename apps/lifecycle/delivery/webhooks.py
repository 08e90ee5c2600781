"""Outbound webhooks: signed JSON POSTs, retried with back-off, all logged.

Each WebhookDelivery row is one payload for one endpoint and the log of its
attempts. A worker sends a delivery only after claiming it. A claim moves
the delivery's `next_attempt_at` CLAIM_DURATION ahead, and the new value is
the claim's token. When a worker dies mid-attempt, the claim expires and the
retry task picks the delivery up again. Delivery is therefore at least once,
and receivers drop repeats by the X-RM6-Delivery header. docs/webhooks.md
describes the format for receivers.
"""

import hashlib
import hmac
import json
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import requests
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.lifecycle.actions import ActionContext, ActionResult, ActionSkipped
from apps.lifecycle.models import StepRun, WebhookDelivery, WebhookEndpoint
from rm6.errors import DomainError

logger = logging.getLogger(__name__)

# After the n-th failed attempt, the next waits RETRY_DELAYS[n - 1]. The
# MAX_ATTEMPTS-th failure marks the delivery failed, about 45 hours after
# the first attempt.
RETRY_DELAYS = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=6),
    timedelta(hours=12),
    timedelta(hours=24),
)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
# How long a worker may take over one claimed attempt before the retry task
# hands the delivery out again. Well above the request timeout.
CLAIM_DURATION = timedelta(minutes=5)
REQUEST_TIMEOUT_SECONDS = 10
# Receivers reject signatures older than this, which bounds replays.
SIGNATURE_TOLERANCE_SECONDS = 300
RESPONSE_EXCERPT_LENGTH = 500
RETRY_BATCH_SIZE = 500
# One call queues at most this many deliveries, which bounds its time while
# it still sends bursts of subscribed events: 10,000 per event sweep.
MAX_QUEUED_PER_CALL = 10_000
DEFAULT_EVENT_KIND = "play.step"
USER_AGENT = "RM6-Loyalty-Hub-Webhooks/1"


@dataclass(frozen=True)
class AttemptResult:
    """The outcome of one POST: the HTTP status, if any, and what failed."""

    status_code: int | None
    error: str = ""

    @property
    def is_success(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def generate_webhook_secret() -> str:
    """Return a new random signing secret for an endpoint."""
    return "whsec_" + secrets.token_urlsafe(32)


def rotate_webhook_secret(*, endpoint: WebhookEndpoint) -> str:
    """Give the endpoint a new signing secret and return it.

    Deliveries sent from now on are signed with the new secret only, so the
    receiver needs it before its next delivery.
    """
    endpoint.secret = generate_webhook_secret()
    endpoint.save(update_fields=["secret"])
    logger.info("webhook secret rotated: endpoint %s", endpoint.pk)
    return endpoint.secret


def encode_payload(payload: dict) -> bytes:
    """Return the request body for a payload: compact JSON with sorted keys."""
    text = json.dumps(
        payload, cls=DjangoJSONEncoder, sort_keys=True, separators=(",", ":")
    )
    return text.encode()


def compute_signature(secret: str, timestamp: str, body: bytes | str) -> str:
    """Return the X-RM6-Signature value for a timestamp and a request body.

    The signature is "sha256=" and the hex HMAC-SHA256, keyed with the
    secret, of the timestamp, a dot and the body bytes.
    """
    if isinstance(body, str):
        body = body.encode()
    signed = timestamp.encode() + b"." + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return "sha256=" + digest


def verify_signature(
    secret: str,
    timestamp: str,
    body: bytes | str,
    signature: str,
    *,
    tolerance_seconds: int = SIGNATURE_TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """Return whether a received webhook is authentic and recent.

    `timestamp` and `signature` are the X-RM6-Timestamp and X-RM6-Signature
    headers, and `body` is the raw request body. A timestamp more than
    `tolerance_seconds` away from `now` (Unix seconds, default the clock)
    fails, so a captured request cannot be replayed later.
    """
    try:
        sent_at = int(timestamp)
    except (TypeError, ValueError):
        return False
    now = time.time() if now is None else now
    if abs(now - sent_at) > tolerance_seconds:
        return False
    if not isinstance(signature, str):
        return False
    expected = compute_signature(secret, timestamp, body)
    # Compare bytes, because compare_digest raises TypeError on a non-ASCII
    # str, and the signature header is untrusted input.
    return hmac.compare_digest(expected.encode(), signature.encode())


def get_retry_delay(attempts: int) -> timedelta | None:
    """Return the wait after `attempts` failed attempts, or None to give up."""
    if attempts >= MAX_ATTEMPTS:
        return None
    return RETRY_DELAYS[attempts - 1]


def _schedule_delivery(delivery_id: int, claimed_until: datetime) -> None:
    from apps.lifecycle.tasks import deliver_webhook_task

    try:
        deliver_webhook_task.delay(
            delivery_id=delivery_id, claimed_until=claimed_until.isoformat()
        )
    except Exception:
        # The claim expires and the retry task sends the delivery instead.
        logger.exception("webhook delivery not queued: delivery %s", delivery_id)


@transaction.atomic
def create_webhook_delivery(
    *,
    endpoint: WebhookEndpoint,
    delivery_key: str,
    event_kind: str,
    payload: dict,
    step_run: StepRun | None = None,
) -> tuple[WebhookDelivery, bool]:
    """Create a delivery and queue its first attempt after commit.

    Return the delivery and whether it is new. A delivery key seen before
    returns the existing delivery and queues nothing.
    """
    claimed_until = timezone.now() + CLAIM_DURATION
    delivery, created = WebhookDelivery.objects.get_or_create(
        delivery_key=delivery_key,
        defaults={
            "endpoint": endpoint,
            "step_run": step_run,
            "event_kind": event_kind,
            "payload": payload,
            # Claimed from the start for the queued task. If the task is
            # lost, the claim expires and the retry task sends it.
            "next_attempt_at": claimed_until,
        },
    )
    if created:
        transaction.on_commit(lambda: _schedule_delivery(delivery.pk, claimed_until))
    return delivery, created


def describe_member(member) -> dict | None:
    if member is None:
        return None
    return {
        "id": member.pk,
        "email": member.email,
        "name": member.name,
        "external_id": member.external_id,
    }


def describe_account(account) -> dict | None:
    if account is None:
        return None
    return {"id": account.pk, "name": account.name, "external_id": account.external_id}


def erase_member_from_webhook_payloads(*, member) -> int:
    """Replace an anonymised member's details in stored webhook payloads.

    Payloads copy the member's name, email and external ID when they are
    created. Without this, pending deliveries would keep sending them after
    the member deleted their account, and the delivery log would keep them.
    Returns how many deliveries changed.
    """
    # NOTE: the payload has no index, so this reads every delivery row. An
    # event sweep that read the member before this transaction commits can
    # still insert a delivery with the old details.
    deliveries = list(
        WebhookDelivery.objects.select_for_update().filter(
            payload__member__id=member.pk
        )
    )
    for delivery in deliveries:
        delivery.payload["member"] = describe_member(member)
    WebhookDelivery.objects.bulk_update(deliveries, ["payload"], batch_size=500)
    return len(deliveries)


def build_step_payload(ctx: ActionContext, *, event_kind: str) -> dict:
    """Return the payload a play's webhook step sends."""
    play, step, enrolment = ctx.play, ctx.step, ctx.enrolment
    account = ctx.account
    if account is None and ctx.member is not None:
        account = ctx.member.account
    return {
        "event": event_kind,
        "delivery_key": f"step_run:{ctx.step_run.pk}",
        "occurred_at": timezone.now().isoformat(),
        "play_id": play.play_id,
        "campaign_id": play.campaign_id,
        "play_name": play.name,
        "step": {"position": step.position, "action": step.action},
        "enrolment": {"id": enrolment.pk, "occurrence_key": enrolment.occurrence_key},
        "subject": enrolment.subject_key,
        "member": describe_member(ctx.member),
        "account": describe_account(account),
        "data": step.config.get("data") or {},
    }


@transaction.atomic
def send_play_webhook(ctx: ActionContext) -> ActionResult:
    """Create the webhook delivery of a play step and queue it.

    The config's `endpoint_id` names the endpoint, `event_kind` the event
    (default "play.step"), and `data` a mapping sent as is. A second call
    for the same step run returns the delivery of the first.
    """
    step = ctx.step
    endpoint_id = step.config.get("endpoint_id")
    endpoint = None
    if isinstance(endpoint_id, int) and not isinstance(endpoint_id, bool):
        endpoint = WebhookEndpoint.objects.filter(pk=endpoint_id).first()
    if endpoint is None:
        raise DomainError(
            f"The webhook step at position {step.position} of play "
            f"{ctx.play.play_id!r} names endpoint_id {endpoint_id!r}, which is "
            "not an existing webhook endpoint. Set it to the id of one in admin.",
            field="endpoint_id",
            code="invalid_step_config",
        )
    if not endpoint.is_active:
        raise ActionSkipped(f"webhook endpoint {endpoint.name!r} is inactive")

    event_kind = step.config.get("event_kind") or DEFAULT_EVENT_KIND
    delivery, created = create_webhook_delivery(
        endpoint=endpoint,
        delivery_key=f"step_run:{ctx.step_run.pk}",
        event_kind=event_kind,
        payload=build_step_payload(ctx, event_kind=event_kind),
        step_run=ctx.step_run,
    )

    outcome = "webhook queued" if created else "webhook already queued"
    return ActionResult(outcome=outcome, details={"webhook_delivery_id": delivery.pk})


def _due_deliveries(now: datetime):
    return WebhookDelivery.objects.filter(
        Q(next_attempt_at__lte=now) | Q(next_attempt_at__isnull=True),
        status=WebhookDelivery.Status.PENDING,
    )


def claim_due_webhook_deliveries(
    *, now: datetime | None = None, limit: int = RETRY_BATCH_SIZE
) -> tuple[list[int], datetime]:
    """Claim up to `limit` pending deliveries that are due.

    Return their ids and the claim token. Rows that another transaction has
    locked are skipped, not waited for.
    """
    now = now or timezone.now()
    claimed_until = now + CLAIM_DURATION
    with transaction.atomic():
        delivery_ids = list(
            _due_deliveries(now)
            .select_for_update(skip_locked=True)
            .order_by("next_attempt_at")
            .values_list("pk", flat=True)[:limit]
        )
        WebhookDelivery.objects.filter(pk__in=delivery_ids).update(
            next_attempt_at=claimed_until
        )
    return delivery_ids, claimed_until


def queue_due_webhook_deliveries(*, now: datetime | None = None) -> int:
    """Claim the due deliveries and queue one task each; return how many.

    Claims go in batches of RETRY_BATCH_SIZE, each committed before its
    tasks are queued, until none is left or MAX_QUEUED_PER_CALL are queued.
    The rest waits for the next call, every 15 s from the event sweep and
    every minute from the retry task.
    """
    queued = 0
    while queued < MAX_QUEUED_PER_CALL:
        delivery_ids, claimed_until = claim_due_webhook_deliveries(
            now=now, limit=min(RETRY_BATCH_SIZE, MAX_QUEUED_PER_CALL - queued)
        )
        for delivery_id in delivery_ids:
            _schedule_delivery(delivery_id, claimed_until)
        queued += len(delivery_ids)
        if len(delivery_ids) < RETRY_BATCH_SIZE:
            break
    return queued


@transaction.atomic
def retry_webhook_deliveries(*, delivery_ids: list[int]) -> int:
    """Queue an attempt now for each pending or failed delivery given.

    A failed delivery gets one more attempt; when that fails too it is
    marked failed again. Delivered ones are left alone. Return how many
    were queued.
    """
    claimed_until = timezone.now() + CLAIM_DURATION
    retried_ids = list(
        WebhookDelivery.objects.select_for_update()
        .filter(pk__in=delivery_ids)
        .exclude(status=WebhookDelivery.Status.DELIVERED)
        .values_list("pk", flat=True)
    )
    WebhookDelivery.objects.filter(pk__in=retried_ids).update(
        status=WebhookDelivery.Status.PENDING, next_attempt_at=claimed_until
    )
    for delivery_id in retried_ids:
        transaction.on_commit(
            lambda delivery_id=delivery_id: _schedule_delivery(
                delivery_id, claimed_until
            )
        )
    return len(retried_ids)


def _claim_delivery(delivery_id: int, now: datetime) -> datetime | None:
    claimed_until = now + CLAIM_DURATION
    claimed = (
        _due_deliveries(now)
        .filter(pk=delivery_id)
        .update(next_attempt_at=claimed_until)
    )
    return claimed_until if claimed else None


def post_webhook(delivery: WebhookDelivery) -> AttemptResult:
    """POST a delivery's payload, signed, to its endpoint, and return the outcome.

    Redirects are not followed, because a client following a 301 or 302
    would resend the POST as a GET without the body.
    """
    body = encode_payload(delivery.payload)
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-RM6-Delivery": delivery.delivery_key,
        "X-RM6-Event": delivery.event_kind,
        "X-RM6-Timestamp": timestamp,
        "X-RM6-Signature": compute_signature(delivery.endpoint.secret, timestamp, body),
    }
    try:
        response = requests.post(
            delivery.endpoint.url,
            data=body,
            headers=headers,
            timeout=REQUEST_TIMEOUT_SECONDS,
            allow_redirects=False,
            stream=True,
        )
    except requests.Timeout:
        return AttemptResult(None, f"timed out after {REQUEST_TIMEOUT_SECONDS} s")
    except requests.RequestException as error:
        return AttemptResult(None, f"request failed: {error}")

    with response:
        if 200 <= response.status_code < 300:
            return AttemptResult(response.status_code)
        if response.is_redirect:
            location = response.headers.get("Location", "")
            return AttemptResult(
                response.status_code,
                f"HTTP {response.status_code} redirect to {location!r}; redirects "
                "are not followed, so set the endpoint URL to the final address",
            )
        try:
            excerpt = response.raw.read(RESPONSE_EXCERPT_LENGTH, decode_content=True)
        except (requests.RequestException, OSError, ValueError):
            excerpt = b""
    text = excerpt.decode(errors="replace").strip()
    return AttemptResult(response.status_code, f"HTTP {response.status_code}: {text}")


@transaction.atomic
def record_webhook_attempt(
    *,
    delivery_id: int,
    claimed_until: datetime,
    result: AttemptResult,
    now: datetime | None = None,
) -> WebhookDelivery | None:
    """Record an attempt's outcome and schedule the next one after a failure.

    Return None, recording nothing, when the claim expired in the meantime
    and another worker has claimed the delivery since.
    """
    now = now or timezone.now()
    delivery = (
        WebhookDelivery.objects.select_for_update()
        .filter(
            pk=delivery_id,
            status=WebhookDelivery.Status.PENDING,
            next_attempt_at=claimed_until,
        )
        .first()
    )
    if delivery is None:
        logger.warning(
            "webhook attempt not recorded, claim expired: delivery %s", delivery_id
        )
        return None

    # The row lock makes this read-add-save safe.
    delivery.attempts += 1
    delivery.last_status_code = result.status_code
    delivery.last_error = result.error
    if result.is_success:
        delivery.status = WebhookDelivery.Status.DELIVERED
        delivery.delivered_at = now
        delivery.next_attempt_at = None
    elif (delay := get_retry_delay(delivery.attempts)) is None:
        delivery.status = WebhookDelivery.Status.FAILED
        delivery.next_attempt_at = None
    else:
        delivery.next_attempt_at = now + delay
    delivery.save(
        update_fields=[
            "attempts",
            "last_status_code",
            "last_error",
            "status",
            "delivered_at",
            "next_attempt_at",
        ]
    )
    return delivery


def _fail_for_inactive_endpoint(delivery: WebhookDelivery, claimed_until) -> None:
    WebhookDelivery.objects.filter(
        pk=delivery.pk, next_attempt_at=claimed_until
    ).update(
        status=WebhookDelivery.Status.FAILED,
        next_attempt_at=None,
        last_error=f"Endpoint {delivery.endpoint.name!r} is inactive, so "
        "nothing was sent. Activate it, then use Retry now.",
    )


def deliver_webhook(
    *,
    delivery_id: int,
    claimed_until: datetime | None = None,
    now: datetime | None = None,
) -> WebhookDelivery | None:
    """Make one attempt at a delivery, claiming it first if no claim is given.

    Return the updated delivery, or None when it is gone, delivered, not
    due, or claimed by another worker.
    """
    now = now or timezone.now()
    if claimed_until is None:
        claimed_until = _claim_delivery(delivery_id, now)
        if claimed_until is None:
            return None
    delivery = (
        WebhookDelivery.objects.select_related("endpoint")
        .filter(
            pk=delivery_id,
            status=WebhookDelivery.Status.PENDING,
            next_attempt_at=claimed_until,
        )
        .first()
    )
    if delivery is None:
        return None
    if not delivery.endpoint.is_active:
        _fail_for_inactive_endpoint(delivery, claimed_until)
        logger.info("webhook not sent, endpoint inactive: delivery %s", delivery_id)
        return None

    result = post_webhook(delivery)

    delivery = record_webhook_attempt(
        delivery_id=delivery_id, claimed_until=claimed_until, result=result, now=now
    )
    if delivery is not None and not result.is_success:
        logger.warning(
            "webhook attempt failed: delivery %s, attempt %s, status %s",
            delivery_id,
            delivery.attempts,
            delivery.status,
        )
    return delivery
