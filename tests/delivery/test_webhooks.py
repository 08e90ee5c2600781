import socket
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.db import connection, transaction

from apps.lifecycle.actions import ActionSkipped
from apps.lifecycle.delivery import webhooks
from apps.lifecycle.delivery.webhooks import (
    MAX_ATTEMPTS,
    AttemptResult,
    claim_due_webhook_deliveries,
    compute_signature,
    deliver_webhook,
    encode_payload,
    get_retry_delay,
    record_webhook_attempt,
    retry_webhook_deliveries,
    send_play_webhook,
    verify_signature,
)
from apps.lifecycle.models import WebhookDelivery, WebhookEndpoint
from apps.lifecycle.tasks import deliver_webhook_task, retry_webhooks_task
from rm6.errors import DomainError
from tests.delivery.conftest import WEBHOOK_SECRET
from tests.delivery.receiver import is_authentic

NOW = datetime(2025, 6, 2, 9, 0, tzinfo=UTC)
PAYLOAD = {"event": "play.step", "play_id": "welcome-2025"}


def make_delivery(endpoint, *, key="test:1", next_attempt_at=NOW, **fields):
    return WebhookDelivery.objects.create(
        endpoint=endpoint,
        delivery_key=key,
        event_kind="play.step",
        payload=PAYLOAD,
        next_attempt_at=next_attempt_at,
        **fields,
    )


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hooks"


def test_signature_matches_documented_example():
    body = b'{"event":"play.step","play_id":"welcome-2025"}'

    signature = compute_signature("whsec_example", "1700000000", body)

    assert signature == (
        "sha256=28497959e4571ba5a7bf3e05cae534b7164bacd868401a1d74241f610f3b0ffc"
    )


def test_signature_verifies_with_documented_recipe():
    body = encode_payload(PAYLOAD)
    timestamp = str(int(time.time()))
    headers = {
        "X-RM6-Timestamp": timestamp,
        "X-RM6-Signature": compute_signature(WEBHOOK_SECRET, timestamp, body),
    }

    assert is_authentic(WEBHOOK_SECRET, headers, body)


def test_encode_payload_is_compact_and_sorted():
    assert encode_payload({"b": 1, "a": [1, 2]}) == b'{"a":[1,2],"b":1}'


@pytest.mark.parametrize(
    ("secret", "timestamp", "body", "now", "expected"),
    [
        ("whsec_example", "1700000000", "BODY", 1700000010, True),
        ("whsec_other", "1700000000", "BODY", 1700000010, False),
        ("whsec_example", "1700000000", "BODY changed", 1700000010, False),
        ("whsec_example", "1700000000", "BODY", 1700000301, False),
        ("whsec_example", "1700000000", "BODY", 1699999699, False),
        ("whsec_example", "soon", "BODY", 1700000010, False),
    ],
    ids=["valid", "wrong-secret", "changed-body", "too-old", "too-new", "bad-time"],
)
def test_verify_signature(secret, timestamp, body, now, expected):
    signature = compute_signature("whsec_example", "1700000000", "BODY")

    assert verify_signature(secret, timestamp, body, signature, now=now) is expected


@pytest.mark.parametrize(
    "signature", ["sha256=ü", "sha256=\u00e9" * 40, None], ids=["short", "long", "none"]
)
def test_verify_signature_rejects_non_ascii(signature):
    is_valid = verify_signature(
        "whsec_example", "1700000000", "BODY", signature, now=1700000010
    )

    assert is_valid is False


def test_documented_recipe_rejects_non_ascii_signature():
    timestamp = str(int(time.time()))
    headers = {"X-RM6-Timestamp": timestamp, "X-RM6-Signature": "sha256=ü"}

    assert not is_authentic(WEBHOOK_SECRET, headers, b"BODY")


@pytest.mark.parametrize(
    ("attempts", "delay"),
    [
        (1, timedelta(minutes=1)),
        (2, timedelta(minutes=5)),
        (3, timedelta(minutes=30)),
        (4, timedelta(hours=2)),
        (5, timedelta(hours=6)),
        (6, timedelta(hours=12)),
        (7, timedelta(hours=24)),
        (8, None),
    ],
)
def test_retry_delay_schedule(attempts, delay):
    assert get_retry_delay(attempts) == delay


def test_max_attempts_is_eight():
    assert MAX_ATTEMPTS == 8


