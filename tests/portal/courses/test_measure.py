from datetime import timedelta

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
from apps.portal.models import CourseEnrolment
from tests import factories
from tests.portal.courses import factories as cf


def use_course_scorecard(level: str) -> None:
    Scorecard.objects.filter(level=level, is_active=True).update(is_active=False)
    scorecard = Scorecard.objects.create(name="Courses", level=level, is_active=True)
    ScorecardMeasure.objects.create(
        scorecard=scorecard,
        kind=ScorecardMeasure.Kind.COURSE_COMPLETIONS,
        label="Courses",
        window_days=30,
        weight=1,
        zero_at=0,
        full_at=4,
    )


def complete(member, *, days_ago: float, now) -> None:
    CourseEnrolment.objects.create(
        member=member,
        course=cf.CourseFactory(),
        started_at=now - timedelta(days=days_ago + 1),
        completed_at=now - timedelta(days=days_ago),
    )


def test_course_completions_counts_window_for_member(db):
    use_course_scorecard("member")
    member = factories.MemberFactory()
    now = timezone.now()
    complete(member, days_ago=1, now=now)
    complete(member, days_ago=29, now=now)
    complete(member, days_ago=31, now=now)
    cf.enrol(member, cf.CourseFactory())

    refresh_member_health_scores(member_ids=[member.pk], now=now)

    score = HealthScore.objects.get(member=member)
    assert score.components["courses"]["value"] == 2
    assert score.score == 50


def test_course_completions_without_any_is_zero(db):
    use_course_scorecard("member")
    member = factories.MemberFactory()

    refresh_member_health_scores(member_ids=[member.pk], now=timezone.now())

    score = HealthScore.objects.get(member=member)
    assert score.components["courses"]["value"] == 0


def test_course_completions_sums_account_members(db):
    use_course_scorecard("account")
    account = factories.AccountFactory()
    first = factories.MemberFactory(account=account)
    second = factories.MemberFactory(account=account)
    deactivated = factories.MemberFactory(
        account=account, deactivated_at=timezone.now()
    )
    now = timezone.now()
    complete(first, days_ago=2, now=now)
    complete(second, days_ago=3, now=now)
    complete(second, days_ago=40, now=now)
    complete(deactivated, days_ago=2, now=now)

    refresh_account_health_scores(account_ids=[account.pk], now=now)

    score = AccountHealthScore.objects.get(account=account)
    assert score.components["courses"]["value"] == 2
