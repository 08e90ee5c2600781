"""The Segment-compatible endpoint: authentication, body limits and messages."""

import datetime
import gzip
import json

import pytest
from django.utils import timezone

from apps.lifecycle.ingestion.sources import create_segment_source
from apps.lifecycle.ingestion.views import MAX_BODY_BYTES, MAX_DECOMPRESSED_BYTES
from apps.lifecycle.models import (
    ActivityEvent,
    HeldUsageEvent,
    SegmentIdentity,
    SegmentSource,
)
from apps.membership.models import AuditEntry, DataSourceRun
from tests import factories
from tests.ingestion.helpers import (
    MESSAGE_TIME,
    basic_auth,
    identify,
    post_batch,
    post_json,
    track,
)

UNAUTHORIZED_BODY = {
    "success": False,
    "code": "unauthorized",
    "message": "Invalid or missing write key. Send the source's write key as the "
    "user name of HTTP Basic authentication, or as writeKey in the body.",
}


@pytest.fixture
def dana(db):
    return factories.MemberFactory(external_id="u-1", user__email="dana@acme.test")


def assert_nothing_written(source: SegmentSource) -> None:
    source.refresh_from_db()
    assert not ActivityEvent.objects.exists()
    assert not HeldUsageEvent.objects.exists()
    assert source.last_received_at is None


def test_batch_records_track_of_known_member(client, segment_source, dana):
    response = post_batch(client, segment_source.write_key, [track("m-1")])

    assert response.status_code == 200
    assert response.json() == {
        "success": True,
        "received": 1,
        "recorded": 1,
        "duplicates": 0,
        "held": 0,
        "dropped": 0,
        "identified": 0,
        "not_linked": 0,
        "released": 0,
        "ignored": 0,
        "invalid": 0,
    }
    event = ActivityEvent.objects.get()
    assert event.member == dana
    assert event.kind == "product.report_exported"
    assert event.occurred_at == datetime.datetime.fromisoformat(MESSAGE_TIME)
    assert event.idempotency_key == f"segment:{segment_source.pk}:m-1"


def test_single_track_endpoint_records_event(client, segment_source, dana):
    message = track("m-1")
    del message["type"]

    response = post_json(
        client, "/v1/track", message, write_key=segment_source.write_key
    )

    assert response.status_code == 200
    assert ActivityEvent.objects.get().kind == "product.report_exported"


def test_write_key_in_body_accepted(client, segment_source, dana):
    body = {"batch": [track("m-1")], "writeKey": segment_source.write_key}

    response = post_json(client, "/v1/batch", body)

    assert response.status_code == 200
    assert ActivityEvent.objects.count() == 1


def test_last_received_at_set(client, segment_source, dana):
    before = timezone.now()

    post_batch(client, segment_source.write_key, [track("m-1")])

    segment_source.refresh_from_db()
    assert segment_source.last_received_at >= before


@pytest.mark.parametrize(
    ("headers", "body_key"),
    [
        ({}, None),
        ({"HTTP_AUTHORIZATION": basic_auth("wrong-key")}, None),
        ({"HTTP_AUTHORIZATION": "Basic not-base64!"}, None),
        ({"HTTP_AUTHORIZATION": "Bearer something"}, None),
        ({}, "wrong-key"),
        ({}, 12345),
    ],
    ids=["missing", "wrong", "malformed", "other-scheme", "wrong-in-body", "number"],
)
def test_invalid_write_key_rejected(client, segment_source, dana, headers, body_key):
    body = {"batch": [track("m-1")]}
    if body_key is not None:
        body["writeKey"] = body_key

    response = post_json(client, "/v1/batch", body, **headers)

    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED_BODY
    assert response["WWW-Authenticate"] == 'Basic realm="segment"'
    assert_nothing_written(segment_source)


def test_wrong_header_key_beats_body_key(client, segment_source, dana):
    body = {"batch": [track("m-1")], "writeKey": segment_source.write_key}

    response = post_json(
        client, "/v1/batch", body, HTTP_AUTHORIZATION=basic_auth("wrong-key")
    )

    assert response.status_code == 401
    assert_nothing_written(segment_source)


INACTIVE_BODY = {
    "success": False,
    "code": "source_inactive",
    "message": "The write key belongs to Segment source “Product”, which is "
    "inactive, so its messages are not accepted. Staff can reactivate it under "
    "Admin > Lifecycle > Segment sources by ticking “Is active”; otherwise "
    "send with the write key of an active source.",
}


def test_inactive_source_rejected_with_reason(client, segment_source, dana):
    SegmentSource.objects.filter(pk=segment_source.pk).update(is_active=False)

    response = post_batch(client, segment_source.write_key, [track("m-1")])

    assert response.status_code == 403
    assert response.json() == INACTIVE_BODY
    assert not response.has_header("WWW-Authenticate")
    assert_nothing_written(segment_source)
    assert not DataSourceRun.objects.exists()


