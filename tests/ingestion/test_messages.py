"""Parsing Segment messages: event names, timestamps, context and attribution."""

import datetime

import pytest

from apps.lifecycle import registry
from apps.lifecycle.ingestion.messages import (
    InvalidBody,
    InvalidMessage,
    expand_body,
    parse_message,
    to_snake_case,
)

RECEIVED_AT = datetime.datetime(2026, 3, 2, 12, 0, tzinfo=datetime.UTC)


def parse(**fields):
    message = {
        "type": "track",
        "messageId": "m-1",
        "userId": "u-1",
        "event": "Report Exported",
        "receivedAt": RECEIVED_AT.isoformat(),
        **fields,
    }
    return parse_message(message, event_prefix="product")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Report Exported", "report_exported"),
        ("reportExported", "report_exported"),
        ("report-exported", "report_exported"),
        ("report.exported", "report_exported"),
        ("CSV Export", "csv_export"),
        ("HTMLExport", "html_export"),
        ("  Signed Up! ", "signed_up"),
        ("Télécharger rapport", "telecharger_rapport"),
        ("Step2Done", "step2_done"),
    ],
)
def test_to_snake_case(name, expected):
    assert to_snake_case(name) == expected


def test_parse_track_kind_from_prefix():
    message = parse_message(
        {
            "type": "track",
            "messageId": "m-1",
            "userId": "u-1",
            "event": "Invoice Paid",
            "receivedAt": RECEIVED_AT.isoformat(),
        },
        event_prefix="product.billing",
    )

    assert message.kind == "product.billing.invoice_paid"


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ("", "missing_event"),
        (None, "missing_event"),
        ("3D View", "invalid_event_name"),
        ("!!!", "invalid_event_name"),
        ("x" * 100, "invalid_event_name"),
    ],
)
def test_parse_invalid_event_name_rejected(event, reason):
    with pytest.raises(InvalidMessage) as raised:
        parse(event=event)

    assert raised.value.reason == reason


def test_parse_numeric_user_id_as_string():
    assert parse(userId=42).user_id == "42"


@pytest.mark.parametrize("user_id", [True, 4.2, ["u-1"], "u" * 201])
def test_parse_invalid_user_id_rejected(user_id):
    with pytest.raises(InvalidMessage) as raised:
        parse(userId=user_id)

    assert raised.value.reason == "invalid_user_id"


def test_parse_invalid_email_ignored():
    message = parse(context={"traits": {"email": "not an email"}})

    assert message.email == ""


def test_occurred_at_from_timestamp():
    message = parse(timestamp="2026-03-02T10:15:00+01:00", sentAt="2026-03-02T13:00Z")

    assert message.occurred_at == datetime.datetime(
        2026, 3, 2, 9, 15, tzinfo=datetime.UTC
    )


def test_occurred_at_naive_timestamp_read_as_utc():
    message = parse(timestamp="2026-03-02T09:15:00")

    assert message.occurred_at == datetime.datetime(
        2026, 3, 2, 9, 15, tzinfo=datetime.UTC
    )


def test_occurred_at_original_timestamp_corrected_by_clock_skew():
    # The device clock runs 10 minutes fast: it sent at 12:10 by its clock,
    # and the server received at 12:00.
    message = parse(
        originalTimestamp="2026-03-02T11:50:00Z", sentAt="2026-03-02T12:10:00Z"
    )

    assert message.occurred_at == datetime.datetime(
        2026, 3, 2, 11, 40, tzinfo=datetime.UTC
    )


def test_occurred_at_original_timestamp_without_sent_at():
    message = parse(originalTimestamp="2026-03-02T11:50:00Z")

    assert message.occurred_at == datetime.datetime(
        2026, 3, 2, 11, 50, tzinfo=datetime.UTC
    )


def test_occurred_at_defaults_to_received_at():
    assert parse().occurred_at == RECEIVED_AT


def test_occurred_at_far_future_replaced_by_received_at():
    message = parse(timestamp="2026-03-02T12:30:00Z")

    assert message.occurred_at == RECEIVED_AT


def test_occurred_at_slightly_ahead_kept():
    message = parse(timestamp="2026-03-02T12:04:00Z")

    assert message.occurred_at == datetime.datetime(
        2026, 3, 2, 12, 4, tzinfo=datetime.UTC
    )


@pytest.mark.parametrize("timestamp", ["yesterday", 1700000000, "2026-13-40T00:00Z"])
def test_occurred_at_invalid_timestamp_rejected(timestamp):
    with pytest.raises(InvalidMessage) as raised:
        parse(timestamp=timestamp)

    assert raised.value.reason == "invalid_timestamp"


