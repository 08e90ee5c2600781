from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from rest_framework import status
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
    return drf_exception_handler(exc, context)