@pytest.mark.parametrize(
    ("previous_attempts", "next_attempt_at"),
    [
        (0, NOW + timedelta(minutes=1)),
        (1, NOW + timedelta(minutes=5)),
        (3, NOW + timedelta(hours=2)),
        (6, NOW + timedelta(hours=24)),
    ],
)
def test_record_failure_schedules_back_off(
    endpoint, previous_attempts, next_attempt_at
):
    delivery = make_delivery(endpoint, attempts=previous_attempts)

    recorded = record_webhook_attempt(
        delivery_id=delivery.pk,
        claimed_until=NOW,
        result=AttemptResult(503, "HTTP 503: busy"),
        now=NOW,
    )

    assert recorded.status == WebhookDelivery.Status.PENDING
    assert recorded.attempts == previous_attempts + 1
    assert recorded.next_attempt_at == next_attempt_at
    assert recorded.last_status_code == 503
    assert recorded.last_error == "HTTP 503: busy"


def test_record_failure_gives_up(endpoint):
    delivery = make_delivery(endpoint, attempts=MAX_ATTEMPTS - 1)

    record_webhook_attempt(
        delivery_id=delivery.pk,
        claimed_until=NOW,
        result=AttemptResult(None, "timed out after 10 s"),
        now=NOW,
    )

    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.FAILED
    assert delivery.attempts == MAX_ATTEMPTS
    assert delivery.next_attempt_at is None
    assert delivery.last_error == "timed out after 10 s"


def test_record_with_expired_claim_changes_nothing(endpoint):
    delivery = make_delivery(endpoint, next_attempt_at=NOW + timedelta(minutes=5))

    recorded = record_webhook_attempt(
        delivery_id=delivery.pk,
        claimed_until=NOW,
        result=AttemptResult(200),
        now=NOW,
    )

    assert recorded is None
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.PENDING
    assert delivery.attempts == 0


def test_deliver_webhook_delivered_on_2xx(endpoint, webhook_receiver):
    webhook_receiver.status = 204
    webhook_receiver.response_body = b""
    delivery = make_delivery(endpoint, key="step_run:41")

    deliver_webhook(delivery_id=delivery.pk, now=NOW)

    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.DELIVERED
    assert delivery.attempts == 1
    assert delivery.last_status_code == 204
    assert delivery.delivered_at == NOW
    assert delivery.next_attempt_at is None
    [request] = webhook_receiver.requests
    assert request["is_signature_valid"]
    assert request["path"] == "/hooks/rm6"
    assert request["headers"]["X-RM6-Delivery"] == "step_run:41"
    assert request["headers"]["X-RM6-Event"] == "play.step"
    assert request["headers"]["Content-Type"] == "application/json"
    assert request["payload"] == PAYLOAD


def test_deliver_webhook_failure_schedules_retry(endpoint, webhook_receiver):
    webhook_receiver.status = 500
    webhook_receiver.response_body = b"receiver broke"
    delivery = make_delivery(endpoint)

    deliver_webhook(delivery_id=delivery.pk, now=NOW)

    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.PENDING
    assert delivery.attempts == 1
    assert delivery.last_status_code == 500
    assert delivery.last_error == "HTTP 500: receiver broke"
    assert delivery.next_attempt_at == NOW + timedelta(minutes=1)


def test_deliver_webhook_connection_refused(endpoint):
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(url=closed_port_url())
    delivery = make_delivery(endpoint)

    deliver_webhook(delivery_id=delivery.pk, now=NOW)

    delivery.refresh_from_db()
    assert delivery.attempts == 1
    assert delivery.last_status_code is None
    assert delivery.last_error.startswith("request failed: ")
    assert delivery.next_attempt_at == NOW + timedelta(minutes=1)


def test_deliver_webhook_no_redirects(endpoint, webhook_receiver):
    webhook_receiver.status = 302
    webhook_receiver.response_headers = {"Location": "/elsewhere"}
    delivery = make_delivery(endpoint)

    deliver_webhook(delivery_id=delivery.pk, now=NOW)

    delivery.refresh_from_db()
    assert len(webhook_receiver.requests) == 1
    assert delivery.status == WebhookDelivery.Status.PENDING
    assert delivery.last_status_code == 302
    assert delivery.last_error == (
        "HTTP 302 redirect to '/elsewhere'; redirects are not followed, so set "
        "the endpoint URL to the final address"
    )


def test_deliver_webhook_gives_up(endpoint, webhook_receiver):
    webhook_receiver.status = 503
    delivery = make_delivery(endpoint)

    attempt_at = NOW
    for _ in range(MAX_ATTEMPTS):
        deliver_webhook(delivery_id=delivery.pk, now=attempt_at)
        delivery.refresh_from_db()
        attempt_at = delivery.next_attempt_at

    assert len(webhook_receiver.requests) == MAX_ATTEMPTS
    assert delivery.status == WebhookDelivery.Status.FAILED
    assert delivery.attempts == MAX_ATTEMPTS
    assert delivery.next_attempt_at is None


