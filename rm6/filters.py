"""Date and time query filters whose errors name the value and the format."""

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django_filters.fields import IsoDateTimeField


class _IsoDateTimeField(IsoDateTimeField):
    def to_python(self, value):
        try:
            return super().to_python(value)
        except ValidationError:
            raise ValidationError(
                f"Invalid date and time {value!r}: use ISO 8601, for example "
                "2025-06-02T09:15:00Z.",
                code="invalid",
            ) from None


class _DateField(forms.DateField):
    def to_python(self, value):
        try:
            return super().to_python(value)
        except ValidationError:
            raise ValidationError(
                f"Invalid date {value!r}: use YYYY-MM-DD, for example 2025-06-02.",
                code="invalid",
            ) from None


class IsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    """An ISO 8601 date and time filter; an invalid value gets a 400 naming it."""

    field_class = _IsoDateTimeField


class DateFilter(django_filters.DateFilter):
    """A date filter; an invalid value gets a 400 naming it."""

    field_class = _DateField
