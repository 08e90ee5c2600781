"""Deflection outcomes: the 24-hour window, "this solved my problem", and a
case filed after a suggestion."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.portal.models import CaseAttempt
from apps.portal.services.deflection import (
    attach_case,
    classify_attempts,
    mark_suggestion_solved,
)
from tests.portal.knowledge.factories import (
    DAY,
    make_attempt,
    make_case,
    make_suggestion,
)

pytestmark = pytest.mark.django_db
SECOND = timedelta(seconds=1)


def _opened_attempt(*, started_at):
    attempt = make_attempt(started_at=started_at)
    make_suggestion(attempt=attempt, opened_at=started_at + SECOND)
    return attempt


def _outcome(attempt) -> str:
    attempt.refresh_from_db()
    return attempt.outcome


def test_classify_opened_at_23_59_59_stays_pending():
    now = timezone.now()
    attempt = _opened_attempt(started_at=now - (DAY - SECOND))

    classify_attempts(now=now)

    assert _outcome(attempt) == CaseAttempt.Outcome.PENDING


def test_classify_opened_at_24_00_00_deflected():
    now = timezone.now()
    attempt = _opened_attempt(started_at=now - DAY)

    classify_attempts(now=now)

    assert _outcome(attempt) == CaseAttempt.Outcome.DEFLECTED


def test_classify_nothing_opened_at_23_59_59_stays_pending():
    now = timezone.now()
    attempt = make_attempt(started_at=now - (DAY - SECOND))
    make_suggestion(attempt=attempt)

    classify_attempts(now=now)

    assert _outcome(attempt) == CaseAttempt.Outcome.PENDING


def test_classify_nothing_opened_at_24_00_00_not_deflected():
    now = timezone.now()
    attempt = make_attempt(started_at=now - DAY)
    make_suggestion(attempt=attempt)

    classify_attempts(now=now)

    assert _outcome(attempt) == CaseAttempt.Outcome.NOT_DEFLECTED


def test_classify_rerun_changes_nothing():
    now = timezone.now()
    _opened_attempt(started_at=now - DAY)
    make_attempt(started_at=now - DAY)

    first = classify_attempts(now=now)
    second = classify_attempts(now=now)

    assert (first.deflected, first.not_deflected) == (1, 1)
    assert (second.deflected, second.not_deflected) == (0, 0)


def test_classify_settles_only_pending():
    now = timezone.now()
    attempt = _opened_attempt(started_at=now - 2 * DAY)
    CaseAttempt.objects.filter(pk=attempt.pk).update(
        outcome=CaseAttempt.Outcome.NOT_DEFLECTED
    )

    classify_attempts(now=now)

    assert _outcome(attempt) == CaseAttempt.Outcome.NOT_DEFLECTED


def test_helpful_click_deflects_at_once():
    attempt = make_attempt()
    suggestion = make_suggestion(attempt=attempt)

    mark_suggestion_solved(suggestion=suggestion)

    attempt.refresh_from_db()
    suggestion.refresh_from_db()
    assert attempt.outcome == CaseAttempt.Outcome.DEFLECTED
    assert attempt.solved_by_suggestion_at is not None
    assert suggestion.helpful_at is not None
    assert suggestion.opened_at is not None


def test_helpful_click_then_case_not_deflected():
    attempt = make_attempt()
    suggestion = make_suggestion(attempt=attempt)
    mark_suggestion_solved(suggestion=suggestion)

    attach_case(attempt_id=attempt.pk, case=make_case(member=attempt.member))
    classify_attempts()

    assert _outcome(attempt) == CaseAttempt.Outcome.NOT_DEFLECTED


def test_case_after_opened_suggestion_not_deflected():
    started_at = timezone.now() - timedelta(hours=1)
    attempt = _opened_attempt(started_at=started_at)

    case = make_case(
        member=attempt.member, created_at=started_at + timedelta(minutes=5)
    )
    attach_case(attempt_id=attempt.pk, case=case)
    classify_attempts(now=started_at + 2 * DAY)

    assert _outcome(attempt) == CaseAttempt.Outcome.NOT_DEFLECTED


def test_case_at_23_59_59_not_deflected():
    started_at = timezone.now() - 2 * DAY
    attempt = _opened_attempt(started_at=started_at)

    case = make_case(member=attempt.member, created_at=started_at + DAY - SECOND)
    attach_case(attempt_id=attempt.pk, case=case)

    assert _outcome(attempt) == CaseAttempt.Outcome.NOT_DEFLECTED


def test_case_at_24_00_00_keeps_deflection():
    started_at = timezone.now() - 2 * DAY
    attempt = _opened_attempt(started_at=started_at)

    case = make_case(member=attempt.member, created_at=started_at + DAY)
    attach_case(attempt_id=attempt.pk, case=case)

    assert _outcome(attempt) == CaseAttempt.Outcome.DEFLECTED


def test_case_at_24_00_00_without_opening_not_deflected():
    started_at = timezone.now() - 2 * DAY
    attempt = make_attempt(started_at=started_at)

    case = make_case(member=attempt.member, created_at=started_at + DAY)
    attach_case(attempt_id=attempt.pk, case=case)

    assert _outcome(attempt) == CaseAttempt.Outcome.NOT_DEFLECTED


def test_classify_case_in_window_not_deflected():
    # A case tied to the attempt without attach_case, for example by an import.
    now = timezone.now()
    attempt = _opened_attempt(started_at=now - 2 * DAY)
    case = make_case(member=attempt.member, created_at=attempt.started_at + SECOND)
    case.attempt = attempt
    case.save(update_fields=["attempt"])

    classify_attempts(now=now)

    assert _outcome(attempt) == CaseAttempt.Outcome.NOT_DEFLECTED
