"""Cursor pagination shared by every API list.

Every cursor-paginated view subclasses `CursorPagination` from this module
and never DRF's class directly, so that a cursor with an unusable position
gets a 404 that names the parameter instead of a server error.
"""

import decimal

from django.core.exceptions import ValidationError
from rest_framework import pagination
from rest_framework.exceptions import NotFound

INVALID_CURSOR_MESSAGE = (
    "Invalid cursor: use the next or previous link from a response, or leave "
    "out the cursor parameter to start at the first page."
)

# Errors that a position of the wrong type raises inside `paginate_queryset`:
# ValueError or TypeError for an integer field, ValidationError for a date,
# time, UUID or decimal field, and OverflowError or InvalidOperation from
# numeric conversions. The handler covers building the filter and running it.
INVALID_POSITION_ERRORS = (
    ValueError,
    TypeError,
    OverflowError,
    ValidationError,
    decimal.InvalidOperation,
)


class CursorPagination(pagination.CursorPagination):
    """DRF's cursor pagination with a 404, not a 500, for an unusable position.

    DRF decodes the cursor's position (`p`) as a string and only uses it in
    the queryset filter, so a position that does not fit the ordering field
    fails inside `paginate_queryset`. A request without a cursor re-raises
    such errors unchanged, because then the cursor did not cause them.
    """

    invalid_cursor_message = INVALID_CURSOR_MESSAGE

    def paginate_queryset(self, queryset, request, view=None):
        try:
            return super().paginate_queryset(queryset, request, view=view)
        except INVALID_POSITION_ERRORS as error:
            if request.query_params.get(self.cursor_query_param) is None:
                raise
            raise NotFound(self.invalid_cursor_message) from error
