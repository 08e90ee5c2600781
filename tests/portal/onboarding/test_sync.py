import threading
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from apps.lifecycle.models import ActivityEvent
from apps.membership.models import Account, Member
from apps.portal.models import OnboardingProgress, PathCompletion
from apps.portal.services.onboarding import (
    CURSOR_KEY,
    PATH_COMPLETED_KIND,
    sync_all_progress,
    sync_member_progress,
    sync_progress_since_last_run,
    sync_recent_progress,
)
from tests import factories
from tests.portal.onboarding.factories import (
    EventStepFactory,
    HubFactory,
    PathFactory,
    visit_step,
)

pytestmark = pytest.mark.django_db


def done_steps(member) -> set[int]:
    return set(
        OnboardingProgress.objects.filter(member=member).values_list(
            "step_id", flat=True
        )
    )


def completion_events(member) -> int:
    return ActivityEvent.objects.filter(member=member, kind=PATH_COMPLETED_KIND).count()


# Assignment ---------------------------------------------------------------------


def test_sync_role_filter_assigns_matching_role_only():
    path = PathFactory(roles=[Member.Role.ADMIN])
    step = EventStepFactory(path=path, completion_kind="community.question_posted")
    admin = factories.MemberFactory(role=Member.Role.ADMIN)
    member = factories.MemberFactory(role=Member.Role.MEMBER)
    for each in (admin, member):
        factories.ActivityEventFactory(member=each, kind="community.question_posted")
        sync_member_progress(member=each)

    assert done_steps(admin) == {step.pk}
    assert done_steps(member) == set()


def test_sync_segment_filter_assigns_matching_segment_only():
    path = PathFactory(segments=[Account.Segment.ENTERPRISE])
    step = EventStepFactory(path=path, completion_kind="community.question_posted")
    enterprise = factories.MemberFactory(account__segment=Account.Segment.ENTERPRISE)
    smb = factories.MemberFactory(account__segment=Account.Segment.SMB)
    no_account = factories.MemberFactory(account=None)
    for each in (enterprise, smb, no_account):
        factories.ActivityEventFactory(member=each, kind="community.question_posted")
        sync_member_progress(member=each)

    assert done_steps(enterprise) == {step.pk}
    assert done_steps(smb) == set()
    assert done_steps(no_account) == set()


def test_sync_account_filter_assigns_listed_accounts_only():
    chosen = factories.MemberFactory()
    other = factories.MemberFactory()
    path = PathFactory()
    path.accounts.add(chosen.account)
    step = EventStepFactory(path=path, completion_kind="community.question_posted")
    for each in (chosen, other):
        factories.ActivityEventFactory(member=each, kind="community.question_posted")
        sync_member_progress(member=each)

    assert done_steps(chosen) == {step.pk}
    assert done_steps(other) == set()


def test_sync_unfiltered_path_applies_to_member_without_account():
    step = EventStepFactory(completion_kind="community.question_posted")
    member = factories.MemberFactory(account=None)
    factories.ActivityEventFactory(member=member, kind="community.question_posted")

    sync_member_progress(member=member)

    assert done_steps(member) == {step.pk}


def test_sync_ignores_unpublished_step_and_path():
    hidden_step = EventStepFactory(
        completion_kind="community.question_posted", is_published=False
    )
    draft_path_step = EventStepFactory(
        path=PathFactory(is_published=False), completion_kind="community.reply_posted"
    )
    member = factories.MemberFactory()
    factories.ActivityEventFactory(member=member, kind="community.question_posted")
    factories.ActivityEventFactory(member=member, kind="community.reply_posted")

    sync_member_progress(member=member)

    assert hidden_step.pk not in done_steps(member)
    assert draft_path_step.pk not in done_steps(member)


def test_sync_skips_deactivated_member():
    EventStepFactory(completion_kind="community.question_posted")
    member = factories.MemberFactory(deactivated_at=timezone.now())
    factories.ActivityEventFactory(member=member, kind="community.question_posted")

    sync_member_progress(member=member)

    assert done_steps(member) == set()


# Completion modes ---------------------------------------------------------------


