"""Date and time query filters whose errors name the value and the format."""

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django_filters.fields import IsoDateTimeField


class _ValueNamingMixin:
    """Replace a form field's invalid-value error with `invalid_message`.

    The message is formatted with the value as `value`.
    """

    invalid_message = ""

    def to_python(self, value):
        try:
            return super().to_python(value)
        except ValidationError:
            raise ValidationError(
                self.invalid_message.format(value=value), code="invalid"
            ) from None


class _IsoDateTimeField(_ValueNamingMixin, IsoDateTimeField):
    invalid_message = (
        "Invalid date and time {value!r}: use ISO 8601, for example "
        "2025-06-02T09:15:00Z."
    )


class _DateField(_ValueNamingMixin, forms.DateField):
    invalid_message = "Invalid date {value!r}: use YYYY-MM-DD, for example 2025-06-02."


class IsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    """An ISO 8601 date and time filter; an invalid value gets a 400 naming it."""

    field_class = _IsoDateTimeField


class DateFilter(django_filters.DateFilter):
    """A date filter; an invalid value gets a 400 naming it."""

    field_class = _DateField