def test_deliver_webhook_not_due_sends_nothing(endpoint, webhook_receiver):
    delivery = make_delivery(endpoint, next_attempt_at=NOW + timedelta(seconds=1))

    result = deliver_webhook(delivery_id=delivery.pk, now=NOW)

    assert result is None
    assert webhook_receiver.requests == []


def test_deliver_webhook_inactive_endpoint_fails(endpoint, webhook_receiver):
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(is_active=False)
    delivery = make_delivery(endpoint)

    deliver_webhook(delivery_id=delivery.pk, now=NOW)

    delivery.refresh_from_db()
    assert webhook_receiver.requests == []
    assert delivery.status == WebhookDelivery.Status.FAILED
    assert delivery.attempts == 0
    assert delivery.last_error == (
        "Endpoint 'CRM' is inactive, so nothing was sent. Activate it, then use "
        "Retry now."
    )


def test_deliver_webhook_task_uses_claim(endpoint, webhook_receiver):
    claimed_until = NOW + timedelta(minutes=5)
    delivery = make_delivery(endpoint, next_attempt_at=claimed_until)

    deliver_webhook_task(
        delivery_id=delivery.pk, claimed_until=claimed_until.isoformat()
    )

    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.DELIVERED
    assert len(webhook_receiver.requests) == 1


def test_deliver_task_stale_claim(endpoint, webhook_receiver):
    delivery = make_delivery(endpoint, next_attempt_at=NOW + timedelta(minutes=10))

    deliver_webhook_task(delivery_id=delivery.pk, claimed_until=NOW.isoformat())

    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.PENDING
    assert webhook_receiver.requests == []


@pytest.mark.django_db(transaction=True)
def test_two_workers_send_once(endpoint, webhook_receiver):
    delivery = make_delivery(endpoint, next_attempt_at=datetime.now(UTC))
    start = threading.Barrier(2)
    errors = []

    def work():
        try:
            start.wait(timeout=10)
            deliver_webhook(delivery_id=delivery.pk)
        except Exception as error:
            # An exception in a thread would not fail the test by itself.
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert len(webhook_receiver.requests) == 1
    delivery.refresh_from_db()
    assert delivery.attempts == 1
    assert delivery.status == WebhookDelivery.Status.DELIVERED


@pytest.mark.django_db(transaction=True)
def test_claim_due_skips_locked_rows(endpoint):
    locked = make_delivery(endpoint, key="test:locked")
    free = make_delivery(endpoint, key="test:free")
    lock_taken = threading.Event()
    release = threading.Event()

    def hold_lock():
        try:
            with transaction.atomic():
                WebhookDelivery.objects.select_for_update().get(pk=locked.pk)
                lock_taken.set()
                release.wait(timeout=30)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        assert lock_taken.wait(timeout=10)
        claimed_ids, claimed_until = claim_due_webhook_deliveries(now=NOW)
    finally:
        release.set()
        holder.join(timeout=30)

    assert claimed_ids == [free.pk]
    locked.refresh_from_db()
    free.refresh_from_db()
    assert locked.next_attempt_at == NOW
    assert free.next_attempt_at == claimed_until


def test_retry_webhooks_queues_due(endpoint, queued_deliveries):
    past = datetime.now(UTC) - timedelta(minutes=1)
    due = make_delivery(endpoint, key="test:due", next_attempt_at=past)
    make_delivery(endpoint, key="test:later", next_attempt_at=past + timedelta(hours=1))
    make_delivery(
        endpoint,
        key="test:done",
        next_attempt_at=None,
        status=WebhookDelivery.Status.DELIVERED,
    )

    queued = retry_webhooks_task()

    due.refresh_from_db()
    assert queued == 1
    assert queued_deliveries == [
        {"delivery_id": due.pk, "claimed_until": due.next_attempt_at.isoformat()}
    ]


def test_queue_due_claims_in_batches_up_to_cap(
    endpoint, queued_deliveries, monkeypatch
):
    monkeypatch.setattr(webhooks, "RETRY_BATCH_SIZE", 2)
    monkeypatch.setattr(webhooks, "MAX_QUEUED_PER_CALL", 5)
    past = datetime.now(UTC) - timedelta(minutes=1)
    for index in range(7):
        make_delivery(endpoint, key=f"test:due-{index}", next_attempt_at=past)

    first = webhooks.queue_due_webhook_deliveries()
    second = webhooks.queue_due_webhook_deliveries()
    third = webhooks.queue_due_webhook_deliveries()

    assert (first, second, third) == (5, 2, 0)
    queued_ids = [call["delivery_id"] for call in queued_deliveries]
    assert len(queued_ids) == 7
    assert len(set(queued_ids)) == 7


def test_retry_webhooks_in_beat_schedule():
    entry = settings.CELERY_BEAT_SCHEDULE["retry-webhooks"]

    assert entry["task"] == "lifecycle.retry_webhooks"
    assert entry["schedule"] == timedelta(minutes=1)


