"""Cursor pagination shared by every API list.

Every cursor-paginated view subclasses `CursorPagination` from this module
and never DRF's class directly, so that a cursor with an unusable position
gets a 404 that names the parameter instead of a server error.
"""

import decimal

from django.core.exceptions import ValidationError
from rest_framework import pagination
from rest_framework.exceptions import NotFound
from rest_framework.exceptions import ValidationError as RequestValidationError

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

    def get_page_size(self, request):
        """Return the requested page size, capped at `max_page_size` as in DRF.

        Raise a 400 that names the value when it is not a positive whole
        number, where DRF would silently use the default size.
        """
        parameter = self.page_size_query_param
        raw_size = request.query_params.get(parameter, "") if parameter else ""
        if raw_size == "":
            return self.page_size
        try:
            size = int(raw_size)
        except ValueError:
            size = 0
        if size < 1:
            maximum = self.max_page_size or "any larger number"
            raise RequestValidationError(
                {
                    parameter: [
                        f"Invalid {parameter} {raw_size!r}: use a whole number "
                        f"from 1 to {maximum}."
                    ]
                }
            )
        if self.max_page_size:
            return min(size, self.max_page_size)
        return size

    def paginate_queryset(self, queryset, request, view=None):
        try:
            return super().paginate_queryset(queryset, request, view=view)
        except INVALID_POSITION_ERRORS as error:
            if request.query_params.get(self.cursor_query_param) is None:
                raise
            raise NotFound(self.invalid_cursor_message) from error
