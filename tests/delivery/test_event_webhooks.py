"""Endpoints subscribed to event kinds receive those events as they are recorded."""

import threading
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connections, transaction
from django.urls import reverse
from django.utils import timezone

from apps.lifecycle.delivery.event_webhooks import (
    SWEPT_UNTIL_KEY,
    is_event_kind_subscribed,
    sweep_event_webhooks,
)
from apps.lifecycle.models import WebhookDelivery, WebhookEndpoint
from apps.lifecycle.services import record_activity
from apps.lifecycle.tasks import deliver_webhook_task
from apps.membership.services.profiles import delete_member_account
from tests import factories
from tests.delivery.conftest import WEBHOOK_SECRET

pytestmark = pytest.mark.django_db
ADD_URL = reverse("admin:lifecycle_webhookendpoint_add")


@pytest.fixture(autouse=True)
def fresh_sweep_position():
    cache.delete(SWEPT_UNTIL_KEY)
    yield
    cache.delete(SWEPT_UNTIL_KEY)


@pytest.fixture
def subscriber(webhook_receiver):
    return WebhookEndpoint.objects.create(
        name="Warehouse",
        url=webhook_receiver.url,
        secret=WEBHOOK_SECRET,
        event_kinds=["community.reply_posted", "portal.*"],
    )


@pytest.fixture
def member(db):
    account = factories.AccountFactory(name="Acme Corp", external_id="acc-1")
    return factories.MemberFactory(account=account, display_name="Robin")


def test_sweep_delivers_subscribed_event_signed(
    subscriber, member, webhook_receiver, queued_deliveries
):
    event = record_activity(
        member=member,
        kind="community.reply_posted",
        properties={"topic_id": 7},
        attribution={"campaign_id": "q3", "utm_source": "newsletter"},
    )

    created = sweep_event_webhooks()
    for message in queued_deliveries:
        deliver_webhook_task(**message)

    delivery = WebhookDelivery.objects.get()
    request = webhook_receiver.requests[0]
    payload = request["payload"]
    assert created == 1
    assert delivery.status == WebhookDelivery.Status.DELIVERED
    assert len(webhook_receiver.requests) == 1
    assert request["is_signature_valid"]
    assert request["headers"]["X-RM6-Event"] == "community.reply_posted"
    assert request["headers"]["X-RM6-Delivery"] == (
        f"event:{event.pk}:endpoint:{subscriber.pk}"
    )
    assert payload["event_id"] == event.pk
    assert payload["member"]["id"] == member.pk
    assert payload["account"]["external_id"] == "acc-1"
    assert payload["properties"] == {"topic_id": 7}
    assert payload["attribution"]["campaign_id"] == "q3"
    assert payload["attribution"]["utm_source"] == "newsletter"


def test_sweep_twice_creates_one_delivery(subscriber, member, queued_deliveries):
    record_activity(member=member, kind="community.reply_posted")

    first = sweep_event_webhooks()
    cache.delete(SWEPT_UNTIL_KEY)
    second = sweep_event_webhooks()

    assert first == 1
    assert second == 0
    assert WebhookDelivery.objects.count() == 1
    assert len(queued_deliveries) == 1


def test_sweep_matches_prefix_and_skips_others(subscriber, member, queued_deliveries):
    record_activity(member=member, kind="portal.case_filed")
    record_activity(member=member, kind="community.topic_viewed")

    created = sweep_event_webhooks()

    assert created == 1
    assert list(WebhookDelivery.objects.values_list("event_kind", flat=True)) == [
        "portal.case_filed"
    ]


def test_sweep_skips_inactive_endpoint(subscriber, member, queued_deliveries):
    subscriber.is_active = False
    subscriber.save(update_fields=["is_active"])
    record_activity(member=member, kind="community.reply_posted")

    created = sweep_event_webhooks()

    assert created == 0
    assert not WebhookDelivery.objects.exists()


def test_sweep_skips_events_before_endpoint(subscriber, member, queued_deliveries):
    event = record_activity(member=member, kind="community.reply_posted")
    WebhookEndpoint.objects.filter(pk=subscriber.pk).update(
        created_at=event.recorded_at + timedelta(seconds=1)
    )

    created = sweep_event_webhooks()

    assert created == 0


def test_endpoint_created_at_uses_database_clock(
    webhook_receiver, member, queued_deliveries, monkeypatch
):
    # An app server whose clock runs a minute ahead of the database's.
    ahead = timezone.now() + timedelta(minutes=1)
    monkeypatch.setattr(timezone, "now", lambda: ahead)
    endpoint = WebhookEndpoint.objects.create(
        name="Warehouse",
        url=webhook_receiver.url,
        secret=WEBHOOK_SECRET,
        event_kinds=["community.reply_posted"],
    )
    event = record_activity(member=member, kind="community.reply_posted")

    created = sweep_event_webhooks(now=ahead)

    assert endpoint.created_at < ahead
    assert endpoint.created_at <= event.recorded_at
    assert created == 1


def test_sweep_reads_from_stored_position(subscriber, member, queued_deliveries):
    record_activity(member=member, kind="community.reply_posted")
    sweep_event_webhooks()

    record_activity(member=member, kind="community.reply_posted")
    created = sweep_event_webhooks()

    assert created == 1
    assert WebhookDelivery.objects.count() == 2


