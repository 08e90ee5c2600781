import sys

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from rest_framework import status
from rest_framework.exceptions import ParseError, UnsupportedMediaType
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from rm6.errors import DomainError

STAFF_ONLY_MESSAGE = (
    "This endpoint is for staff users. Send a staff user's token, or sign in "
    "as a staff user."
)


class IsStaffUser(IsAdminUser):
    """Allow staff users only, and tell anyone else that it takes a staff user."""

    message = STAFF_ONLY_MESSAGE


def exception_handler(exc, context):
    """Map DomainError and unreadable bodies to JSON errors; else use DRF's."""
    if isinstance(exc, RequestDataTooBig):
        return Response(
            {
                "detail": f"The request body exceeds "
                f"{settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes. Send smaller batches.",
                "code": "request_too_large",
            },
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    if isinstance(exc, RecursionError):
        return Response(
            {"detail": "The body is nested too deeply to read.", "code": "parse_error"},
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, DomainError):
        key = exc.field or "detail"
        return Response(
            {key: [exc.message], "code": exc.code}, status=status.HTTP_400_BAD_REQUEST
        )
    if isinstance(exc, UnsupportedMediaType):
        return _unsupported_media_type(exc, context)
    if isinstance(exc, ParseError):
        return _parse_error(exc)
    return drf_exception_handler(exc, context)


def _unsupported_media_type(exc: UnsupportedMediaType, context: dict) -> Response:
    """Return a 415 that names the content types the view reads."""
    view = context.get("view")
    parsers = view.get_parsers() if view is not None else []
    accepted = ", ".join(parser.media_type for parser in parsers)
    return Response(
        {
            "detail": f"{exc.detail} Send the body as one of these content "
            f"types: {accepted}.",
            "code": "unsupported_media_type",
        },
        status=status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
    )


def _parse_error(exc: ParseError) -> Response:
    """Return a 400 that explains why the body is unreadable and what to change.

    For a number of over 4,300 digits, DRF's text asks the reader to raise a
    Python limit on the server, and a compressed body shows up as a UTF-8
    decoding error.
    """
    detail = str(exc.detail)
    if "int_max_str_digits" in detail:
        detail = (
            "JSON parse error - a number has more digits than Python reads "
            f"({sys.get_int_max_str_digits()}). Send it as a string."
        )
    elif "codec can't decode" in detail:
        detail = (
            f"{detail}. Send the body as UTF-8 JSON; this endpoint does not "
            "read compressed bodies."
        )
    return Response(
        {"detail": detail, "code": "parse_error"}, status=status.HTTP_400_BAD_REQUEST
    )