def test_inactive_source_body_key_rejected(client, segment_source, dana):
    SegmentSource.objects.filter(pk=segment_source.pk).update(is_active=False)
    body = {"batch": [track("m-1")], "writeKey": segment_source.write_key}

    response = post_json(client, "/v1/batch", body)

    assert response.status_code == 403
    assert response.json() == INACTIVE_BODY
    assert_nothing_written(segment_source)


def test_unknown_key_reveals_no_source(client, segment_source, dana):
    SegmentSource.objects.filter(pk=segment_source.pk).update(is_active=False)

    response = post_batch(client, "wrong-key", [track("m-1")])

    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED_BODY
    assert_nothing_written(segment_source)


def test_get_not_allowed(client, segment_source):
    response = client.get("/v1/batch")

    assert response.status_code == 405


def test_gzip_body_recorded(client, segment_source, dana):
    body = {"batch": [track("m-1")]}

    response = post_json(
        client, "/v1/batch", body, write_key=segment_source.write_key, compress=True
    )

    assert response.status_code == 200
    assert ActivityEvent.objects.get().member == dana


def test_invalid_gzip_rejected(client, segment_source):
    response = client.generic(
        "POST",
        "/v1/batch",
        b"not gzip at all",
        content_type="application/json",
        HTTP_CONTENT_ENCODING="gzip",
        HTTP_AUTHORIZATION=basic_auth(segment_source.write_key),
    )

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_gzip"
    assert_nothing_written(segment_source)


def test_truncated_gzip_rejected(client, segment_source):
    data = gzip.compress(json.dumps({"batch": [track("m-1")]}).encode())

    response = client.generic(
        "POST",
        "/v1/batch",
        data[:-12],
        content_type="application/json",
        HTTP_CONTENT_ENCODING="gzip",
        HTTP_AUTHORIZATION=basic_auth(segment_source.write_key),
    )

    assert response.status_code == 400
    assert response.json()["message"] == "The gzip data is truncated."


def test_oversize_body_rejected(client, segment_source, dana):
    padding = "x" * MAX_BODY_BYTES
    body = {"batch": [track("m-1")], "padding": padding}

    response = post_json(client, "/v1/batch", body, write_key=segment_source.write_key)

    assert response.status_code == 413
    assert response.json() == {
        "success": False,
        "code": "request_too_large",
        "message": f"The body exceeds {MAX_BODY_BYTES} bytes. Send fewer "
        "messages per batch.",
    }
    assert_nothing_written(segment_source)


def test_gzip_expanding_past_limit_rejected(client, segment_source, dana):
    padding = " " * MAX_DECOMPRESSED_BYTES
    data = gzip.compress(
        json.dumps({"batch": [track("m-1")]}).encode() + padding.encode()
    )
    assert len(data) < MAX_BODY_BYTES

    response = client.generic(
        "POST",
        "/v1/batch",
        data,
        content_type="application/json",
        HTTP_CONTENT_ENCODING="gzip",
        HTTP_AUTHORIZATION=basic_auth(segment_source.write_key),
    )

    assert response.status_code == 413
    assert response.json()["code"] == "request_too_large"
    assert_nothing_written(segment_source)


def test_unsupported_encoding_rejected(client, segment_source):
    response = client.generic(
        "POST",
        "/v1/batch",
        b"{}",
        content_type="application/json",
        HTTP_CONTENT_ENCODING="br",
        HTTP_AUTHORIZATION=basic_auth(segment_source.write_key),
    )

    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_encoding"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"batch": [', "The body is not valid JSON."),
        (
            b'{"batch": [{"event": "Caf\xe9"}]}',
            "The body is not valid UTF-8 text: the byte at offset 25 cannot be "
            "decoded. Encode the body as UTF-8.",
        ),
        (
            b"\xff\xfe\xfa",
            "The body is not valid UTF-16-LE text: the byte at offset 2 cannot be "
            "decoded. Encode the body as UTF-8.",
        ),
        (
            b"",
            "The body is empty. Send a JSON object: the message, or on /v1/batch "
            'an object with a "batch" list of messages.',
        ),
        (
            b" \r\n",
            "The body is empty. Send a JSON object: the message, or on /v1/batch "
            'an object with a "batch" list of messages.',
        ),
        (b"[1, 2]", "The body is not a JSON object."),
        (b'{"batch": {"type": "track"}}', 'The body has no "batch" list of messages.'),
    ],
    ids=[
        "truncated",
        "latin-1",
        "utf-16-bom",
        "empty",
        "whitespace",
        "list",
        "batch-not-list",
    ],
)
def test_malformed_body_rejected(client, segment_source, data, message):
    response = post_raw(client, segment_source, data)

    assert response.status_code == 400
    assert response.json()["message"] == message
    assert_nothing_written(segment_source)