def test_sync_event_step_dated_at_first_event():
    step = EventStepFactory(completion_kind="product.report_exported")
    member = factories.MemberFactory()
    first = timezone.now() - timedelta(days=40)
    factories.ActivityEventFactory(
        member=member, kind="product.report_exported", occurred_at=first
    )
    factories.ActivityEventFactory(member=member, kind="product.report_exported")

    sync_member_progress(member=member)

    progress = OnboardingProgress.objects.get(member=member, step=step)
    assert progress.completed_at == first
    assert progress.how == "event"


def test_sync_counts_events_older_than_step():
    member = factories.MemberFactory()
    factories.ActivityEventFactory(
        member=member,
        kind="community.reply_posted",
        occurred_at=timezone.now() - timedelta(days=300),
    )
    step = EventStepFactory(completion_kind="community.reply_posted")

    sync_member_progress(member=member)

    assert done_steps(member) == {step.pk}


def test_sync_visit_step_done_by_view_of_target():
    hub = HubFactory()
    other_hub = HubFactory()
    step = visit_step(path=PathFactory(), target=hub)
    member = factories.MemberFactory()
    factories.ActivityEventFactory(
        member=member, kind="portal.hub_viewed", subject=other_hub
    )
    sync_member_progress(member=member)
    assert done_steps(member) == set()

    factories.ActivityEventFactory(member=member, kind="portal.hub_viewed", subject=hub)
    sync_member_progress(member=member)

    progress = OnboardingProgress.objects.get(member=member, step=step)
    assert progress.how == "visit"


def test_sync_visit_step_done_by_topic_view():
    topic = factories.TopicFactory()
    step = visit_step(path=PathFactory(), target=topic)
    member = factories.MemberFactory()
    factories.ActivityEventFactory(
        member=member, kind="community.topic_viewed", subject=topic
    )

    sync_member_progress(member=member)

    assert done_steps(member) == {step.pk}


def test_sync_visit_ignores_other_kinds():
    topic = factories.TopicFactory()
    visit_step(path=PathFactory(), target=topic)
    member = factories.MemberFactory()
    factories.ActivityEventFactory(
        member=member, kind="community.moderation_hide", subject=topic
    )

    sync_member_progress(member=member)

    assert done_steps(member) == set()


def test_sync_event_step_not_done_by_other_kind():
    EventStepFactory(completion_kind="community.question_posted")
    member = factories.MemberFactory()
    factories.ActivityEventFactory(member=member, kind="community.reply_posted")

    sync_member_progress(member=member)

    assert done_steps(member) == set()


# Idempotence and incremental runs -------------------------------------------------


def test_sync_run_twice_changes_nothing_second_time():
    path = PathFactory()
    EventStepFactory(path=path, completion_kind="community.question_posted")
    EventStepFactory(path=path, completion_kind="community.reply_posted")
    member = factories.MemberFactory()
    factories.ActivityEventFactory(member=member, kind="community.question_posted")
    factories.ActivityEventFactory(member=member, kind="community.reply_posted")

    first = sync_member_progress(member=member)
    second = sync_member_progress(member=member)

    assert (first.steps_done, first.paths_completed) == (2, 1)
    assert (second.steps_done, second.paths_completed) == (0, 0)
    assert OnboardingProgress.objects.filter(member=member).count() == 2
    assert PathCompletion.objects.filter(member=member).count() == 1
    assert completion_events(member) == 1


def test_sync_recent_reads_only_events_recorded_since():
    step = EventStepFactory(completion_kind="community.question_posted")
    old = factories.MemberFactory()
    new = factories.MemberFactory()
    old_event = factories.ActivityEventFactory(
        member=old, kind="community.question_posted"
    )
    factories.ActivityEventFactory(member=new, kind="community.question_posted")
    ActivityEvent.objects.filter(pk=old_event.pk).update(
        recorded_at=timezone.now() - timedelta(hours=2)
    )

    result = sync_recent_progress(since=timezone.now() - timedelta(hours=1))

    assert result.member_ids == {new.pk}
    assert done_steps(new) == {step.pk}
    assert done_steps(old) == set()


