import pytest

from tests.reporting.factories import build_portal_rows


@pytest.fixture
def portal_rows(db):
    build_portal_rows(2)
