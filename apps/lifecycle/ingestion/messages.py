"""Parsing Segment messages into what the hub records, without the database.

`expand_body` turns a request body into messages, and `parse_message` checks
one message and derives its event kind, time, properties and attribution.
The field names and timestamp rules follow Segment's message spec.
"""

import json
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlencode
from uuid import uuid4

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.dateparse import parse_datetime

from apps.lifecycle import registry
from apps.lifecycle.attribution import PARAMETERS, clean_attribution
from apps.lifecycle.models.events import EARLIEST_OCCURRED_AT, MAX_CLOCK_SKEW
from apps.lifecycle.storable import MAX_DEPTH, TOO_DEEP, find_unstorable

# Segment's limit for one message: analytics-python 2.4 drops larger ones.
MAX_MESSAGE_BYTES = 32 * 1024
# Leaves room in the 200-character idempotency key for "segment:<source id>:".
MAX_MESSAGE_ID_LENGTH = 150
MAX_PERSON_ID_LENGTH = 200
MAX_KIND_LENGTH = 100

RECORDED_TYPES = ("track", "page", "screen")
# Accepted so that clients calling them get no error, but nothing is recorded.
IGNORED_TYPES = ("group",)
MESSAGE_TYPES = ("identify", *RECORDED_TYPES, *IGNORED_TYPES, "alias")
VIEWED_EVENT_NAMES = {"page": "page_viewed", "screen": "screen_viewed"}

# The context kept with an event. IP address, user agent, device, location,
# network and traits are personal data the hub has no use for, so they go.
KEPT_CONTEXT_KEYS = ("app", "library", "locale", "os", "timezone")
# Segment's context.campaign contains the UTM parameters of the product's page.
CAMPAIGN_FIELDS = {
    "source": "utm_source",
    "medium": "utm_medium",
    "name": "utm_campaign",
    "term": "utm_term",
    "content": "utm_content",
}
# The top-level fields a held message keeps. Its context is minimised too.
STORED_FIELDS = (
    "type",
    "messageId",
    "userId",
    "anonymousId",
    "event",
    "name",
    "category",
    "properties",
    "timestamp",
    "originalTimestamp",
    "sentAt",
    "receivedAt",
)


class InvalidBody(Exception):
    """The request body has the wrong shape, which the message describes."""


# The response explains at most this many skipped messages of a request.
MAX_REPORTED_ERRORS = 20

# The explanation and fix for each InvalidMessage reason, returned in the
# endpoint's response for skipped messages.
REASON_MESSAGES = {
    "not_an_object": "The message is not a JSON object.",
    "unstorable_text": (
        "The message contains a NUL character (\\u0000), an unpaired UTF-16 "
        "surrogate, or a non-finite number such as NaN, Infinity or 1e400, "
        "which cannot be stored. Remove it."
    ),
    "too_deep": (
        f"The message nests objects or lists more than {MAX_DEPTH} levels deep. "
        "Flatten its properties."
    ),
    "too_large": (
        f"The message is larger than {MAX_MESSAGE_BYTES} bytes of JSON. Send "
        "fewer or shorter properties."
    ),
    "unknown_type": f"type is missing or not one of {', '.join(MESSAGE_TYPES)}.",
    "invalid_message_id": (
        f"messageId is not a string of at most {MAX_MESSAGE_ID_LENGTH} characters."
    ),
    "missing_user_id": "The message has no userId or anonymousId. Give one.",
    "invalid_user_id": (
        f"userId or anonymousId is not a string or whole number of at most "
        f"{MAX_PERSON_ID_LENGTH} characters."
    ),
    "invalid_alias": (
        "The alias message needs both previousId and userId. Give the ID the "
        "person had before as previousId."
    ),
    "invalid_context": "context is not a JSON object.",
    "invalid_traits": "traits is not a JSON object.",
    "invalid_properties": "properties is not a JSON object.",
    "missing_event": "The track message has no event name. Give event.",
    "invalid_event_name": (
        "The event name has no letters or digits, starts with a digit, or is "
        f"longer than {MAX_KIND_LENGTH} characters with the source's prefix. "
        "Rename the event."
    ),
    "kind_not_for_integrations": (
        "The event kind, the source's event prefix followed by the event name, "
        "is registered for events the hub records itself, which integrations "
        "may not send. Rename the event."
    ),
    "invalid_event_prefix": (
        "The source's event prefix is not under a kind family registered for "
        "integrations. Set it in admin to a prefix under product.*."
    ),
    "invalid_timestamp": (
        "timestamp, originalTimestamp or sentAt is not an ISO 8601 time from "
        "2000 on. Send it as a string such as 2026-03-02T09:30:00.000Z."
    ),
}


