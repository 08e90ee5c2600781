from datetime import date

import pytest

from apps.membership.models import Account
from apps.reporting.selectors.portal import get_course_completion
from tests.reporting.factories import CourseEnrolmentFactory, at

START = date(2025, 3, 1)
END = date(2025, 3, 31)


def completion_total():
    return get_course_completion(start=START, end=END).total


def test_course_completion_rate(db):
    CourseEnrolmentFactory(completed_at=at(2025, 3, 12))
    CourseEnrolmentFactory(completed_at=at(2025, 3, 20))
    CourseEnrolmentFactory(completed_at=None)

    total = completion_total()

    assert total.started == 3
    assert total.completed == 2
    assert total.rate.value == pytest.approx(2 / 3)
    assert total.rate.percent == 66.7


def test_course_completion_after_window_counts(db):
    CourseEnrolmentFactory(started_at=at(2025, 3, 30, 22), completed_at=at(2025, 4, 15))

    assert completion_total().completed == 1


def test_course_completion_window_start_included(db):
    CourseEnrolmentFactory(started_at=at(2025, 3, 1))

    assert completion_total().started == 1


def test_course_completion_window_end_excluded(db):
    CourseEnrolmentFactory(started_at=at(2025, 3, 31), completed_at=at(2025, 4, 1))
    CourseEnrolmentFactory(
        started_at=at(2025, 2, 28, 23, 59, 59), completed_at=at(2025, 3, 2)
    )
    CourseEnrolmentFactory(started_at=at(2025, 3, 30, 23, 59, 59))

    total = completion_total()

    assert total.started == 1
    assert total.completed == 0
    assert total.rate.value == 0


def test_course_completion_by_segment(db):
    CourseEnrolmentFactory(
        member__account__segment=Account.Segment.SMB, completed_at=at(2025, 3, 11)
    )
    CourseEnrolmentFactory(member__account__segment=Account.Segment.SMB)
    CourseEnrolmentFactory(member__account=None, completed_at=at(2025, 3, 11))

    rows = {
        row.label: row for row in get_course_completion(start=START, end=END).segments
    }

    assert rows["SMB"].rate.percent == 50.0
    assert rows["Mid-market"].rate.value is None
    assert rows["No account"].rate.percent == 100.0


def test_course_completion_no_enrolments_is_no_data(db):
    total = completion_total()

    assert total.started == 0
    assert total.rate.value is None
