"""Fixtures of the deflection tests."""

import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _empty_cache():
    """Start every test with an empty cache.

    Suggestions are cached by text and viewer, and the search log limits
    itself per member and query; Redis outlives the test database, whose ids
    start again at every run.
    """
    cache.clear()
    yield
    cache.clear()
