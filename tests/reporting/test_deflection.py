from datetime import date

import pytest

from apps.membership.models import Account
from apps.portal.models import CaseAttempt
from apps.reporting.selectors.portal import get_case_deflection
from tests.reporting.factories import CaseAttemptFactory, at

START = date(2025, 3, 1)
END = date(2025, 3, 31)
DEFLECTED = CaseAttempt.Outcome.DEFLECTED
NOT_DEFLECTED = CaseAttempt.Outcome.NOT_DEFLECTED
PENDING = CaseAttempt.Outcome.PENDING


def deflection_total():
    return get_case_deflection(start=START, end=END).total


def test_deflection_rate_leaves_pending_out(db):
    for outcome in (DEFLECTED, DEFLECTED, DEFLECTED, NOT_DEFLECTED, PENDING):
        CaseAttemptFactory(outcome=outcome)

    total = deflection_total()

    assert total.attempts == 5
    assert total.deflected == 3
    assert total.not_deflected == 1
    assert total.pending == 1
    assert total.rate.total == 4
    assert total.rate.value == pytest.approx(0.75)
    assert total.pending_share.value == pytest.approx(0.2)


def test_deflection_only_pending_is_no_data(db):
    CaseAttemptFactory(outcome=PENDING)

    total = deflection_total()

    assert total.attempts == 1
    assert total.rate.value is None


def test_deflection_window_start_included(db):
    CaseAttemptFactory(outcome=DEFLECTED, started_at=at(2025, 3, 1))

    assert deflection_total().deflected == 1


def test_deflection_window_end_excluded(db):
    CaseAttemptFactory(outcome=DEFLECTED, started_at=at(2025, 3, 31))
    CaseAttemptFactory(outcome=DEFLECTED, started_at=at(2025, 2, 28, 23, 59, 59))
    CaseAttemptFactory(outcome=NOT_DEFLECTED, started_at=at(2025, 3, 30, 23, 59, 59))

    total = deflection_total()

    assert total.attempts == 1
    assert total.rate.value == 0


def test_deflection_by_segment_when_started(db):
    attempt = CaseAttemptFactory(
        outcome=DEFLECTED, member__account__segment=Account.Segment.SMB
    )
    # The account moved to enterprise after the attempt; the attempt keeps smb.
    Account.objects.filter(pk=attempt.member.account_id).update(
        segment=Account.Segment.ENTERPRISE
    )
    CaseAttemptFactory(
        outcome=NOT_DEFLECTED, member__account__segment=Account.Segment.SMB
    )
    CaseAttemptFactory(outcome=DEFLECTED, member__account=None)

    segments = get_case_deflection(start=START, end=END).segments
    rows = {row.label: row for row in segments}

    assert rows["SMB"].rate.percent == 50.0
    assert rows["Enterprise"].attempts == 0
    assert rows["No account"].deflected == 1
    assert rows["No account"].rate.percent == 100.0


def test_deflection_no_attempts_is_no_data(db):
    total = deflection_total()

    assert total.attempts == 0
    assert total.rate.value is None
    assert total.pending_share.value is None
