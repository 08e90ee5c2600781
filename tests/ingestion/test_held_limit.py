"""The per-source limit on held Segment messages."""

import logging
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from apps.lifecycle.ingestion.held import (
    discard_held_events,
    purge_held_events,
    release_matched_held_events,
)
from apps.lifecycle.ingestion.sources import create_segment_source
from apps.lifecycle.models import ActivityEvent, HeldUsageEvent
from tests import factories
from tests.ingestion.helpers import identify, post_batch, track

pytestmark = pytest.mark.django_db

LIMIT_EXPLANATION = (
    "The message matches no member, and the source already holds the maximum "
    "of {limit} such messages, so it was not stored. Identify the users so "
    "that their held messages are recorded, or have staff match or discard "
    "held messages under Admin > Lifecycle > Held usage events."
)


@pytest.fixture
def held_limit(settings):
    settings.RM6_SEGMENT_MAX_HELD_MESSAGES = 2
    return 2


def send_unknown(client, source, *message_ids, user_id="u-9"):
    messages = [track(message_id, user_id=user_id) for message_id in message_ids]
    return post_batch(client, source.write_key, messages)


def held_ids() -> list[str]:
    return sorted(
        HeldUsageEvent.objects.filter(status="held").values_list(
            "message_id", flat=True
        )
    )


def test_held_limit_drops_messages_past_it(client, segment_source, held_limit):
    response = send_unknown(client, segment_source, "m-1", "m-2", "m-3", "m-4")

    assert response.status_code == 200
    body = response.json()
    assert body["received"] == 4
    assert body["held"] == 2
    assert body["dropped"] == 2
    assert body["duplicates"] == 0
    assert body["errors"] == [
        {
            "index": index,
            "reason": "held_limit_reached",
            "message": LIMIT_EXPLANATION.format(limit=2),
        }
        for index in (2, 3)
    ]
    assert held_ids() == ["m-1", "m-2"]


def test_held_limit_logs_one_warning(client, segment_source, held_limit, caplog):
    with caplog.at_level(logging.WARNING, logger="apps.lifecycle.ingestion.ingest"):
        send_unknown(client, segment_source, "m-1", "m-2", "m-3", "m-4", "m-5")

    assert [record.getMessage() for record in caplog.records] == [
        "segment messages dropped: held limit reached: "
        f"source={segment_source.pk} limit=2 dropped=3"
    ]


def test_held_limit_counts_across_requests(client, segment_source, held_limit):
    send_unknown(client, segment_source, "m-1")

    response = send_unknown(client, segment_source, "m-2", "m-3")

    assert response.json()["held"] == 1
    assert response.json()["dropped"] == 1
    assert held_ids() == ["m-1", "m-2"]


def test_held_limit_retry_counts_as_duplicate(client, segment_source, held_limit):
    send_unknown(client, segment_source, "m-1", "m-2")

    response = send_unknown(client, segment_source, "m-2", "m-1")

    assert response.json()["duplicates"] == 2
    assert response.json()["dropped"] == 0
    assert "errors" not in response.json()


def test_held_limit_still_records_known_members(client, segment_source, held_limit):
    factories.MemberFactory(external_id="u-1")
    send_unknown(client, segment_source, "m-1", "m-2")

    response = post_batch(
        client,
        segment_source.write_key,
        [track("m-3", user_id="u-1"), track("m-4", user_id="u-9")],
    )

    assert response.json()["recorded"] == 1
    assert response.json()["dropped"] == 1
    assert ActivityEvent.objects.count() == 1


def test_held_limit_records_anonymous_identified(client, segment_source, held_limit):
    member = factories.MemberFactory(external_id="demo-m000001")
    send_unknown(client, segment_source, "m-1", "m-2")

    response = post_batch(
        client,
        segment_source.write_key,
        [
            track("m-3", user_id=None, anonymousId="full-anon"),
            identify("m-4", user_id="demo-m000001", anonymousId="full-anon"),
        ],
    )

    body = response.json()
    assert body["recorded"] == 1
    assert body["dropped"] == 0
    assert body["held"] == 0
    assert ActivityEvent.objects.get().member == member
    assert held_ids() == ["m-1", "m-2"]


def test_held_limit_is_per_source(client, segment_source, held_limit):
    send_unknown(client, segment_source, "m-1", "m-2")
    other, write_key = create_segment_source(name="Web app")

    response = post_batch(client, write_key, [track("m-1", user_id="u-9")])

    assert response.json()["held"] == 1
    assert HeldUsageEvent.objects.filter(source=other).count() == 1


def test_held_limit_errors_in_request_order(client, segment_source, held_limit):
    messages = [
        track("m-1", user_id="u-9"),
        track("m-2", user_id="u-9"),
        track("m-3", user_id="u-9"),
        {"type": "track", "messageId": "m-4", "userId": "u-9"},
    ]

    response = post_batch(client, segment_source.write_key, messages)

    errors = response.json()["errors"]
    assert [(error["index"], error["reason"]) for error in errors] == [
        (2, "held_limit_reached"),
        (3, "missing_event"),
    ]


def test_held_limit_reports_at_most_twenty(client, segment_source, settings):
    settings.RM6_SEGMENT_MAX_HELD_MESSAGES = 1
    message_ids = [f"m-{index}" for index in range(30)]

    response = send_unknown(client, segment_source, *message_ids)

    assert response.json()["dropped"] == 29
    assert [error["index"] for error in response.json()["errors"]] == list(range(1, 21))


@pytest.mark.parametrize("resolve", ["discard", "release", "purge"])
def test_held_limit_frees_room_when_resolved(
    client, segment_source, held_limit, settings, resolve
):
    send_unknown(client, segment_source, "m-1", "m-2")
    if resolve == "discard":
        discard_held_events(
            held_event_ids=list(HeldUsageEvent.objects.values_list("pk", flat=True))
        )
    elif resolve == "release":
        factories.MemberFactory(external_id="u-9")
        assert release_matched_held_events() == 2
    else:
        HeldUsageEvent.objects.update(received_at=timezone.now() - timedelta(days=91))
        settings.RM6_HELD_USAGE_RETENTION_DAYS = 90
        assert purge_held_events() == 2

    response = send_unknown(client, segment_source, "m-3", "m-4", user_id="u-8")

    assert response.json()["held"] == 2
    assert response.json()["dropped"] == 0


def test_zero_held_limit_turns_it_off(client, segment_source, settings):
    settings.RM6_SEGMENT_MAX_HELD_MESSAGES = 0

    response = send_unknown(client, segment_source, "m-1", "m-2", "m-3")

    assert response.json()["held"] == 3
    assert response.json()["dropped"] == 0


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_stay_within_limit(segment_source, settings, slow_inserts):
    # Each held row takes 0.3 s to insert, so without the source lock both
    # requests would count the held rows before either had committed.
    settings.RM6_SEGMENT_MAX_HELD_MESSAGES = 3
    slow_inserts("lifecycle_heldusageevent", "message_id")
    batches = [
        [track(f"slow-a{index}", user_id="u-9") for index in range(2)],
        [track(f"slow-b{index}", user_id="u-8") for index in range(2)],
    ]
    barrier = threading.Barrier(2)
    outcomes = []

    def send(batch):
        try:
            barrier.wait()
            response = post_batch(Client(), segment_source.write_key, batch)
            outcomes.append((response.status_code, response.json()["dropped"]))
        except Exception as error:  # collected so the main thread can assert on it
            outcomes.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(batch,)) for batch in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(outcomes) == [(200, 0), (200, 1)]
    assert HeldUsageEvent.objects.count() == 3
