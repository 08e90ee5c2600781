"""The real segment-analytics-python client sending to a live test server."""

import datetime
import gc
import threading

import pytest
from segment.analytics import request as segment_request
from segment.analytics.client import Client
from segment.analytics.request import APIError
from segment.analytics.version import VERSION

from apps.lifecycle.ingestion.sources import create_segment_source
from apps.lifecycle.models import ActivityEvent, HeldUsageEvent, SegmentSource
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)

ACTION_TIME = datetime.datetime(2026, 3, 2, 9, 30, tzinfo=datetime.UTC)


@pytest.fixture(autouse=True)
def close_kept_alive_connections():
    """Close the client's kept-alive HTTP connections after each test.

    segment-analytics-python 2.4 sends through one module-level requests
    session. A connection it keeps alive keeps a live server thread open, with
    that thread's database connection, which stops pytest-django from
    dropping the test database at the end. Collecting garbage first frees the
    responses that caught errors still reference, whose sockets would
    otherwise stay open.
    """
    yield
    gc.collect()
    segment_request._session.close()


@pytest.fixture
def host(live_server) -> str:
    """Return the live server's address, by IP so that nothing resolves names."""
    return f"http://127.0.0.1:{live_server.thread.port}"


@pytest.fixture
def write_key(transactional_db) -> str:
    _, key = create_segment_source(name="Product", links_identities=True)
    return key


@pytest.fixture
def client(host, write_key) -> Client:
    """Return a client that sends each call at once and raises on errors."""
    return Client(write_key=write_key, host=host, sync_mode=True)


def test_segment_client_track_records_event(client, write_key):
    member = factories.MemberFactory(external_id="u-42")

    client.track(
        user_id="u-42",
        event="Report Exported",
        properties={"format": "csv"},
        timestamp=ACTION_TIME,
        message_id="m-1",
    )

    event = ActivityEvent.objects.get()
    source = SegmentSource.objects.get()
    assert event.kind == "product.report_exported"
    assert event.member == member
    assert event.account == member.account
    assert event.occurred_at == ACTION_TIME
    assert event.properties == {
        "format": "csv",
        "context": {"library": {"name": "analytics-python", "version": VERSION}},
    }
    assert event.idempotency_key == f"segment:{source.pk}:m-1"
    assert source.last_received_at is not None


def test_segment_client_page_and_screen_record_views(client):
    member = factories.MemberFactory(external_id="u-42")

    client.page(user_id="u-42", category="Docs", name="Pricing")
    client.screen(user_id="u-42", name="Dashboard")

    events = ActivityEvent.objects.filter(member=member).order_by("kind")
    assert [event.kind for event in events] == [
        "product.page_viewed",
        "product.screen_viewed",
    ]
    assert events[0].properties["name"] == "Pricing"
    assert events[0].properties["category"] == "Docs"
    assert events[1].properties["name"] == "Dashboard"


def test_segment_client_retried_message_counted_once(client):
    factories.MemberFactory(external_id="u-42")

    for _ in range(2):
        client.track(user_id="u-42", event="Report Exported", message_id="m-1")

    assert ActivityEvent.objects.count() == 1


def test_segment_client_identify_links_external_id(client):
    member = factories.MemberFactory(user__email="dana@acme.test")

    client.identify(user_id="u-7", traits={"email": "Dana@ACME.test"})
    client.track(user_id="u-7", event="Dashboard Opened")

    member.refresh_from_db()
    assert member.external_id == "u-7"
    assert ActivityEvent.objects.get().member == member


def test_segment_client_unknown_user_held_then_released(client):
    client.track(user_id="u-9", event="Report Exported", message_id="m-1")

    held = HeldUsageEvent.objects.get()
    assert held.status == HeldUsageEvent.Status.HELD
    assert held.user_id == "u-9"
    assert not ActivityEvent.objects.exists()

    member = factories.MemberFactory(user__email="erin@acme.test")
    client.identify(user_id="u-9", traits={"email": "erin@acme.test"})

    held.refresh_from_db()
    event = ActivityEvent.objects.get()
    assert event.member == member
    assert event.kind == "product.report_exported"
    assert held.status == HeldUsageEvent.Status.RECORDED
    assert held.member == member
    assert held.resolved_at is not None


def test_segment_client_wrong_write_key_rejected(host, write_key):
    factories.MemberFactory(external_id="u-42")
    client = Client(write_key="not-the-key", host=host, sync_mode=True)

    with pytest.raises(APIError) as raised:
        client.track(user_id="u-42", event="Report Exported")

    assert raised.value.status == 401
    assert raised.value.code == "unauthorized"
    assert not ActivityEvent.objects.exists()
    assert not HeldUsageEvent.objects.exists()
    assert SegmentSource.objects.get().last_received_at is None


def test_segment_client_gzip_records_event(host, write_key):
    member = factories.MemberFactory(external_id="u-42")
    client = Client(write_key=write_key, host=host, sync_mode=True, gzip=True)

    client.track(user_id="u-42", event="Report Exported")

    assert ActivityEvent.objects.get().member == member


def test_segment_client_queued_messages_sent_by_flush(host, write_key):
    member = factories.MemberFactory(external_id="u-42")
    errors = []
    client = Client(
        write_key=write_key,
        host=host,
        upload_interval=0.05,
        max_retries=0,
        on_error=lambda error, batch: errors.append(error),
    )

    try:
        for number in range(3):
            client.track(
                user_id="u-42", event="Report Exported", message_id=f"m-{number}"
            )
        client.flush()
    finally:
        client.join()

    assert errors == []
    assert ActivityEvent.objects.filter(member=member).count() == 3


def test_segment_client_concurrent_retries_counted_once(host, write_key):
    member = factories.MemberFactory(external_id="u-42")
    start = threading.Barrier(2)
    errors = []

    def send() -> None:
        client = Client(write_key=write_key, host=host, sync_mode=True)
        start.wait()
        try:
            client.track(user_id="u-42", event="Report Exported", message_id="m-1")
            client.track(user_id="u-9", event="Report Exported", message_id="m-2")
        except APIError as error:
            errors.append(error)

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert ActivityEvent.objects.filter(member=member).count() == 1
    assert HeldUsageEvent.objects.filter(message_id="m-2").count() == 1