def test_retry_now_requeues_failed(
    endpoint, queued_deliveries, django_capture_on_commit_callbacks
):
    failed = make_delivery(
        endpoint,
        key="test:failed",
        status=WebhookDelivery.Status.FAILED,
        attempts=MAX_ATTEMPTS,
        next_attempt_at=None,
    )
    delivered = make_delivery(
        endpoint, key="test:ok", status=WebhookDelivery.Status.DELIVERED
    )

    with django_capture_on_commit_callbacks(execute=True):
        count = retry_webhook_deliveries(delivery_ids=[failed.pk, delivered.pk])

    failed.refresh_from_db()
    delivered.refresh_from_db()
    assert count == 1
    assert failed.status == WebhookDelivery.Status.PENDING
    assert delivered.status == WebhookDelivery.Status.DELIVERED
    assert queued_deliveries == [
        {"delivery_id": failed.pk, "claimed_until": failed.next_attempt_at.isoformat()}
    ]


def test_webhook_handler_creates_delivery(
    make_context,
    endpoint,
    enrolled_member,
    queued_deliveries,
    django_capture_on_commit_callbacks,
):
    ctx = make_context(
        "webhook",
        {"endpoint_id": endpoint.pk, "event_kind": "play.welcome", "data": {"x": 1}},
    )

    with django_capture_on_commit_callbacks(execute=True):
        result = send_play_webhook(ctx)

    delivery = WebhookDelivery.objects.get()
    assert result.outcome == "webhook queued"
    assert result.details == {"webhook_delivery_id": delivery.pk}
    assert delivery.delivery_key == f"step_run:{ctx.step_run.pk}"
    assert delivery.step_run == ctx.step_run
    assert delivery.event_kind == "play.welcome"
    assert queued_deliveries == [
        {
            "delivery_id": delivery.pk,
            "claimed_until": delivery.next_attempt_at.isoformat(),
        }
    ]


def test_webhook_handler_payload(
    make_context, endpoint, enrolled_member, queued_deliveries
):
    ctx = make_context("webhook", {"endpoint_id": endpoint.pk, "data": {"x": 1}})

    send_play_webhook(ctx)

    payload = WebhookDelivery.objects.get().payload
    assert payload["event"] == "play.step"
    assert payload["play_id"] == "welcome-2025"
    assert payload["campaign_id"] == "q3-onboarding"
    assert payload["subject"] == f"member:{enrolled_member.pk}"
    assert payload["step"] == {"position": ctx.step.position, "action": "webhook"}
    assert payload["member"]["email"] == enrolled_member.email
    assert payload["account"]["name"] == "Acme Corp"
    assert payload["data"] == {"x": 1}
    assert datetime.fromisoformat(payload["occurred_at"]).tzinfo is not None


def test_webhook_handler_twice_creates_one(
    make_context, endpoint, queued_deliveries, django_capture_on_commit_callbacks
):
    ctx = make_context("webhook", {"endpoint_id": endpoint.pk})

    with django_capture_on_commit_callbacks(execute=True):
        send_play_webhook(ctx)
        second = send_play_webhook(ctx)

    assert WebhookDelivery.objects.count() == 1
    assert len(queued_deliveries) == 1
    assert second.outcome == "webhook already queued"


def test_webhook_handler_then_worker_delivers(
    make_context, endpoint, webhook_receiver, queued_deliveries
):
    ctx = make_context("webhook", {"endpoint_id": endpoint.pk})
    send_play_webhook(ctx)
    delivery = WebhookDelivery.objects.get()

    deliver_webhook_task(
        delivery_id=delivery.pk, claimed_until=delivery.next_attempt_at.isoformat()
    )

    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.DELIVERED
    [request] = webhook_receiver.requests
    assert request["is_signature_valid"]
    assert request["payload"]["delivery_key"] == f"step_run:{ctx.step_run.pk}"


def test_webhook_handler_inactive_endpoint_skipped(make_context, endpoint):
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(is_active=False)
    ctx = make_context("webhook", {"endpoint_id": endpoint.pk})

    with pytest.raises(ActionSkipped) as skipped:
        send_play_webhook(ctx)

    assert str(skipped.value) == "webhook endpoint 'CRM' is inactive"
    assert WebhookDelivery.objects.count() == 0


@pytest.mark.parametrize("endpoint_id", [None, "1", 999999])
def test_webhook_handler_unknown_endpoint_raises(make_context, endpoint_id):
    ctx = make_context("webhook", {"endpoint_id": endpoint_id})

    with pytest.raises(DomainError) as error:
        send_play_webhook(ctx)

    assert error.value.field == "endpoint_id"
    assert WebhookDelivery.objects.count() == 0
