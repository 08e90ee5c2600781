import pytest
from django.utils import timezone

from apps.lifecycle.models import HealthScore, ScorecardMeasure
from apps.lifecycle.scoring import refresh_member_health_scores
from apps.membership.exports import build_member_export
from apps.membership.models import Member
from apps.membership.services.merge import merge_members
from apps.portal.hooks.onboarding import check_value_moment_kind
from apps.portal.models import OnboardingProgress, PathCompletion
from apps.portal.services.onboarding import mark_step_done, sync_member_progress
from tests import factories
from tests.lifecycle.test_scorecards import use_scorecard
from tests.portal.onboarding.factories import (
    EventStepFactory,
    HubFactory,
    ManualStepFactory,
    PathFactory,
    visit_step,
)

pytestmark = pytest.mark.django_db


def onboarding_value(member) -> float | None:
    use_scorecard(
        "member",
        {
            "kind": ScorecardMeasure.Kind.ONBOARDING_SHARE,
            "label": "Onboarding",
            "zero_at": 0,
            "full_at": 100,
        },
    )
    refresh_member_health_scores(member_ids=[member.pk], now=timezone.now())
    return HealthScore.objects.get(member=member).components["onboarding"]["value"]


def test_measure_counts_only_assigned_paths():
    EventStepFactory(
        path=PathFactory(roles=[Member.Role.ADMIN]),
        completion_kind="community.reply_posted",
    )
    path = PathFactory()
    EventStepFactory(path=path, completion_kind="community.question_posted")
    ManualStepFactory(path=path)
    member = factories.MemberFactory(role=Member.Role.MEMBER)
    factories.ActivityEventFactory(member=member, kind="community.question_posted")

    assert onboarding_value(member) == 50.0


def test_measure_counts_manual_and_visit_progress():
    path = PathFactory()
    manual = ManualStepFactory(path=path)
    hub = HubFactory()
    visit_step(path=path, target=hub)
    member = factories.MemberFactory()
    mark_step_done(member=member, step=manual)
    factories.ActivityEventFactory(member=member, kind="portal.hub_viewed", subject=hub)

    assert onboarding_value(member) == 100.0


def test_measure_without_assigned_steps_is_no_data():
    EventStepFactory(path=PathFactory(roles=[Member.Role.ADMIN]))
    member = factories.MemberFactory(role=Member.Role.MEMBER)

    assert onboarding_value(member) is None


def test_export_lists_steps_and_completions():
    path = PathFactory(title="First week")
    step = ManualStepFactory(path=path, title="Invite your team")
    member = factories.MemberFactory()
    mark_step_done(member=member, step=step)

    export = build_member_export(member)["onboarding"]

    assert [row["step"] for row in export["steps_done"]] == ["Invite your team"]
    assert [row["path"] for row in export["paths_completed"]] == ["First week"]


def test_merge_moves_progress_and_keeps_survivors_rows():
    path = PathFactory()
    shared = EventStepFactory(path=path, completion_kind="community.question_posted")
    only_duplicate = EventStepFactory(
        path=path, completion_kind="community.reply_posted"
    )
    account = factories.AccountFactory()
    survivor = factories.MemberFactory(account=account)
    duplicate = factories.MemberFactory(account=account)
    for member in (survivor, duplicate):
        factories.ActivityEventFactory(member=member, kind="community.question_posted")
        sync_member_progress(member=member)
    factories.ActivityEventFactory(member=duplicate, kind="community.reply_posted")
    sync_member_progress(member=duplicate)
    staff = factories.StaffFactory()

    merge_members(survivor=survivor, duplicate=duplicate, actor=staff)

    steps = set(
        OnboardingProgress.objects.filter(member=survivor).values_list(
            "step_id", flat=True
        )
    )
    assert steps == {shared.pk, only_duplicate.pk}
    assert not OnboardingProgress.objects.filter(member=duplicate).exists()
    assert PathCompletion.objects.filter(member=survivor, path=path).count() == 1


def test_value_moment_check_default_passes(settings):
    settings.RM6_VALUE_MOMENT_KIND = "portal.onboarding_path_completed"

    assert check_value_moment_kind() == []


def test_value_moment_check_warns_on_unknown_kind(settings):
    settings.RM6_VALUE_MOMENT_KIND = "portal.path_finished"

    [warning] = check_value_moment_kind()

    assert warning.id == "portal.W001"
    assert "'portal.path_finished'" in warning.msg
