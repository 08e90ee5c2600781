import base64
import gzip
import json

from django.utils import timezone

MESSAGE_TIME = "2026-03-02T09:30:00.000+00:00"


def basic_auth(write_key: str) -> str:
    """Return the Authorization header value Segment clients send."""
    credentials = base64.b64encode(f"{write_key}:".encode()).decode()
    return f"Basic {credentials}"


def track(message_id: str, *, user_id="u-1", event="Report Exported", **fields):
    """Return a track message as Segment clients build it."""
    message = {
        "type": "track",
        "messageId": message_id,
        "userId": user_id,
        "event": event,
        "properties": {"format": "csv"},
        "timestamp": MESSAGE_TIME,
        "context": {"library": {"name": "analytics-python", "version": "2.4.0"}},
    }
    message.update(fields)
    return message


def identify(message_id: str, *, user_id="u-1", email=None, **fields):
    """Return an identify message, with the email as a trait when given."""
    message = {
        "type": "identify",
        "messageId": message_id,
        "userId": user_id,
        "traits": {"email": email} if email else {},
        "timestamp": MESSAGE_TIME,
    }
    message.update(fields)
    return message


def post_batch(client, write_key, messages, *, path="/v1/batch", **extra):
    """POST a batch body with the write key in the Authorization header."""
    body = {"batch": messages, "sentAt": timezone.now().isoformat()}
    return post_json(client, path, body, write_key=write_key, **extra)


def post_json(client, path, body, *, write_key=None, compress=False, **extra):
    data = json.dumps(body).encode()
    if compress:
        data = gzip.compress(data)
        extra["HTTP_CONTENT_ENCODING"] = "gzip"
    if write_key is not None:
        extra["HTTP_AUTHORIZATION"] = basic_auth(write_key)
    return client.generic("POST", path, data, content_type="application/json", **extra)
