"""The HTTP side of the Segment-compatible endpoint.

Responses follow Segment's tracking API: 200 with `{"success": true}` once the
request is authenticated and readable, even when single messages in it were
invalid and skipped. The body adds counts of what the messages became and,
when messages were skipped, an `errors` list that explains the first ones by
their index in the request. Segment clients ignore both. Errors of the whole
request carry `code` and `message`, which Segment clients show in their error.
"""

import json
import logging
import sys
import zlib

from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from apps.lifecycle.ingestion.auth import (
    get_source_for_write_key,
    read_basic_auth_write_key,
)
from apps.lifecycle.ingestion.ingest import ingest_segment_messages
from apps.lifecycle.ingestion.limits import Rejection, take_allowance
from apps.lifecycle.ingestion.messages import InvalidBody, expand_body
from apps.lifecycle.models import SegmentSource
from apps.membership.services.data_sources import Source as DataSource
from apps.membership.services.data_sources import (
    describe_error,
    record_source_failure,
    segment_source_origin,
)

logger = logging.getLogger(__name__)

# Segment's API accepts at most 500 KB per batch request, and analytics-python
# 2.4 keeps its batches below that.
MAX_BODY_BYTES = 500 * 1024
# A gzip body may expand to at most this much JSON, which bounds the memory
# and work of one request.
MAX_DECOMPRESSED_BYTES = 5 * 1024 * 1024
# The first two bytes of every gzip stream.
GZIP_MAGIC = b"\x1f\x8b"
_MISSING_GZIP_HEADER = (
    "The body is gzip-compressed but has no Content-Encoding header. Send it "
    "with Content-Encoding: gzip."
)


