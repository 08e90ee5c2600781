from datetime import UTC, date, datetime

import pytest

from apps.portal.models import CaseAttempt
from apps.reporting.selectors.portal import DEFAULT_VALUE_MOMENT_KIND
from tests import factories
from tests.reporting.factories import (
    ArticleFactory,
    CaseAttemptFactory,
    CaseFactory,
    CourseEnrolmentFactory,
    at,
)

WINDOW = {"start": "2025-03-01", "end": "2025-03-31"}


def build_portal_rows(count: int) -> None:
    """Create `count` members, each with one row of every KPI, in WINDOW.

    Each member's account starts its contract on 5 March and the member
    reaches the value moment a day after signing in; every case is rated 5,
    every enrolment completed, every attempt deflected, every article fresh.
    """
    for _ in range(count):
        member = factories.MemberFactory(
            first_signed_in_at=at(2025, 3, 5),
            account__contract_start=date(2025, 3, 5),
        )
        factories.ActivityEventFactory(
            member=member, kind=DEFAULT_VALUE_MOMENT_KIND, occurred_at=at(2025, 3, 6)
        )
        CaseFactory(member=member, csat_score=5, csat_rated_at=at(2025, 3, 10))
        CourseEnrolmentFactory(member=member, completed_at=at(2025, 3, 12))
        CaseAttemptFactory(member=member, outcome=CaseAttempt.Outcome.DEFLECTED)
        ArticleFactory(reviewed_on=datetime.now(UTC).date())


@pytest.fixture
def portal_rows(db):
    build_portal_rows(2)
