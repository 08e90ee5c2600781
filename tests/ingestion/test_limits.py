"""The per-source cap on Segment messages per minute, and the limit checks."""

import pytest
from django.core import checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from apps.lifecycle.ingestion import limits
from apps.lifecycle.ingestion.sources import create_segment_source
from apps.lifecycle.models import ActivityEvent
from tests import factories
from tests.ingestion.helpers import post_batch, track

# 30 s into a minute, so Retry-After is 30.
MINUTE_START = 1_800_000_000 // 60 * 60


@pytest.fixture
def clock(monkeypatch):
    now = [MINUTE_START + 30.0]
    monkeypatch.setattr(limits, "_now", lambda: now[0])
    return now


@pytest.fixture(autouse=True)
def dana(db):
    return factories.MemberFactory(external_id="u-1")


def _tracks(start: int, count: int) -> list[dict]:
    return [track(f"m-{n}") for n in range(start, start + count)]


def test_source_over_minute_cap_gets_429(client, segment_source, settings, clock):
    settings.RM6_SEGMENT_MESSAGES_PER_MINUTE = 5

    first = post_batch(client, segment_source.write_key, _tracks(0, 3))
    rejected = post_batch(client, segment_source.write_key, _tracks(3, 3))
    within = post_batch(client, segment_source.write_key, _tracks(6, 2))

    assert first.status_code == 200
    assert rejected.status_code == 429
    assert rejected["Retry-After"] == "30"
    assert rejected.json() == {
        "success": False,
        "code": "rate_limited",
        "message": "Source “Product” may send 5 messages a minute, and the 3 of "
        "this request would exceed that. Send the request again in 30 seconds.",
    }
    # The rejected request did not count, so two more fit in the minute.
    assert within.status_code == 200
    recorded = ActivityEvent.objects.values_list("idempotency_key", flat=True)
    assert sorted(key.rsplit(":", 1)[-1] for key in recorded) == [
        "m-0",
        "m-1",
        "m-2",
        "m-6",
        "m-7",
    ]


def test_next_minute_resets_count(client, segment_source, settings, clock):
    settings.RM6_SEGMENT_MESSAGES_PER_MINUTE = 3
    assert (
        post_batch(client, segment_source.write_key, _tracks(0, 3)).status_code == 200
    )
    assert (
        post_batch(client, segment_source.write_key, _tracks(3, 1)).status_code == 429
    )

    clock[0] += 30

    assert (
        post_batch(client, segment_source.write_key, _tracks(3, 3)).status_code == 200
    )
    assert ActivityEvent.objects.count() == 6


def test_sources_count_separately(client, segment_source, settings, clock):
    settings.RM6_SEGMENT_MESSAGES_PER_MINUTE = 2
    _, other_key = create_segment_source(name="Mobile")

    assert (
        post_batch(client, segment_source.write_key, _tracks(0, 2)).status_code == 200
    )
    assert post_batch(client, other_key, _tracks(2, 2)).status_code == 200
    assert (
        post_batch(client, segment_source.write_key, _tracks(4, 1)).status_code == 429
    )


def test_request_above_cap_gets_413(client, segment_source, settings, clock):
    settings.RM6_SEGMENT_MESSAGES_PER_MINUTE = 2

    response = post_batch(client, segment_source.write_key, _tracks(0, 3))

    assert response.status_code == 413
    assert response.json()["message"] == (
        "The request holds 3 messages, more than the 2 a source may send per "
        "minute. Send smaller batches."
    )
    assert not ActivityEvent.objects.exists()


def test_zero_cap_turns_limit_off(client, segment_source, settings, clock):
    settings.RM6_SEGMENT_MESSAGES_PER_MINUTE = 0

    response = post_batch(client, segment_source.write_key, _tracks(0, 50))

    assert response.status_code == 200
    assert ActivityEvent.objects.count() == 50


def test_cap_below_a_client_request_warns(settings):
    settings.RM6_SEGMENT_MESSAGES_PER_MINUTE = 50

    [warning] = limits.check_message_cap()

    assert warning.id == "lifecycle.W001"
    assert "RM6_SEGMENT_MESSAGES_PER_MINUTE is 50" in warning.msg


@pytest.mark.parametrize("cap", [0, 500, 60_000])
def test_usual_caps_do_not_warn(settings, cap):
    settings.RM6_SEGMENT_MESSAGES_PER_MINUTE = cap

    assert limits.check_message_cap() == []


def test_negative_held_limit_is_an_error(settings):
    settings.RM6_SEGMENT_MAX_HELD_MESSAGES = -1

    [error] = limits.check_held_message_cap()

    assert error.id == "lifecycle.E001"
    assert error.level == checks.ERROR
    assert error.msg == (
        "RM6_SEGMENT_MAX_HELD_MESSAGES is -1, but it must be 0 or more. A "
        "negative value would read as no limit by mistake."
    )
    assert error.hint == (
        "Set it to the number of held messages each Segment source may keep, "
        "such as the default 100000. 0 turns the limit off, so anyone with a "
        "browser source's public write key could fill the database with held "
        "messages."
    )


def test_negative_held_limit_fails_check_command(settings):
    settings.RM6_SEGMENT_MAX_HELD_MESSAGES = -5

    with pytest.raises(SystemCheckError) as caught:
        call_command("check")

    assert "RM6_SEGMENT_MAX_HELD_MESSAGES is -5" in str(caught.value)


@pytest.mark.parametrize("limit", [0, 1, 100_000])
def test_usual_held_limits_pass_check(settings, limit):
    settings.RM6_SEGMENT_MAX_HELD_MESSAGES = limit

    assert limits.check_held_message_cap() == []