def test_invalid_messages_skipped_and_counted(client, segment_source, dana):
    messages = [
        track("m-1"),
        "not an object",
        track("m-2", type="purchase"),
        track("m-3", event=""),
        track("m-4", user_id=None),
        track("m-5", timestamp="yesterday"),
        track("m-6", properties=["a"]),
        track("m-7", event="3D View"),
        track("m-8", properties={"blob": "x" * 33_000}),
        track("m" * 151),
    ]

    response = post_batch(client, segment_source.write_key, messages)

    assert response.status_code == 200
    assert response.json()["received"] == 10
    assert response.json()["recorded"] == 1
    assert response.json()["invalid"] == 9
    assert ActivityEvent.objects.get().idempotency_key.endswith(":m-1")
    reasons = [(error["index"], error["reason"]) for error in response.json()["errors"]]
    assert reasons == [
        (1, "not_an_object"),
        (2, "unknown_type"),
        (3, "missing_event"),
        (4, "missing_user_id"),
        (5, "invalid_timestamp"),
        (6, "invalid_properties"),
        (7, "invalid_event_name"),
        (8, "too_large"),
        (9, "invalid_message_id"),
    ]
    assert response.json()["errors"][4]["message"] == (
        "timestamp, originalTimestamp or sentAt is not an ISO 8601 time from "
        "2000 on. Send it as a string such as 2026-03-02T09:30:00.000Z."
    )


def test_repeated_message_in_batch_counted_once(client, segment_source, dana):
    response = post_batch(
        client, segment_source.write_key, [track("m-1"), track("m-1")]
    )

    assert response.json()["recorded"] == 1
    assert response.json()["duplicates"] == 1
    assert ActivityEvent.objects.count() == 1


def test_retried_batch_counted_once(client, segment_source, dana):
    post_batch(client, segment_source.write_key, [track("m-1"), track("m-2")])

    response = post_batch(
        client, segment_source.write_key, [track("m-1"), track("m-2")]
    )

    assert response.json()["recorded"] == 0
    assert response.json()["duplicates"] == 2
    assert ActivityEvent.objects.count() == 2


def test_message_id_scoped_per_source(client, segment_source, dana):
    from apps.lifecycle.ingestion.sources import create_segment_source

    _, other_key = create_segment_source(name="Mobile app")

    post_batch(client, segment_source.write_key, [track("m-1")])
    post_batch(client, other_key, [track("m-1")])

    assert ActivityEvent.objects.count() == 2


def test_email_in_context_traits_matches_any_case(client, segment_source, dana):
    message = track("m-1", user_id=None, anonymousId="anon-1")
    message["context"]["traits"] = {"email": "DANA@Acme.test"}

    response = post_batch(client, segment_source.write_key, [message])

    assert response.json()["recorded"] == 1
    assert ActivityEvent.objects.get().member == dana


def test_unknown_user_id_falls_back_to_email(client, segment_source, dana):
    message = track("m-1", user_id="u-unknown")
    message["context"]["traits"] = {"email": "dana@acme.test"}

    post_batch(client, segment_source.write_key, [message])

    assert ActivityEvent.objects.get().member == dana


def test_email_user_id_matches_member_by_email(client, segment_source):
    erin = factories.MemberFactory(external_id="", user__email="erin@acme.test")

    response = post_batch(
        client, segment_source.write_key, [track("m-1", user_id="Erin@Acme.test")]
    )

    assert response.json()["recorded"] == 1
    assert ActivityEvent.objects.get().member == erin


def test_held_email_user_id_released_on_identify(client, segment_source):
    post_batch(
        client, segment_source.write_key, [track("m-1", user_id="erin@acme.test")]
    )
    assert HeldUsageEvent.objects.get().email == "erin@acme.test"
    erin = factories.MemberFactory(external_id="", user__email="erin@acme.test")

    response = post_batch(
        client,
        segment_source.write_key,
        [identify("i-1", user_id="erin@acme.test", email="erin@acme.test")],
    )

    assert response.json()["released"] == 1
    assert ActivityEvent.objects.get().member == erin


def test_email_user_id_identify_not_counted_unlinked(client, db):
    _, write_key = create_segment_source(name="Web app")
    factories.MemberFactory(external_id="", user__email="erin@acme.test")

    response = post_batch(
        client, write_key, [identify("i-1", user_id="Erin@acme.test")]
    )

    assert response.json()["identified"] == 1
    assert response.json()["not_linked"] == 0


def test_merged_member_events_go_to_survivor(client, segment_source):
    survivor = factories.MemberFactory()
    factories.MemberFactory(external_id="u-old", merged_into=survivor)

    post_batch(client, segment_source.write_key, [track("m-1", user_id="u-old")])

    assert ActivityEvent.objects.get().member == survivor


