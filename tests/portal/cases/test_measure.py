"""The open_cases scorecard measure, at member and account level."""

from django.utils import timezone

from apps.lifecycle.models import (
    AccountHealthScore,
    HealthScore,
    Scorecard,
    ScorecardMeasure,
)
from apps.lifecycle.scoring import (
    refresh_account_health_scores,
    refresh_member_health_scores,
)
from apps.portal.models import Case
from tests import factories
from tests.portal.cases.factories import CaseFactory


def use_open_cases_scorecard(level: str) -> None:
    Scorecard.objects.filter(level=level, is_active=True).update(is_active=False)
    scorecard = Scorecard.objects.create(
        name=f"Support {level}", level=level, is_active=True
    )
    ScorecardMeasure.objects.create(
        scorecard=scorecard,
        kind=ScorecardMeasure.Kind.OPEN_CASES,
        label="Open cases",
        weight=1,
        window_days=30,
        zero_at=4,
        full_at=0,
        position=0,
    )


def test_member_open_cases_counts_new_open_and_waiting(db):
    use_open_cases_scorecard("member")
    member = factories.MemberFactory()
    for status in ["new", "open", "waiting", "solved", "closed"]:
        CaseFactory(member=member, status=status)
    CaseFactory(status="open")  # someone else's

    refresh_member_health_scores(member_ids=[member.pk], now=timezone.now())

    score = HealthScore.objects.get(member=member)
    assert score.components["open_cases"]["value"] == 3
    assert score.score == 25


def test_member_without_cases_scores_full(db):
    use_open_cases_scorecard("member")
    member = factories.MemberFactory()

    refresh_member_health_scores(member_ids=[member.pk], now=timezone.now())

    score = HealthScore.objects.get(member=member)
    assert score.components["open_cases"]["value"] == 0
    assert score.score == 100


def test_account_open_cases_counts_cases_filed_under_it(db):
    use_open_cases_scorecard("account")
    account = factories.AccountFactory()
    first = factories.MemberFactory(account=account)
    second = factories.MemberFactory(account=account)
    CaseFactory(member=first, status=Case.Status.OPEN)
    CaseFactory(member=second, status=Case.Status.WAITING)
    CaseFactory(member=second, status=Case.Status.CLOSED)
    CaseFactory(status=Case.Status.OPEN)  # another account's

    refresh_account_health_scores(account_ids=[account.pk], now=timezone.now())

    score = AccountHealthScore.objects.get(account=account)
    assert score.components["open_cases"]["value"] == 2
    assert score.score == 50