@pytest.mark.parametrize(
    "fields",
    [
        {"timestamp": "1970-01-01T00:00:00Z"},
        {"timestamp": "0001-01-01T00:00:00+05:00"},
        {"originalTimestamp": "1999-12-31T23:59:59Z"},
        {"originalTimestamp": "0001-01-01T00:00:00Z", "sentAt": "9999-12-31T23:59Z"},
    ],
)
def test_occurred_at_out_of_range_rejected(fields):
    with pytest.raises(InvalidMessage) as raised:
        parse(**fields)

    assert raised.value.reason == "invalid_timestamp"


def test_parse_keeps_product_context_property():
    message = parse(
        properties={"context": "dashboard"},
        context={"library": {"name": "analytics-python", "version": "2.4.0"}},
    )

    assert message.properties == {"context": "dashboard"}


def test_parse_page_records_name_and_category():
    message = parse(type="page", name="Pricing", category="Docs", properties={"a": 1})

    assert message.kind == "product.page_viewed"
    assert message.properties == {"a": 1, "name": "Pricing", "category": "Docs"}


def test_parse_identify_has_no_kind_and_trait_email():
    message = parse(type="identify", traits={"email": "Erin@Acme.test"})

    assert message.kind == ""
    assert message.email == "erin@acme.test"
    assert message.is_usage is False


def test_attribution_invalid_values_dropped():
    message = parse(
        context={
            "page": {"search": "?play_id=welcome&campaign_id=" + "c" * 101},
            "campaign": {"source": "news\nletter", "medium": "email"},
        }
    )

    assert message.attribution == {"play_id": "welcome", "utm_medium": "email"}


def test_stored_message_parses_to_same_values():
    message = parse(
        timestamp="2026-03-02T09:15:00Z",
        properties={"format": "csv"},
        context={
            "ip": "203.0.113.9",
            "page": {"path": "/r", "search": "?utm_source=news&token=secret"},
            "traits": {"email": "erin@acme.test", "phone": "+1 555"},
        },
    )

    again = parse_message(message.stored, event_prefix="product")

    assert again == message
    assert message.stored["context"] == {
        "page": {"path": "/r", "search": "?utm_source=news"},
        "traits": {"email": "erin@acme.test"},
    }


def test_expand_batch_applies_envelope():
    body = {
        "batch": [{"type": "track", "event": "A"}, "junk"],
        "sentAt": "2026-03-02T12:00:00Z",
        "context": {"locale": "en"},
        "writeKey": "secret",
    }

    messages = expand_body(body, message_type=None, received_at=RECEIVED_AT)

    assert messages[1] == "junk"
    assert messages[0]["sentAt"] == "2026-03-02T12:00:00Z"
    assert messages[0]["context"] == {"locale": "en"}
    assert messages[0]["receivedAt"] == RECEIVED_AT.isoformat()
    assert messages[0]["messageId"].startswith("rm6-")


def test_expand_single_message_takes_endpoint_type():
    body = {"type": "page", "event": "A", "messageId": "m-1", "writeKey": "secret"}

    messages = expand_body(body, message_type="track", received_at=RECEIVED_AT)

    assert messages == [
        {
            "type": "track",
            "event": "A",
            "messageId": "m-1",
            "receivedAt": RECEIVED_AT.isoformat(),
        }
    ]


def test_expand_batch_without_list_rejected():
    with pytest.raises(InvalidBody):
        expand_body({"batch": "x"}, message_type=None, received_at=RECEIVED_AT)


def test_parse_prefix_outside_integration_families_rejected():
    with pytest.raises(InvalidMessage) as raised:
        parse_message(
            {
                "type": "track",
                "messageId": "m-1",
                "userId": "u-1",
                "event": "Reply Posted",
                "receivedAt": RECEIVED_AT.isoformat(),
            },
            event_prefix="community",
        )

    assert raised.value.reason == "invalid_event_prefix"
    assert raised.value.explanation == (
        "The source's event prefix 'community' is not under a kind family "
        "registered for integrations, so no usage message of the source can be "
        "recorded. Set the source's event prefix in admin to a prefix under "
        "product.*, for example product."
    )


def test_parse_kind_for_hub_only_rejected(monkeypatch):
    hub_only = registry.EventKind("product.points_awarded", "Awarded by the hub.")
    monkeypatch.setitem(registry._kinds, hub_only.name, hub_only)

    with pytest.raises(InvalidMessage) as raised:
        parse(event="Points Awarded")

    assert raised.value.reason == "kind_not_for_integrations"
