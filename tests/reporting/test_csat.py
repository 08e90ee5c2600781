from datetime import date

import pytest

from apps.membership.models import Account
from apps.portal.models import Case
from apps.reporting.selectors.portal import get_csat
from tests.reporting.factories import CaseFactory, at

START = date(2025, 3, 1)
END = date(2025, 3, 31)
IN_WINDOW = at(2025, 3, 10)


def rated(score, when=IN_WINDOW, **kwargs):
    return CaseFactory(csat_score=score, csat_rated_at=when, **kwargs)


def csat_total():
    return get_csat(start=START, end=END).total


def test_csat_mean_and_satisfied_share(db):
    for score in (5, 4, 3, 1):
        rated(score)

    total = csat_total()

    assert total.rated == 4
    assert total.mean_score == pytest.approx(13 / 4)
    assert total.satisfied == 2
    assert total.satisfied_share.value == pytest.approx(0.5)


def test_csat_three_is_not_satisfied_four_is(db):
    rated(3)
    rated(4)

    assert csat_total().satisfied == 1


def test_csat_window_start_included(db):
    rated(5, when=at(2025, 3, 1))

    assert csat_total().rated == 1


def test_csat_window_end_excluded(db):
    rated(5, when=at(2025, 3, 31))
    rated(1, when=at(2025, 2, 28, 23, 59, 59))
    rated(2, when=at(2025, 3, 30, 23, 59, 59))

    total = csat_total()

    assert total.rated == 1
    assert total.mean_score == 2


def test_csat_solved_counts_reopened_does_not(db):
    rated(5, status=Case.Status.SOLVED)
    rated(1, status=Case.Status.OPEN)
    rated(1, status=Case.Status.WAITING)

    total = csat_total()

    assert total.rated == 1
    assert total.mean_score == 5


def test_csat_unrated_closed_case_ignored(db):
    CaseFactory(csat_score=None, csat_rated_at=None)
    rated(4)

    assert csat_total().rated == 1


def test_csat_by_segment(db):
    rated(5, member__account__segment=Account.Segment.SMB)
    rated(2, member__account__segment=Account.Segment.SMB)
    rated(4, member__account__segment=Account.Segment.ENTERPRISE)
    rated(1, member__account=None)

    rows = {row.label: row for row in get_csat(start=START, end=END).segments}

    assert rows["SMB"].mean_score == pytest.approx(3.5)
    assert rows["SMB"].satisfied == 1
    assert rows["Mid-market"].mean_score is None
    assert rows["Enterprise"].satisfied_share.percent == 100.0
    assert rows["No account"].rated == 1


def test_csat_no_rated_cases_is_no_data(db):
    total = csat_total()

    assert total.rated == 0
    assert total.mean_score is None
    assert total.satisfied_share.value is None
    assert total.satisfied_share.percent is None