class RequestError(Exception):
    def __init__(
        self, status: int, code: str, message: str, retry_after: int | None = None
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after


UNAUTHORIZED = RequestError(
    401,
    "unauthorized",
    "Invalid or missing write key. Send the source's write key as the user "
    "name of HTTP Basic authentication, or as writeKey in the body.",
)


# NOTE: requests with a wrong write key are not limited here; each costs one
# indexed lookup. A proxy in front can limit them by address.
@csrf_exempt
def receive(request: HttpRequest, message_type: str | None) -> JsonResponse:
    """Receive a batch (`message_type` None) or one message of that type."""
    if request.method != "POST":
        response = JsonResponse(
            {
                "success": False,
                "code": "method_not_allowed",
                "message": f"{request.method} is not allowed here. Send messages "
                "with POST, as Segment's libraries do.",
            },
            status=405,
        )
        response["Allow"] = "POST"
        return response
    received_at = timezone.now()
    source = None
    try:
        # A key in the Authorization header is checked before the body is
        # read, so a request with a wrong key costs no parsing.
        header_key = read_basic_auth_write_key(request)
        if header_key is not None:
            source = _get_active_source(header_key)
        body = _read_json_body(request)
        if source is None:
            source = _get_active_source(body.get("writeKey"))
        try:
            messages = expand_body(
                body, message_type=message_type, received_at=received_at
            )
        except InvalidBody as error:
            raise RequestError(400, "invalid_request", str(error)) from None
        rejection = take_allowance(source, len(messages))
        if rejection is not None:
            raise _rejected(source.name, len(messages), rejection)
    except RequestError as error:
        logger.info(
            "segment request rejected: status=%s code=%s", error.status, error.code
        )
        # Only a request with a valid write key counts as a failed run, so
        # that anyone without a key cannot write to the run row.
        if source is not None:
            record_source_failure(
                source=DataSource.USAGE_INGESTION,
                origin=segment_source_origin(source.pk),
                error=f"segment request rejected: {error.code}",
            )
        response = JsonResponse(
            {"success": False, "code": error.code, "message": error.message},
            status=error.status,
        )
        if error.status == 401:
            response["WWW-Authenticate"] = 'Basic realm="segment"'
        if error.retry_after is not None:
            response["Retry-After"] = str(error.retry_after)
        return response

    try:
        result = ingest_segment_messages(
            source=source, messages=messages, received_at=received_at
        )
    except Exception as error:
        record_source_failure(
            source=DataSource.USAGE_INGESTION,
            origin=segment_source_origin(source.pk),
            error=f"segment request failed: {describe_error(error)}",
        )
        raise
    body = {"success": True, **result.counts()}
    if result.errors:
        body["errors"] = result.errors
    return JsonResponse(body)


def _get_active_source(write_key: object) -> SegmentSource:
    """Return the active source of the write key, or raise RequestError.

    An inactive source's request records no failed run, because the data
    freshness panel leaves out inactive sources.
    """
    source = get_source_for_write_key(write_key)
    if source is None:
        raise UNAUTHORIZED
    if not source.is_active:
        logger.info("segment request rejected: source=%s is inactive", source.pk)
        # 403, not 401, because the key is valid but the source may not send.
        # Segment's analytics-python does not retry a 403, so a disabled
        # source's batches are not resent. Of the 4xx codes, its consumer
        # (segment/analytics/consumer.py on master) retries 408, 410, 429, 460.
        raise RequestError(
            403,
            "source_inactive",
            f"The write key belongs to Segment source “{source.name}”, which is "
            "inactive, so its messages are not accepted. Staff can reactivate it "
            "under Admin > Lifecycle > Segment sources by ticking “Is active”; "
            "otherwise send with the write key of an active source.",
        )
    return source


def _read_json_body(request: HttpRequest) -> dict:
    """Return the body as a JSON object, within the size limits."""
    try:
        declared_length = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        raise RequestError(
            400, "invalid_request", "The Content-Length header is not a number."
        ) from None
    if declared_length > MAX_BODY_BYTES:
        raise _too_large()
    raw = request.read(MAX_BODY_BYTES + 1)
    if len(raw) > MAX_BODY_BYTES:
        raise _too_large()

    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding == "gzip":
        raw = _gunzip(raw)
    elif encoding not in ("", "identity"):
        raise RequestError(
            415,
            "unsupported_encoding",
            f"Content-Encoding {encoding!r} is not supported. Send the body "
            "uncompressed or with gzip.",
        )

    if not raw.strip():
        raise RequestError(
            400,
            "invalid_json",
            "The body is empty. Send a JSON object: the message, or on "
            '/v1/batch an object with a "batch" list of messages.',
        )
    try:
        body = json.loads(raw)
    except UnicodeDecodeError as error:
        # json.loads detects UTF-16 and UTF-32 from the first bytes, so the
        # encoding it tried may be one of those.
        message = (
            f"The body is not valid {error.encoding.upper()} text: the byte at "
            f"offset {error.start} cannot be decoded. Encode the body as UTF-8."
        )
        if raw.startswith(GZIP_MAGIC):
            message = _MISSING_GZIP_HEADER
        raise RequestError(400, "invalid_json", message) from None
    except ValueError as error:
        message = "The body is not valid JSON."
        if raw.startswith(GZIP_MAGIC):
            message = _MISSING_GZIP_HEADER
        elif "int_max_str_digits" in str(error):
            message = (
                f"The body has a number of more than {sys.get_int_max_str_digits()} "
                "digits, which is not read. Send it as a string."
            )
        raise RequestError(400, "invalid_json", message) from None
    except RecursionError:
        raise RequestError(
            400, "invalid_json", "The body is nested too deeply to read."
        ) from None
    if not isinstance(body, dict):
        raise RequestError(400, "invalid_json", "The body is not a JSON object.")
    return body


def _gunzip(raw: bytes) -> bytes:
    decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        data = decompressor.decompress(raw, MAX_DECOMPRESSED_BYTES + 1)
    except zlib.error:
        raise RequestError(
            400, "invalid_gzip", "The body is not valid gzip data."
        ) from None
    if len(data) > MAX_DECOMPRESSED_BYTES:
        raise RequestError(
            413,
            "request_too_large",
            f"The decompressed body exceeds {MAX_DECOMPRESSED_BYTES} bytes. "
            "Send fewer messages per batch.",
        )
    if not decompressor.eof:
        raise RequestError(400, "invalid_gzip", "The gzip data is truncated.")
    return data


def _rejected(source_name: str, count: int, rejection: Rejection) -> RequestError:
    if rejection.is_too_large:
        return RequestError(
            413,
            "request_too_large",
            f"The request holds {count} messages, more than the "
            f"{rejection.limit} a source may send per minute. Send smaller batches.",
        )
    return RequestError(
        429,
        "rate_limited",
        f"Source “{source_name}” may send {rejection.limit} messages a minute, "
        f"and the {count} of this request would exceed that. Send the request "
        f"again in {rejection.retry_after} seconds.",
        retry_after=rejection.retry_after,
    )


def _too_large() -> RequestError:
    return RequestError(
        413,
        "request_too_large",
        f"The body exceeds {MAX_BODY_BYTES} bytes. Send fewer messages per batch.",
    )