@pytest.mark.parametrize(
    ("patterns", "kind", "expected"),
    [
        (["community.reply_posted"], "community.reply_posted", True),
        (["community.reply_posted"], "community.reply_posted_twice", False),
        (["community.*"], "community.reply_posted", True),
        (["community.*"], "communityx.reply_posted", False),
        ([], "community.reply_posted", False),
    ],
)
def test_event_kind_subscription(patterns, kind, expected):
    assert is_event_kind_subscribed(patterns, kind) is expected


def test_admin_rejects_unknown_event_kind(admin_client):
    response = admin_client.post(
        ADD_URL,
        {
            "name": "Warehouse",
            "url": "https://warehouse.example.com/hooks",
            "event_kinds": "community.reply_posted,nope.nothing,zzz.*",
            "is_active": "on",
        },
    )

    errors = response.context["adminform"].form.errors["event_kinds"]
    assert response.status_code == 200
    assert (
        "'nope.nothing' is not a registered event kind or prefix. Use a kind such "
        "as community.reply_posted, or a prefix such as community.*."
    ) in errors
    assert any("'zzz.*'" in error for error in errors)
    assert not WebhookEndpoint.objects.exists()


def test_admin_saves_kinds_and_prefixes(admin_client):
    response = admin_client.post(
        ADD_URL,
        {
            "name": "Warehouse",
            "url": "https://warehouse.example.com/hooks",
            "event_kinds": "community.reply_posted,,portal.*",
            "is_active": "on",
        },
    )

    assert response.status_code == 302
    assert WebhookEndpoint.objects.get().event_kinds == [
        "community.reply_posted",
        "portal.*",
    ]


def test_admin_drops_repeated_kinds(admin_client):
    repeated = ",".join(["community.reply_posted", " portal.*"] * 300)

    response = admin_client.post(
        ADD_URL,
        {
            "name": "Warehouse",
            "url": "https://warehouse.example.com/hooks",
            "event_kinds": repeated,
            "is_active": "on",
        },
    )

    assert response.status_code == 302
    assert WebhookEndpoint.objects.get().event_kinds == [
        "community.reply_posted",
        "portal.*",
    ]


def test_admin_accepts_prefix_under_kind_family(admin_client):
    response = admin_client.post(
        ADD_URL,
        {
            "name": "Warehouse",
            "url": "https://warehouse.example.com/hooks",
            "event_kinds": "product.mobile.*",
            "is_active": "on",
        },
    )

    assert response.status_code == 302
    assert WebhookEndpoint.objects.get().event_kinds == ["product.mobile.*"]


def test_sweep_matches_prefix_under_kind_family(
    member, webhook_receiver, queued_deliveries
):
    WebhookEndpoint.objects.create(
        name="Mobile",
        url=webhook_receiver.url,
        secret=WEBHOOK_SECRET,
        event_kinds=["product.mobile.*"],
    )
    record_activity(member=member, kind="product.mobile.report_exported")
    record_activity(member=member, kind="product.report_exported")

    created = sweep_event_webhooks()

    assert created == 1
    assert list(WebhookDelivery.objects.values_list("event_kind", flat=True)) == [
        "product.mobile.report_exported"
    ]


def test_anonymised_member_left_out_of_pending_payload(
    subscriber, webhook_receiver, queued_deliveries
):
    member = factories.MemberFactory(
        display_name="Robin Private", external_id="u-881", user__email="robin@a.test"
    )
    record_activity(member=member, kind="community.reply_posted")
    sweep_event_webhooks()

    delete_member_account(member=member, actor=None)
    for message in queued_deliveries:
        deliver_webhook_task(**message)

    sent = webhook_receiver.requests[0]
    stored = WebhookDelivery.objects.get().payload
    assert sent["payload"]["member"] == {
        "id": member.pk,
        "name": "Deleted member",
        "email": f"deleted-{member.user_id}@invalid",
        "external_id": "",
    }
    assert stored["member"] == sent["payload"]["member"]
    assert b"robin@a.test" not in sent["body"]
    assert b"Robin Private" not in sent["body"]


def test_event_webhook_sweep_in_beat_schedule():
    entry = settings.CELERY_BEAT_SCHEDULE["sweep-event-webhooks"]

    assert entry["task"] == "lifecycle.sweep_event_webhooks"
    assert entry["schedule"] == timedelta(seconds=15)


@pytest.mark.django_db(transaction=True)
def test_concurrent_sweeps_count_each_delivery_once(
    subscriber, member, queued_deliveries
):
    """A sweep that waits for another one counts none of its deliveries."""
    record_activity(member=member, kind="community.reply_posted")
    first_inserted = threading.Event()
    counts = {}

    def first_sweep():
        # Creates the delivery and keeps its transaction open for a while.
        try:
            with transaction.atomic():
                counts["first"] = sweep_event_webhooks()
                first_inserted.set()
                time.sleep(0.5)
        finally:
            connections.close_all()

    def second_sweep():
        try:
            first_inserted.wait(timeout=10)
            cache.delete(SWEPT_UNTIL_KEY)
            counts["second"] = sweep_event_webhooks()
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=first_sweep),
        threading.Thread(target=second_sweep),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert counts == {"first": 1, "second": 0}
    assert WebhookDelivery.objects.count() == 1
    assert len(queued_deliveries) == 1
