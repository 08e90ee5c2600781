from datetime import timedelta

import pytest

from apps.reporting.templatetags.reporting_format import duration


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ""),
        (timedelta(0), "0 minutes"),
        (timedelta(seconds=59), "0 minutes"),
        (timedelta(minutes=1), "1 minute"),
        (timedelta(hours=1), "1 hour"),
        (timedelta(hours=5, minutes=30), "5 hours 30 minutes"),
        (timedelta(days=1), "1 day"),
        (timedelta(days=3, hours=4, minutes=59), "3 days 4 hours"),
    ],
)
def test_duration_two_largest_units(value, expected):
    assert duration(value) == expected