def test_sync_since_last_run_repeats_safely():
    cache.delete(CURSOR_KEY)
    step = EventStepFactory(completion_kind="community.question_posted")
    member = factories.MemberFactory()
    factories.ActivityEventFactory(member=member, kind="community.question_posted")

    first = sync_progress_since_last_run()
    second = sync_progress_since_last_run()

    assert first.steps_done == 1
    assert second.steps_done == 0
    assert done_steps(member) == {step.pk}


def test_sync_all_covers_every_member_in_batches():
    step = EventStepFactory(completion_kind="community.question_posted")
    members = [factories.MemberFactory() for _ in range(5)]
    for member in members:
        factories.ActivityEventFactory(member=member, kind="community.question_posted")

    result = sync_all_progress(batch_size=2)

    assert result.steps_done == 5
    assert all(done_steps(m) == {step.pk} for m in members)


def test_sync_all_limited_to_step_ids():
    wanted = EventStepFactory(completion_kind="community.question_posted")
    EventStepFactory(completion_kind="community.reply_posted")
    member = factories.MemberFactory()
    factories.ActivityEventFactory(member=member, kind="community.question_posted")
    factories.ActivityEventFactory(member=member, kind="community.reply_posted")

    sync_all_progress(step_ids=[wanted.pk])

    assert done_steps(member) == {wanted.pk}


# Path completion ----------------------------------------------------------------


def test_completion_dated_at_last_step_and_recorded_once():
    path = PathFactory()
    EventStepFactory(path=path, completion_kind="community.question_posted")
    EventStepFactory(path=path, completion_kind="community.reply_posted")
    member = factories.MemberFactory()
    asked = timezone.now() - timedelta(days=3)
    replied = timezone.now() - timedelta(days=1)
    factories.ActivityEventFactory(
        member=member, kind="community.question_posted", occurred_at=asked
    )
    factories.ActivityEventFactory(
        member=member, kind="community.reply_posted", occurred_at=replied
    )

    sync_member_progress(member=member)
    sync_all_progress()

    completion = PathCompletion.objects.get(member=member, path=path)
    event = ActivityEvent.objects.get(member=member, kind=PATH_COMPLETED_KIND)
    assert completion.completed_at == replied
    assert event.occurred_at == replied
    assert event.properties == {"path": path.slug, "path_id": path.pk}


def test_completion_needs_every_published_step():
    path = PathFactory()
    EventStepFactory(path=path, completion_kind="community.question_posted")
    EventStepFactory(path=path, completion_kind="community.reply_posted")
    EventStepFactory(
        path=path, completion_kind="product.report_exported", is_published=False
    )
    member = factories.MemberFactory()
    factories.ActivityEventFactory(member=member, kind="community.question_posted")

    sync_member_progress(member=member)
    assert not PathCompletion.objects.filter(member=member).exists()

    factories.ActivityEventFactory(member=member, kind="community.reply_posted")
    sync_member_progress(member=member)
    assert PathCompletion.objects.filter(member=member, path=path).exists()


def test_completion_not_written_for_path_without_published_steps():
    path = PathFactory()
    EventStepFactory(
        path=path, completion_kind="community.question_posted", is_published=False
    )
    member = factories.MemberFactory()

    sync_member_progress(member=member)

    assert not PathCompletion.objects.filter(path=path).exists()


@pytest.mark.django_db(transaction=True)
def test_completion_recorded_once_when_syncs_race():
    path = PathFactory()
    EventStepFactory(path=path, completion_kind="community.question_posted")
    member = factories.MemberFactory()
    factories.ActivityEventFactory(member=member, kind="community.question_posted")
    start = threading.Barrier(2)
    errors = []

    def run_sync():
        try:
            start.wait(timeout=10)
            sync_member_progress(member=member)
        except Exception as error:  # reported by the assert below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run_sync) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert PathCompletion.objects.filter(member=member, path=path).count() == 1
    assert completion_events(member) == 1
    assert OnboardingProgress.objects.filter(member=member).count() == 1