def test_unknown_user_held_with_minimised_message(client, segment_source):
    message = track("m-1", user_id="u-9", anonymousId="anon-9")
    message["context"].update(
        {
            "ip": "203.0.113.9",
            "userAgent": "Mozilla/5.0",
            "traits": {"email": "Erin@Acme.test", "name": "Erin Example"},
        }
    )

    response = post_batch(client, segment_source.write_key, [message])

    assert response.json()["held"] == 1
    held = HeldUsageEvent.objects.get()
    assert held.source == segment_source
    assert held.status == HeldUsageEvent.Status.HELD
    assert held.message_id == "m-1"
    assert held.user_id == "u-9"
    assert held.anonymous_id == "anon-9"
    assert held.email == "erin@acme.test"
    assert held.message["context"] == {
        "library": {"name": "analytics-python", "version": "2.4.0"},
        "traits": {"email": "erin@acme.test"},
    }
    assert held.message["event"] == "Report Exported"


def test_retried_unknown_message_held_once(client, segment_source):
    post_batch(client, segment_source.write_key, [track("m-1", user_id="u-9")])

    response = post_batch(
        client, segment_source.write_key, [track("m-1", user_id="u-9")]
    )

    assert response.json()["held"] == 0
    assert response.json()["duplicates"] == 1
    assert HeldUsageEvent.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_reordered_holds_no_deadlock(segment_source, slow_inserts):
    import threading

    from django.db import connection
    from django.test import Client

    slow_inserts("lifecycle_heldusageevent", "message_id")
    messages = [track(f"slow-{i}", user_id="u-9") for i in range(2)]
    barrier = threading.Barrier(2)
    statuses = []

    def send(batch):
        try:
            barrier.wait()
            response = post_batch(Client(), segment_source.write_key, batch)
            statuses.append(response.status_code)
        except Exception as exc:  # collected so the main thread can assert on it
            statuses.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=send, args=(messages,)),
        threading.Thread(target=send, args=(messages[::-1],)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert statuses == [200, 200]
    assert HeldUsageEvent.objects.count() == 2


def test_identify_links_external_id_and_releases_held(client, segment_source):
    erin = factories.MemberFactory(user__email="erin@acme.test")
    post_batch(
        client,
        segment_source.write_key,
        [track("m-1", user_id="u-9"), track("m-2", user_id="u-9")],
    )

    response = post_batch(
        client,
        segment_source.write_key,
        [identify("m-3", user_id="u-9", email="Erin@acme.test")],
    )

    erin.refresh_from_db()
    assert response.json()["identified"] == 1
    assert response.json()["released"] == 2
    assert erin.external_id == "u-9"
    assert ActivityEvent.objects.filter(member=erin).count() == 2
    assert set(HeldUsageEvent.objects.values_list("status", flat=True)) == {"recorded"}
    audit = AuditEntry.objects.get(action="member.external_id_linked")
    assert audit.member == erin
    assert audit.details == {
        "external_id": "u-9",
        "segment_source_id": segment_source.pk,
    }


def test_identify_from_client_side_source_links_nothing(client, db):
    source, write_key = create_segment_source(name="Web app")
    erin = factories.MemberFactory(user__email="erin@acme.test")

    response = post_batch(
        client,
        write_key,
        [
            identify("m-1", user_id="u-9", email="erin@acme.test"),
            track("m-2", user_id="u-9"),
        ],
    )

    erin.refresh_from_db()
    assert not source.links_identities
    assert response.json()["identified"] == 1
    assert response.json()["not_linked"] == 1
    assert response.json()["held"] == 1
    assert erin.external_id == ""
    assert not AuditEntry.objects.filter(action="member.external_id_linked").exists()


def test_identify_releases_anonymous_messages_of_source(client, segment_source):
    erin = factories.MemberFactory(external_id="u-9")
    post_batch(
        client,
        segment_source.write_key,
        [track("m-1", user_id=None, anonymousId="anon-9")],
    )

    post_batch(
        client,
        segment_source.write_key,
        [identify("m-2", user_id="u-9", anonymousId="anon-9")],
    )

    assert ActivityEvent.objects.get().member == erin
    assert HeldUsageEvent.objects.get().status == HeldUsageEvent.Status.RECORDED


def test_identify_from_unlinking_source_keeps_anonymous_held(client, db):
    newbie = factories.MemberFactory(user__email="newbie@acme.test")
    _, write_key = create_segment_source(name="Web app")
    victim_usage = track(
        "m-1", user_id=None, anonymousId="victim-anon-7", properties={"invoice": 7}
    )
    post_batch(client, write_key, [victim_usage])

    response = post_batch(
        client,
        write_key,
        [
            identify(
                "m-2",
                user_id="attacker-x",
                anonymousId="victim-anon-7",
                email="newbie@acme.test",
            )
        ],
    )

    assert response.json()["identified"] == 1
    assert response.json()["released"] == 0
    assert not ActivityEvent.objects.filter(member=newbie).exists()
    assert HeldUsageEvent.objects.get().status == HeldUsageEvent.Status.HELD


def test_identify_from_unlinking_source_same_batch(client, db):
    newbie = factories.MemberFactory(user__email="newbie@acme.test")
    _, write_key = create_segment_source(name="Web app")

    response = post_batch(
        client,
        write_key,
        [
            track("m-1", user_id=None, anonymousId="victim-anon-7"),
            identify(
                "m-2",
                user_id="attacker-x",
                anonymousId="victim-anon-7",
                email="newbie@acme.test",
            ),
        ],
    )

    assert response.json()["held"] == 1
    assert response.json()["released"] == 0
    assert not ActivityEvent.objects.filter(member=newbie).exists()
    assert HeldUsageEvent.objects.get().status == HeldUsageEvent.Status.HELD


def test_identify_before_track_in_same_batch_matches(client, segment_source):
    erin = factories.MemberFactory(user__email="erin@acme.test")

    response = post_batch(
        client,
        segment_source.write_key,
        [
            track("m-1", user_id="u-9"),
            identify("m-2", user_id="u-9", email="erin@acme.test"),
        ],
    )

    assert response.json()["recorded"] == 1
    assert response.json()["held"] == 0
    assert ActivityEvent.objects.get().member == erin


def test_identify_matches_anonymous_track_in_batch(client, segment_source):
    erin = factories.MemberFactory(external_id="u-9")

    response = post_batch(
        client,
        segment_source.write_key,
        [
            track("m-1", user_id=None, anonymousId="anon-9"),
            identify("m-2", user_id="u-9", anonymousId="anon-9"),
        ],
    )

    assert response.json()["recorded"] == 1
    assert response.json()["held"] == 0
    assert response.json()["released"] == 0
    assert ActivityEvent.objects.get().member == erin
    assert not HeldUsageEvent.objects.exists()


def test_anonymous_track_prefers_source_identity(client, segment_source):
    erin = factories.MemberFactory(external_id="u-9")
    dana = factories.MemberFactory(external_id="crm-1")
    SegmentIdentity.objects.create(source=segment_source, user_id="anon-9", member=dana)

    post_batch(
        client,
        segment_source.write_key,
        [
            track("m-1", user_id=None, anonymousId="anon-9"),
            identify("m-2", user_id="u-9", anonymousId="anon-9"),
        ],
    )

    assert ActivityEvent.objects.get().member == dana
    assert not ActivityEvent.objects.filter(member=erin).exists()


def test_identify_keeps_other_external_id(client, segment_source):
    erin = factories.MemberFactory(external_id="crm-1", user__email="erin@acme.test")

    response = post_batch(
        client,
        segment_source.write_key,
        [identify("m-1", user_id="u-9", email="erin@acme.test")],
    )

    erin.refresh_from_db()
    assert response.json()["identified"] == 1
    assert erin.external_id == "crm-1"
    assert not AuditEntry.objects.filter(action="member.external_id_linked").exists()
    identity = SegmentIdentity.objects.get()
    assert (identity.source, identity.user_id, identity.member) == (
        segment_source,
        "u-9",
        erin,
    )
    audit = AuditEntry.objects.get(action="member.segment_identity_linked")
    assert audit.details == {"user_id": "u-9", "segment_source_id": segment_source.pk}


def test_second_source_user_id_matches_after_identify(client, segment_source):
    erin = factories.MemberFactory(external_id="crm-1", user__email="erin@acme.test")
    post_batch(client, segment_source.write_key, [track("m-1", user_id="u-9")])

    response = post_batch(
        client,
        segment_source.write_key,
        [
            identify("m-2", user_id="u-9", email="erin@acme.test"),
            track("m-3", user_id="u-9"),
        ],
    )
    later = post_batch(client, segment_source.write_key, [track("m-4", user_id="u-9")])

    assert response.json()["released"] == 1
    assert response.json()["recorded"] == 1
    assert later.json()["recorded"] == 1
    assert ActivityEvent.objects.filter(member=erin).count() == 3
    assert not HeldUsageEvent.objects.filter(status=HeldUsageEvent.Status.HELD)


def test_identity_of_one_source_not_used_by_another(client, segment_source):
    factories.MemberFactory(external_id="crm-1", user__email="erin@acme.test")
    post_batch(
        client,
        segment_source.write_key,
        [identify("m-1", user_id="u-9", email="erin@acme.test")],
    )
    _, write_key = create_segment_source(name="Mobile", links_identities=True)

    response = post_batch(client, write_key, [track("m-2", user_id="u-9")])

    assert response.json()["held"] == 1
    assert not ActivityEvent.objects.exists()


def test_identify_leaves_other_members_external_id(client, segment_source):
    erin = factories.MemberFactory(external_id="crm-1", user__email="erin@acme.test")
    factories.MemberFactory(external_id="u-9")

    post_batch(
        client,
        segment_source.write_key,
        [identify("m-1", user_id="u-9", email="erin@acme.test")],
    )

    assert not SegmentIdentity.objects.filter(member=erin).exists()


def test_identify_of_unknown_person_changes_nothing(client, segment_source):
    response = post_batch(
        client,
        segment_source.write_key,
        [identify("m-1", user_id="u-9", email="nobody@acme.test")],
    )

    assert response.json()["identified"] == 0
    assert not HeldUsageEvent.objects.exists()
    assert not ActivityEvent.objects.exists()


def test_link_external_id_taken_by_other_member_left_alone(segment_source):
    from apps.lifecycle.ingestion.identities import _link_external_id

    factories.MemberFactory(external_id="u-9")
    erin = factories.MemberFactory()

    linked = _link_external_id(
        member=erin, external_id="u-9", source_id=segment_source.pk, actor=None
    )

    erin.refresh_from_db()
    assert linked is False
    assert erin.external_id == ""


def test_group_and_unknown_alias_and_identify_ignored(client, segment_source):
    messages = [
        {"type": "group", "messageId": "m-1", "userId": "u-1", "groupId": "g-1"},
        {"type": "alias", "messageId": "m-2", "userId": "u-7", "previousId": "a-1"},
        {"type": "identify", "messageId": "m-3", "userId": "u-8"},
    ]

    response = post_batch(client, segment_source.write_key, messages)

    assert response.status_code == 200
    assert response.json()["ignored"] == 3
    assert response.json()["identified"] == 0
    assert not ActivityEvent.objects.exists()


def _alias(message_id: str, *, previous_id, user_id="u-1") -> dict:
    return {
        "type": "alias",
        "messageId": message_id,
        "userId": user_id,
        "previousId": previous_id,
    }


def test_alias_releases_messages_held_under_previous_id(client, segment_source, dana):
    held = [
        track("m-1", user_id="old-1"),
        track("m-2", user_id=None, anonymousId="anon-1"),
        track("m-3", user_id="someone-else"),
    ]
    post_batch(client, segment_source.write_key, held)

    response = post_batch(
        client,
        segment_source.write_key,
        [_alias("a-1", previous_id="old-1"), _alias("a-2", previous_id="anon-1")],
    )

    assert response.json()["identified"] == 2
    assert response.json()["released"] == 2
    recorded = ActivityEvent.objects.order_by("idempotency_key")
    assert [event.member for event in recorded] == [dana, dana]
    remaining = HeldUsageEvent.objects.filter(status=HeldUsageEvent.Status.HELD)
    assert list(remaining.values_list("message_id", flat=True)) == ["m-3"]


def test_alias_in_same_batch_matches_its_messages(client, segment_source, dana):
    messages = [track("m-1", user_id="old-1"), _alias("a-1", previous_id="old-1")]

    response = post_batch(client, segment_source.write_key, messages)

    # The alias ties old-1 to the member before the batch's usage is matched.
    assert response.json()["recorded"] == 1
    assert response.json()["held"] == 0
    assert ActivityEvent.objects.get().member == dana


def test_alias_matches_later_messages_of_previous_id(client, segment_source, dana):
    post_batch(client, segment_source.write_key, [_alias("a-1", previous_id="old-1")])

    response = post_batch(
        client, segment_source.write_key, [track("m-1", user_id="old-1")]
    )

    assert response.json()["recorded"] == 1
    assert response.json()["held"] == 0
    assert ActivityEvent.objects.get().member == dana
    assert SegmentIdentity.objects.get().member == dana


def test_alias_from_unlinking_source_releases_nothing(client, dana):
    _, write_key = create_segment_source(name="Web app")
    post_batch(client, write_key, [track("m-1", user_id="old-1")])

    response = post_batch(client, write_key, [_alias("a-1", previous_id="old-1")])

    assert response.json()["not_linked"] == 1
    assert response.json()["released"] == 0
    assert not ActivityEvent.objects.exists()
    assert HeldUsageEvent.objects.get().status == HeldUsageEvent.Status.HELD


def test_alias_without_previous_id_invalid(client, segment_source, dana):
    message = {"type": "alias", "messageId": "a-1", "userId": "u-1"}

    response = post_batch(client, segment_source.write_key, [message])

    assert response.json()["invalid"] == 1
    assert response.json()["errors"] == [
        {
            "index": 0,
            "reason": "invalid_alias",
            "message": "The alias message needs both previousId and userId. Give "
            "the ID the person had before as previousId.",
        }
    ]


def test_alias_of_anonymous_id_matches_later_messages(client, segment_source, dana):
    post_batch(client, segment_source.write_key, [_alias("a-1", previous_id="anon-1")])

    response = post_batch(
        client,
        segment_source.write_key,
        [track("m-1", user_id=None, anonymousId="anon-1")],
    )

    assert response.json()["recorded"] == 1
    assert response.json()["held"] == 0
    assert ActivityEvent.objects.get().member == dana


def test_alias_of_anonymous_id_in_same_batch(client, segment_source, dana):
    messages = [
        _alias("a-1", previous_id="anon-1"),
        track("m-1", user_id=None, anonymousId="anon-1"),
    ]

    response = post_batch(client, segment_source.write_key, messages)

    assert response.json()["recorded"] == 1
    assert ActivityEvent.objects.get().member == dana


def test_alias_ties_identity_not_external_id(client, segment_source):
    erin = factories.MemberFactory(external_id="", user__email="erin@acme.test")

    post_batch(
        client,
        segment_source.write_key,
        [_alias("a-1", previous_id="anon-1", user_id="erin@acme.test")],
    )
    response = post_batch(
        client,
        segment_source.write_key,
        [track("m-1", user_id=None, anonymousId="anon-1")],
    )

    erin.refresh_from_db()
    identity = SegmentIdentity.objects.get()
    assert erin.external_id == ""
    assert identity.user_id == "anon-1"
    assert identity.member == erin
    assert response.json()["recorded"] == 1
    assert ActivityEvent.objects.get().member == erin


def test_alias_leaves_id_tied_to_other_member(client, segment_source, dana):
    post_batch(
        client,
        segment_source.write_key,
        [track("m-1", user_id=None, anonymousId="anon-1")],
    )
    erin = factories.MemberFactory(external_id="crm-1")
    SegmentIdentity.objects.create(source=segment_source, user_id="anon-1", member=erin)

    response = post_batch(
        client, segment_source.write_key, [_alias("a-1", previous_id="anon-1")]
    )

    assert response.json()["not_linked"] == 1
    assert response.json()["released"] == 0
    assert SegmentIdentity.objects.get().member == erin
    assert HeldUsageEvent.objects.get().status == HeldUsageEvent.Status.HELD
    assert not ActivityEvent.objects.exists()


def test_alias_to_deactivated_member_ties_nothing(client, segment_source):
    factories.MemberFactory(external_id="u-1", deactivated_at=timezone.now())

    response = post_batch(
        client, segment_source.write_key, [_alias("a-1", previous_id="anon-1")]
    )

    assert response.json()["ignored"] == 1
    assert not SegmentIdentity.objects.exists()


def test_prefix_outside_integration_families_explained(client, segment_source, dana):
    # The admin rejects such a prefix, so only SQL can set it.
    SegmentSource.objects.filter(pk=segment_source.pk).update(event_prefix="community")
    messages = [
        track("m-1", event="Reply Posted"),
        track("m-2"),
        identify("m-3", email="dana@acme.test"),
    ]

    response = post_batch(client, segment_source.write_key, messages)

    explanation = (
        "The source's event prefix 'community' is not under a kind family "
        "registered for integrations, so no usage message of the source can be "
        "recorded. Set the source's event prefix in admin to a prefix under "
        "product.*, for example product."
    )
    assert response.json()["invalid"] == 2
    assert response.json()["identified"] == 1
    assert response.json()["errors"] == [
        {"index": 0, "reason": "invalid_event_prefix", "message": explanation},
        {"index": 1, "reason": "invalid_event_prefix", "message": explanation},
    ]
    assert not ActivityEvent.objects.exists()


def test_event_context_and_attribution(client, segment_source, dana):
    message = track("m-1")
    message["context"].update(
        {
            "ip": "203.0.113.9",
            "userAgent": "Mozilla/5.0",
            "locale": "en-GB",
            "page": {
                "path": "/reports",
                "url": "https://app.example.com/reports?play_id=welcome&token=secret",
                "search": "?play_id=welcome&token=secret",
            },
            "campaign": {"source": "newsletter", "medium": "email", "name": "spring"},
        }
    )

    post_batch(client, segment_source.write_key, [message])

    event = ActivityEvent.objects.get()
    assert event.properties["context"] == {
        "library": {"name": "analytics-python", "version": "2.4.0"},
        "locale": "en-GB",
        "page": {"path": "/reports"},
    }
    assert event.play_id == "welcome"
    assert event.utm_source == "newsletter"
    assert event.utm_medium == "email"
    assert event.utm_campaign == "spring"
    assert event.campaign_id == ""


def test_batch_context_applies_to_messages(client, segment_source, dana):
    message = track("m-1")
    del message["context"]
    body = {
        "batch": [message],
        "context": {"campaign": {"source": "newsletter"}},
    }

    post_json(client, "/v1/batch", body, write_key=segment_source.write_key)

    assert ActivityEvent.objects.get().utm_source == "newsletter"


def test_unregistered_prefix_skips_tracks(client, segment_source, dana):
    SegmentSource.objects.filter(pk=segment_source.pk).update(event_prefix="billing")

    response = post_batch(client, segment_source.write_key, [track("m-1")])

    assert response.status_code == 200
    assert response.json()["invalid"] == 1
    assert not ActivityEvent.objects.exists()


@pytest.mark.parametrize(
    "fields",
    [
        {"properties": {"note": "a\x00b"}},
        {"properties": {"note": "\ud800"}},
        {"user_id": "u\x00-1"},
        {"properties": {"ratio": float("nan")}},
        {"properties": {"ratio": float("-inf")}},
        {"properties": {"ratio": float("inf")}, "user_id": "u-unknown"},
    ],
    ids=[
        "nul-property",
        "surrogate-property",
        "nul-user-id",
        "nan-property",
        "infinity-property",
        "infinity-held",
    ],
)
def test_unstorable_text_skipped_as_invalid(client, segment_source, dana, fields):
    response = post_batch(client, segment_source.write_key, [track("m-1", **fields)])

    assert response.status_code == 200
    assert response.json()["invalid"] == 1
    assert ActivityEvent.objects.count() == 0
    assert HeldUsageEvent.objects.count() == 0


def test_deep_nesting_skipped_with_its_reason(client, segment_source, dana):
    nested: dict = {}
    for _ in range(40):
        nested = {"level": nested}
    response = post_batch(
        client, segment_source.write_key, [track("m-1", properties=nested)]
    )

    assert response.status_code == 200
    assert response.json()["invalid"] == 1
    assert response.json()["errors"][0]["reason"] == "too_deep"
    assert "more than 32 levels deep" in response.json()["errors"][0]["message"]
    assert ActivityEvent.objects.count() == 0


def test_out_of_range_time_skipped_as_invalid(client, segment_source, dana):
    # The clock-skew correction of this message leaves the range of datetime.
    message = track(
        "m-1",
        timestamp=None,
        originalTimestamp="0001-01-01T00:00:00Z",
        sentAt="9999-12-31T23:59:59Z",
    )
    del message["timestamp"]

    response = post_json(
        client, "/v1/batch", {"batch": [message]}, write_key=segment_source.write_key
    )

    assert response.status_code == 200
    assert response.json()["invalid"] == 1
    assert not ActivityEvent.objects.exists()


def test_time_before_2000_skipped_without_holding(client, segment_source):
    message = track("m-1", user_id="u-unknown", timestamp="1970-01-01T00:00:00Z")

    response = post_batch(client, segment_source.write_key, [message])

    assert response.status_code == 200
    assert response.json()["invalid"] == 1
    assert not HeldUsageEvent.objects.exists()


def post_raw(client, source, body):
    """POST a body as given, JSON or not, with the source's write key."""
    return client.generic(
        "POST",
        "/v1/batch",
        body,
        content_type="application/json",
        HTTP_AUTHORIZATION=basic_auth(source.write_key),
    )


def test_deeply_nested_body_rejected(client, segment_source):
    data = b'{"batch": ' + b'{"x": ' * 50000 + b"1" + b"}" * 50000 + b"}"

    response = post_raw(client, segment_source, data)

    assert response.status_code == 400
    assert response.json()["message"] == "The body is nested too deeply to read."


def test_get_gets_json_405(client):
    response = client.get("/v1/batch")

    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert response.json() == {
        "success": False,
        "code": "method_not_allowed",
        "message": "GET is not allowed here. Send messages with POST, as "
        "Segment's libraries do.",
    }


@pytest.mark.parametrize("path", ["/v1/batch/", "/v1/track/"])
def test_trailing_slash_path_receives(client, segment_source, dana, path):
    message = track("m-1")
    body = {"batch": [message]} if path == "/v1/batch/" else message

    response = post_json(client, path, body, write_key=segment_source.write_key)

    assert response.status_code == 200
    assert response.json()["recorded"] == 1


def test_huge_number_says_to_send_a_string(client, segment_source):
    body = '{"batch": [{"type": "track", "n": ' + "9" * 5000 + "}]}"

    response = post_raw(client, segment_source, body)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_json"
    assert response.json()["message"].endswith(
        "digits, which is not read. Send it as a string."
    )


def test_gzip_without_header_says_to_declare_it(client, segment_source):
    body = gzip.compress(json.dumps({"batch": [track("m-1")]}).encode())

    response = post_raw(client, segment_source, body)

    assert response.status_code == 400
    assert response.json()["message"] == (
        "The body is gzip-compressed but has no Content-Encoding header. Send it "
        "with Content-Encoding: gzip."
    )
