from datetime import timedelta

import pytest
from django.utils import timezone

from apps.lifecycle.ingestion.held import discard_held_events
from apps.lifecycle.models import HeldUsageEvent, SegmentSource
from apps.membership.models import DataSourceRun
from apps.membership.services.data_sources import segment_source_origin
from apps.reporting.selectors.freshness import list_data_freshness
from tests import factories
from tests.ingestion.helpers import basic_auth, post_batch, post_json, track

USAGE = DataSourceRun.Source.USAGE_INGESTION


@pytest.fixture
def dana(db):
    return factories.MemberFactory(external_id="u-1", user__email="dana@acme.test")


def usage_run() -> DataSourceRun:
    return DataSourceRun.objects.get(source=USAGE)


def test_segment_batch_records_usage_ingestion(
    client, segment_source, dana, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = post_batch(client, segment_source.write_key, [track("m-1")])

    segment_source.refresh_from_db()
    assert response.status_code == 200
    assert usage_run().last_success_at == segment_source.last_received_at


def test_segment_batch_within_minute_writes_once(
    client, segment_source, dana, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        post_batch(client, segment_source.write_key, [track("m-1")])
    first = usage_run().last_success_at

    with django_capture_on_commit_callbacks(execute=True):
        post_batch(client, segment_source.write_key, [track("m-2")])

    segment_source.refresh_from_db()
    assert segment_source.last_received_at == first
    assert usage_run().last_success_at == first


def test_segment_batch_after_minute_writes_again(
    client, segment_source, dana, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        post_batch(client, segment_source.write_key, [track("m-1")])
    first = usage_run().last_success_at
    DataSourceRun.objects.filter(source=USAGE).update(
        last_success_at=first - timedelta(minutes=2)
    )
    SegmentSource.objects.filter(pk=segment_source.pk).update(
        last_received_at=first - timedelta(minutes=2)
    )

    with django_capture_on_commit_callbacks(execute=True):
        post_batch(client, segment_source.write_key, [track("m-2")])

    segment_source.refresh_from_db()
    assert usage_run().last_success_at == segment_source.last_received_at


def test_segment_invalid_json_records_failure(client, segment_source):
    response = client.generic(
        "POST",
        "/v1/batch",
        b"{not json",
        content_type="application/json",
        HTTP_AUTHORIZATION=basic_auth(segment_source.write_key),
    )

    run = usage_run()
    assert response.status_code == 400
    assert run.last_success_at is None
    assert run.last_error == "segment request rejected: invalid_json"


def test_segment_batch_all_invalid_records_failure(
    client, segment_source, django_capture_on_commit_callbacks
):
    invalid = {"type": "track", "messageId": "m-1"}

    with django_capture_on_commit_callbacks(execute=True):
        response = post_batch(client, segment_source.write_key, [invalid, invalid])

    run = usage_run()
    assert response.status_code == 200
    assert run.last_success_at is None
    assert run.last_error == "segment batch failed: all 2 message(s) invalid"


def _send_unknown(client, source, *message_ids):
    messages = [track(message_id, user_id="u-9") for message_id in message_ids]
    return post_batch(client, source.write_key, messages)


def test_segment_dropped_messages_record_failure(
    client, segment_source, settings, django_capture_on_commit_callbacks
):
    settings.RM6_SEGMENT_MAX_HELD_MESSAGES = 2

    with django_capture_on_commit_callbacks(execute=True):
        response = _send_unknown(client, segment_source, "m-1", "m-2", "m-3")

    run = usage_run()
    assert response.json()["dropped"] == 1
    assert run.origin == segment_source_origin(segment_source.pk)
    assert run.last_success_at is None
    assert run.last_failure_at is not None
    assert run.last_error == "held limit reached: 1 message(s) dropped"


def test_segment_dropped_messages_show_failing(
    client, segment_source, dana, settings, django_capture_on_commit_callbacks
):
    settings.RM6_SEGMENT_MAX_HELD_MESSAGES = 1
    with django_capture_on_commit_callbacks(execute=True):
        post_batch(client, segment_source.write_key, [track("m-1")])
        _send_unknown(client, segment_source, "m-2")

    with django_capture_on_commit_callbacks(execute=True):
        _send_unknown(client, segment_source, "m-3", "m-4")

    origin = segment_source_origin(segment_source.pk)
    [row] = [
        row for row in list_data_freshness(now=timezone.now()) if row.origin == origin
    ]
    assert row.is_failing
    assert row.last_error == "held limit reached: 2 message(s) dropped"


def test_segment_dropped_within_minute_writes_once(
    client, segment_source, settings, django_capture_on_commit_callbacks
):
    settings.RM6_SEGMENT_MAX_HELD_MESSAGES = 1
    with django_capture_on_commit_callbacks(execute=True):
        _send_unknown(client, segment_source, "m-1", "m-2")
    first = usage_run().last_failure_at

    with django_capture_on_commit_callbacks(execute=True):
        _send_unknown(client, segment_source, "m-3", "m-4", "m-5")

    run = usage_run()
    assert run.last_failure_at == first
    assert run.last_error == "held limit reached: 1 message(s) dropped"


def test_segment_success_at_limit_keeps_failure(
    client, segment_source, dana, settings, django_capture_on_commit_callbacks
):
    """Matched usage does not clear the failure while the source is full."""
    settings.RM6_SEGMENT_MAX_HELD_MESSAGES = 1
    with django_capture_on_commit_callbacks(execute=True):
        _send_unknown(client, segment_source, "m-1", "m-2")

    with django_capture_on_commit_callbacks(execute=True):
        response = post_batch(client, segment_source.write_key, [track("m-3")])

    run = usage_run()
    assert response.json()["recorded"] == 1
    assert run.last_success_at is None
    assert run.last_error == "held limit reached: 1 message(s) dropped"


def test_segment_success_below_limit_shows(
    client, segment_source, dana, settings, django_capture_on_commit_callbacks
):
    settings.RM6_SEGMENT_MAX_HELD_MESSAGES = 1
    with django_capture_on_commit_callbacks(execute=True):
        _send_unknown(client, segment_source, "m-1", "m-2")
    discard_held_events(
        held_event_ids=list(HeldUsageEvent.objects.values_list("pk", flat=True))
    )

    with django_capture_on_commit_callbacks(execute=True):
        post_batch(client, segment_source.write_key, [track("m-3")])

    run = usage_run()
    assert run.last_failure_at is not None
    assert run.last_success_at is not None
    assert run.last_success_at >= run.last_failure_at


def test_segment_empty_batch_records_nothing(client, segment_source):
    response = post_batch(client, segment_source.write_key, [])

    assert response.status_code == 200
    assert not DataSourceRun.objects.exists()


def test_segment_wrong_key_records_nothing(client, segment_source):
    response = post_json(
        client, "/v1/batch", {"batch": [track("m-1")]}, write_key="wrong-key"
    )

    assert response.status_code == 401
    assert not DataSourceRun.objects.exists()