class InvalidMessage(Exception):
    """A message the endpoint skips, with `reason` a short code for counting.

    `explanation` says what is wrong and how to fix it: REASON_MESSAGES's text
    for the code, unless the error names a value of its own.
    """

    def __init__(self, reason: str, explanation: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.explanation = explanation or REASON_MESSAGES[reason]


def list_integration_families() -> list[str]:
    """Return the sorted prefixes of kind families registered for integrations."""
    return sorted(
        kind.name.removesuffix(".*")
        for kind in registry.list_kinds()
        if kind.name.endswith(".*") and kind.from_integrations
    )


def is_integration_prefix(event_prefix: str, families: list[str]) -> bool:
    """Return whether the prefix is one of `families` or lies under one."""
    return any(
        event_prefix == family or event_prefix.startswith(f"{family}.")
        for family in families
    )


@dataclass(frozen=True)
class SegmentMessage:
    """One valid message, with the values the hub records from it."""

    type: str
    message_id: str
    user_id: str
    anonymous_id: str
    # From the traits, else the userId when that is an email address. It is
    # lower-cased, and empty when the message has no valid one.
    email: str
    # Empty for identify and the ignored types.
    kind: str
    occurred_at: datetime
    properties: dict
    attribution: dict[str, str]
    # The message minus personal context, kept while the message is held.
    stored: dict
    # An alias message's earlier userId or anonymousId, else empty.
    previous_id: str = ""

    @property
    def is_usage(self) -> bool:
        return self.type in RECORDED_TYPES


def expand_body(body: dict, *, message_type: str | None, received_at: datetime) -> list:
    """Return the messages of a request body, each completed from the envelope.

    With `message_type` None the body is a batch: its `batch` list contains the
    messages, and its top-level `context` and `sentAt` apply to each message
    that lacks its own. Otherwise the body is one message of that type. Every
    message gets `receivedAt`, and a `messageId` when it has none, so that a
    held copy parses the same way later. Items that are not objects are
    returned unchanged for `parse_message` to reject.
    """
    if message_type is None:
        items = body.get("batch")
        if not isinstance(items, list):
            raise InvalidBody('The body has no "batch" list of messages.')
        envelope_context = body.get("context")
        envelope_sent_at = body.get("sentAt")
    else:
        items = [{**body, "type": message_type}]
        envelope_context = None
        envelope_sent_at = None

    messages = []
    for item in items:
        if not isinstance(item, dict):
            messages.append(item)
            continue
        message = {key: value for key, value in item.items() if key != "writeKey"}
        context = message.get("context")
        if isinstance(envelope_context, dict) and isinstance(context, dict | None):
            message["context"] = {**envelope_context, **(context or {})}
        if envelope_sent_at is not None:
            message.setdefault("sentAt", envelope_sent_at)
        if not message.get("messageId"):
            message["messageId"] = f"rm6-{uuid4()}"
        message["receivedAt"] = received_at.isoformat()
        messages.append(message)
    return messages


def parse_message(message: object, *, event_prefix: str) -> SegmentMessage:
    """Check one message from `expand_body` and derive what the hub records.

    Raise InvalidMessage for a message to skip.
    """
    if not isinstance(message, dict):
        raise InvalidMessage("not_an_object")
    problem = find_unstorable(message)
    if problem == TOO_DEEP:
        raise InvalidMessage("too_deep")
    if problem is not None:
        raise InvalidMessage("unstorable_text")
    size = len(json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode())
    if size > MAX_MESSAGE_BYTES:
        raise InvalidMessage("too_large")
    message_type = message.get("type")
    if message_type not in MESSAGE_TYPES:
        raise InvalidMessage("unknown_type")

    message_id = message.get("messageId")
    if not isinstance(message_id, str) or len(message_id) > MAX_MESSAGE_ID_LENGTH:
        raise InvalidMessage("invalid_message_id")
    user_id = _person_id(message.get("userId"))
    anonymous_id = _person_id(message.get("anonymousId"))
    if not user_id and not anonymous_id:
        raise InvalidMessage("missing_user_id")
    previous_id = ""
    if message_type == "alias":
        previous_id = _person_id(message.get("previousId"))
        if not previous_id or not user_id:
            raise InvalidMessage("invalid_alias")
    context = _object(message.get("context"), reason="invalid_context")
    traits = _object(message.get("traits"), reason="invalid_traits")
    properties = _object(message.get("properties"), reason="invalid_properties")

    kind = ""
    if message_type in RECORDED_TYPES:
        kind = _event_kind(message, event_prefix=event_prefix)
        properties = _event_properties(message, properties, context)

    return SegmentMessage(
        type=message_type,
        message_id=message_id,
        user_id=user_id,
        anonymous_id=anonymous_id,
        email=(
            _email(traits)
            or _email(_object(context.get("traits")))
            or _email({"email": user_id})
        ),
        kind=kind,
        occurred_at=_occurred_at(message),
        properties=properties,
        attribution=_attribution(context),
        stored=_stored_message(message, context),
        previous_id=previous_id,
    )


def to_snake_case(name: str) -> str:
    """Return an event name in snake case: "Report Exported" -> report_exported.

    camelCase words are split, accents are dropped and every run of other
    characters becomes one underscore.
    """
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", text)
    text = re.sub(r"([a-z\d])([A-Z])", r"\1_\2", text)
    text = re.sub(r"[^A-Za-z\d]+", "_", text)
    return text.strip("_").lower()


def _person_id(value: object) -> str:
    if value is None:
        return ""
    # Segment accepts numbers as IDs; its clients send them as strings.
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or len(value) > MAX_PERSON_ID_LENGTH:
        raise InvalidMessage("invalid_user_id")
    return value.strip()


def _object(value: object, *, reason: str = "") -> dict:
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    if reason:
        raise InvalidMessage(reason)
    return {}


def _email(traits: dict) -> str:
    email = traits.get("email")
    if not isinstance(email, str):
        return ""
    email = email.strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        return ""
    return email


def _event_kind(message: dict, *, event_prefix: str) -> str:
    if message["type"] == "track":
        event = message.get("event")
        if not isinstance(event, str) or not event.strip():
            raise InvalidMessage("missing_event")
        name = to_snake_case(event)
    else:
        name = VIEWED_EVENT_NAMES[message["type"]]
    families = list_integration_families()
    if not is_integration_prefix(event_prefix, families):
        # Only possible when the prefix was changed outside the admin, which
        # checks it. Every usage message of the source is rejected until then.
        names = ", ".join(f"{family}.*" for family in families)
        raise InvalidMessage(
            "invalid_event_prefix",
            f"The source's event prefix {event_prefix!r} is not under a kind "
            "family registered for integrations, so no usage message of the "
            "source can be recorded. Set the source's event prefix in admin to "
            f"a prefix under {names}, for example {families[0]}.",
        )
    kind = f"{event_prefix}.{name}"
    if len(kind) > MAX_KIND_LENGTH or not registry.KIND_PATTERN.match(kind):
        raise InvalidMessage("invalid_event_name")
    # Every name under an integration family is registered, unless an app
    # registered that exact name for the hub's own events.
    registered = registry.get_kind(kind)
    if registered is None or not registered.from_integrations:
        raise InvalidMessage("kind_not_for_integrations")
    return kind


def _event_properties(message: dict, properties: dict, context: dict) -> dict:
    properties = dict(properties)
    if message["type"] in VIEWED_EVENT_NAMES:
        for field in ("name", "category"):
            if isinstance(message.get(field), str):
                properties.setdefault(field, message[field])
    kept = {key: context[key] for key in KEPT_CONTEXT_KEYS if key in context}
    page = _object(context.get("page"))
    if isinstance(page.get("path"), str):
        kept["page"] = {"path": page["path"]}
    # A property the product itself named "context" is kept as sent, and the
    # message's context is then left out.
    if kept and "context" not in properties:
        properties["context"] = kept
    return properties


def _parse_time(value: object) -> datetime:
    if not isinstance(value, str):
        raise InvalidMessage("invalid_timestamp")
    try:
        parsed = parse_datetime(value.strip())
    except ValueError:
        parsed = None
    if parsed is None:
        raise InvalidMessage("invalid_timestamp")
    # A time without an offset is read as UTC instead of losing the message.
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _occurred_at(message: dict) -> datetime:
    """Return when the action happened, by the rules of Segment's message spec.

    `timestamp` is used as sent. Without it, `originalTimestamp` (the
    device's clock) is corrected by the device's clock skew, receivedAt minus
    sentAt, when sentAt is known. Without either, the action happened when
    the message arrived. A time more than MAX_CLOCK_SKEW after arrival is
    replaced by the arrival time, so a device clock running ahead does not
    lose its events. A time before EARLIEST_OCCURRED_AT, which
    `ingest_events` rejects, and a correction past the range of datetime
    are invalid.
    """
    received_at = _parse_time(message.get("receivedAt"))
    if message.get("timestamp") is not None:
        occurred_at = _parse_time(message["timestamp"])
    elif message.get("originalTimestamp") is not None:
        occurred_at = _parse_time(message["originalTimestamp"])
        if message.get("sentAt") is not None:
            skew = received_at - _parse_time(message["sentAt"])
            try:
                occurred_at += skew
            except OverflowError:
                raise InvalidMessage("invalid_timestamp") from None
    else:
        occurred_at = received_at
    if occurred_at > received_at + MAX_CLOCK_SKEW:
        return received_at
    if occurred_at < EARLIEST_OCCURRED_AT:
        raise InvalidMessage("invalid_timestamp")
    return occurred_at


def _attribution(context: dict) -> dict[str, str]:
    """Return the attribution of the product page the message came from.

    The page's query string gives campaign_id, play_id and UTM parameters,
    and Segment's context.campaign, where present, takes precedence for UTM.
    """
    search = _object(context.get("page")).get("search")
    from_query = clean_attribution(_query_parameters(search))
    campaign = _object(context.get("campaign"))
    from_campaign = clean_attribution(
        {field: campaign.get(key) for key, field in CAMPAIGN_FIELDS.items()}
    )
    return {**from_query, **from_campaign}


def _query_parameters(search: object) -> dict[str, str]:
    if not isinstance(search, str):
        return {}
    parsed = parse_qs(search.removeprefix("?"))
    return {name: values[0] for name, values in parsed.items() if name in PARAMETERS}


def _stored_message(message: dict, context: dict) -> dict:
    """Return the message as it is held: known fields and minimised context."""
    stored = {field: message[field] for field in STORED_FIELDS if field in message}
    kept = {key: context[key] for key in KEPT_CONTEXT_KEYS if key in context}
    page = _object(context.get("page"))
    stored_page = {}
    if isinstance(page.get("path"), str):
        stored_page["path"] = page["path"]
    attribution_query = _query_parameters(page.get("search"))
    if attribution_query:
        stored_page["search"] = "?" + urlencode(attribution_query)
    if stored_page:
        kept["page"] = stored_page
    campaign = _object(context.get("campaign"))
    if campaign:
        kept["campaign"] = {
            key: campaign[key] for key in CAMPAIGN_FIELDS if key in campaign
        }
    email = _email(_object(context.get("traits")))
    if email:
        kept["traits"] = {"email": email}
    if kept:
        stored["context"] = kept
    return stored
