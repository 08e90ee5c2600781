from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from rm6.errors import DomainError


def exception_handler(exc, context):
    """Map DomainError to a 400 response; leave everything else to DRF."""
    if isinstance(exc, DomainError):
        key = exc.field or "detail"
        return Response(
            {key: [exc.message], "code": exc.code}, status=status.HTTP_400_BAD_REQUEST
        )
    return drf_exception_handler(exc, context)
