import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import RestrictedError
from django.utils import timezone

from apps.advocacy.models import PointsEntry
from apps.lifecycle.actions import ActionContext
from apps.lifecycle.models import (
    CsmTask,
    Enrolment,
    FatigueCap,
    Notification,
    Play,
    StepRun,
    Touch,
)
from apps.lifecycle.plays.audience import is_held_out
from apps.lifecycle.plays.runner import (
    run_due_enrolments,
    run_enrolment,
    run_enrolments,
)
from apps.lifecycle.plays.services import Candidate, enrol_subjects, retry_enrolment
from apps.membership.models import ConsentGrant, ConsentPurpose
from tests import factories
from tests.plays.factories import PlayFactory, PlayStepFactory

pytestmark = pytest.mark.django_db


def _enrol(play, member, *, now=None, occurrence_key="test") -> Enrolment:
    candidate = Candidate(
        occurrence_key=occurrence_key, member_id=member.pk, account_id=member.account_id
    )
    [enrolment_id] = enrol_subjects(play=play, candidates=[candidate], now=now)
    return Enrolment.objects.get(pk=enrolment_id)


def _outcomes(enrolment) -> list[tuple[int, str, str]]:
    return list(
        StepRun.objects.filter(enrolment=enrolment)
        .order_by("step__position")
        .values_list("step__position", "status", "outcome")
    )


def _grant(member, purpose_key: str) -> None:
    purpose, _ = ConsentPurpose.objects.get_or_create(
        key=purpose_key, defaults={"name": purpose_key, "description": "Test."}
    )
    ConsentGrant.objects.create(
        member=member,
        purpose=purpose,
        source=ConsentGrant.Source.ADMIN,
        evidence="Test.",
        granted_at=timezone.now() - timedelta(days=1),
    )


def test_run_enrolment_runs_steps_in_order():
    play = PlayFactory()
    PlayStepFactory(play=play, position=2, action="test_account_task")
    PlayStepFactory(play=play, position=1)
    member = factories.MemberFactory()
    enrolment = _enrol(play, member)

    steps_run = run_enrolment(enrolment_id=enrolment.pk)

    enrolment.refresh_from_db()
    assert steps_run == 2
    assert _outcomes(enrolment) == [
        (1, "done", "notified"),
        (2, "done", "task created"),
    ]
    assert enrolment.status == Enrolment.Status.COMPLETED
    assert enrolment.finished_at is not None
    assert Notification.objects.get(member=member).play == play
    assert CsmTask.objects.get(account=member.account).play == play


def test_run_enrolment_writes_touch_for_channel_actions():
    play = PlayFactory()
    PlayStepFactory(play=play, position=1)
    PlayStepFactory(play=play, position=2, action="test_account_task")
    member = factories.MemberFactory()
    enrolment = _enrol(play, member)

    run_enrolment(enrolment_id=enrolment.pk)

    touch = Touch.objects.get(member=member)
    assert touch.channel == "test"
    assert touch.play == play
    assert touch.step_run.step.position == 1


def test_run_enrolment_keeps_touch_written_by_handler():
    play = PlayFactory()
    PlayStepFactory(play=play, position=1, action="test_marker")
    member = factories.MemberFactory()
    enrolment = _enrol(play, member)

    run_enrolment(enrolment_id=enrolment.pk)

    assert _outcomes(enrolment) == [(1, "done", "marked")]
    assert Touch.objects.filter(member=member).count() == 1


def test_run_enrolment_twice_acts_once():
    play = PlayFactory()
    PlayStepFactory(play=play, position=1)
    member = factories.MemberFactory()
    enrolment = _enrol(play, member)

    first = run_enrolment(enrolment_id=enrolment.pk)
    second = run_enrolment(enrolment_id=enrolment.pk)

    assert (first, second) == (1, 0)
    assert Notification.objects.filter(member=member).count() == 1
    assert Touch.objects.filter(member=member).count() == 1


def test_consent_step_skips_without_consent():
    play = PlayFactory()
    PlayStepFactory(play=play, position=1, consent_purpose="marketing")
    PlayStepFactory(play=play, position=2, action="test_account_task")
    member = factories.MemberFactory()
    ConsentPurpose.objects.create(key="marketing", name="Marketing", description="-")
    enrolment = _enrol(play, member)

    run_enrolment(enrolment_id=enrolment.pk)

    enrolment.refresh_from_db()
    assert _outcomes(enrolment) == [
        (1, "skipped", "no marketing consent"),
        (2, "done", "task created"),
    ]
    assert enrolment.status == Enrolment.Status.COMPLETED
    assert not Notification.objects.filter(member=member).exists()
    assert not Touch.objects.filter(member=member).exists()


def test_consent_step_runs_for_member_with_consent():
    play = PlayFactory()
    PlayStepFactory(play=play, position=1, consent_purpose="marketing")
    member = factories.MemberFactory()
    _grant(member, "marketing")
    enrolment = _enrol(play, member)

    run_enrolment(enrolment_id=enrolment.pk)

    assert _outcomes(enrolment) == [(1, "done", "notified")]


def test_consent_step_for_account_enrolment_skipped():
    play = PlayFactory(subject_level=Play.SubjectLevel.ACCOUNT)
    PlayStepFactory(
        play=play, position=1, action="test_account_task", consent_purpose="marketing"
    )
    account = factories.AccountFactory()
    [enrolment_id] = enrol_subjects(
        play=play, candidates=[Candidate(occurrence_key="x", account_id=account.pk)]
    )

    run_enrolment(enrolment_id=enrolment_id)

    assert _outcomes(Enrolment.objects.get(pk=enrolment_id)) == [
        (1, "skipped", "no member to check marketing consent for")
    ]


def test_fatigue_cap_skips_touch_over_cap():
    FatigueCap.objects.create(channel="test", max_touches=1, period_days=30)
    member = factories.MemberFactory()
    Touch.objects.create(
        member=member, channel="test", touched_at=timezone.now() - timedelta(days=29)
    )
    play = PlayFactory()
    PlayStepFactory(play=play, position=1)
    enrolment = _enrol(play, member)

    run_enrolment(enrolment_id=enrolment.pk)

    assert _outcomes(enrolment) == [
        (1, "skipped", "fatigue cap: 1 per 30 days on test")
    ]
    assert Touch.objects.filter(member=member).count() == 1


def test_fatigue_cap_of_one_day_reads_per_day():
    FatigueCap.objects.create(channel="test", max_touches=3, period_days=1)
    member = factories.MemberFactory()
    for _ in range(3):
        Touch.objects.create(member=member, channel="test", touched_at=timezone.now())
    play = PlayFactory()
    PlayStepFactory(play=play, position=1)
    enrolment = _enrol(play, member)

    run_enrolment(enrolment_id=enrolment.pk)

    assert _outcomes(enrolment) == [(1, "skipped", "fatigue cap: 3 per day on test")]


def test_fatigue_cap_counts_only_its_period():
    FatigueCap.objects.create(channel="test", max_touches=1, period_days=30)
    member = factories.MemberFactory()
    Touch.objects.create(
        member=member, channel="test", touched_at=timezone.now() - timedelta(days=31)
    )
    play = PlayFactory()
    PlayStepFactory(play=play, position=1)
    enrolment = _enrol(play, member)

    run_enrolment(enrolment_id=enrolment.pk)

    assert _outcomes(enrolment) == [(1, "done", "notified")]


@pytest.mark.django_db(transaction=True)
def test_fatigue_cap_holds_across_threads():
    cap = FatigueCap.objects.create(channel="test", max_touches=2, period_days=30)
    member = factories.MemberFactory()
    enrolments = []
    for _ in range(5):
        play = PlayFactory()
        PlayStepFactory(play=play, position=1, config={"sleep_seconds": 0.2})
        enrolments.append(
            Enrolment.objects.create(
                play=play,
                member=member,
                subject_key=f"member:{member.pk}",
                occurrence_key="test",
                next_position=0,
                next_run_at=timezone.now(),
                enrolled_at=timezone.now(),
            )
        )
    barrier = threading.Barrier(len(enrolments))
    errors = []

    def run(enrolment_id: int) -> None:
        try:
            barrier.wait()
            run_enrolment(enrolment_id=enrolment_id)
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(e.pk,)) for e in enrolments]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert Touch.objects.filter(member=member).count() == cap.max_touches
    assert StepRun.objects.filter(status=StepRun.Status.SKIPPED).count() == 3


def test_failed_step_fails_only_its_enrolment():
    play = PlayFactory()
    failing = factories.MemberFactory()
    healthy = factories.MemberFactory()
    PlayStepFactory(
        play=play, position=1, action="test_fail", config={"member_ids": [failing.pk]}
    )
    PlayStepFactory(play=play, position=2, action="test_account_task")
    failed = _enrol(play, failing)
    completed = _enrol(play, healthy)

    run_enrolments(enrolment_ids=[failed.pk, completed.pk])

    failed.refresh_from_db()
    completed.refresh_from_db()
    error = f"RuntimeError: test failure for member {failing.pk}"
    assert failed.status == Enrolment.Status.FAILED
    assert failed.last_error == f"step 1 (test_fail) failed: {error}"
    assert StepRun.objects.get(enrolment=failed).error == error
    assert completed.status == Enrolment.Status.COMPLETED
    assert _outcomes(completed) == [
        (1, "done", "notified"),
        (2, "done", "task created"),
    ]
    assert not CsmTask.objects.filter(account=failing.account).exists()


def test_failed_step_retry_runs_failed_step_again():
    play = PlayFactory()
    member = factories.MemberFactory()
    step = PlayStepFactory(
        play=play, position=1, action="test_fail", config={"member_ids": [member.pk]}
    )
    enrolment = _enrol(play, member)
    run_enrolment(enrolment_id=enrolment.pk)
    step.config = {"member_ids": []}
    step.save()

    assert retry_enrolment(enrolment=enrolment) is True
    run_enrolment(enrolment_id=enrolment.pk)

    enrolment.refresh_from_db()
    step_run = StepRun.objects.get(enrolment=enrolment)
    assert enrolment.status == Enrolment.Status.COMPLETED
    assert enrolment.last_error == ""
    assert step_run.status == StepRun.Status.DONE
    assert step_run.attempts == 2
    assert step_run.error == ""


def test_unknown_action_fails_enrolment():
    play = PlayFactory()
    PlayStepFactory(play=play, position=1, action="send_fax")
    enrolment = _enrol(play, factories.MemberFactory())

    run_enrolment(enrolment_id=enrolment.pk)

    enrolment.refresh_from_db()
    assert enrolment.status == Enrolment.Status.FAILED
    assert enrolment.last_error == (
        "step 1 (send_fax) failed: unknown action 'send_fax': "
        "no installed app registers it"
    )


def test_skipping_action_records_reason():
    play = PlayFactory()
    PlayStepFactory(play=play, position=1, action="test_skip")
    enrolment = _enrol(play, factories.MemberFactory())

    run_enrolment(enrolment_id=enrolment.pk)

    assert _outcomes(enrolment) == [(1, "skipped", "nothing to send today")]


def test_wait_step_keeps_wait_in_database():
    play = PlayFactory()
    PlayStepFactory(play=play, position=1, config={"title": "before"})
    PlayStepFactory(play=play, position=2, action="wait", wait_hours=24)
    PlayStepFactory(play=play, position=3, config={"title": "after"})
    member = factories.MemberFactory()
    start = timezone.now()
    enrolment = _enrol(play, member, now=start)

    run_enrolment(enrolment_id=enrolment.pk, now=start)

    enrolment.refresh_from_db()
    assert enrolment.status == Enrolment.Status.WAITING
    assert enrolment.next_run_at == start + timedelta(hours=24)
    assert enrolment.next_position == 3
    assert _outcomes(enrolment)[1] == (
        2,
        "done",
        f"wait 24 h, until {start + timedelta(hours=24):%Y-%m-%d %H:%M} UTC",
    )


def test_run_due_enrolments_resumes_after_wait():
    play = PlayFactory()
    PlayStepFactory(play=play, position=1, action="wait", wait_hours=24)
    PlayStepFactory(play=play, position=2)
    member = factories.MemberFactory()
    start = timezone.now()
    enrolment = _enrol(play, member, now=start)

    run_due_enrolments(now=start)
    early = run_due_enrolments(now=start + timedelta(hours=23))
    due = run_due_enrolments(now=start + timedelta(hours=24))

    enrolment.refresh_from_db()
    assert early == 0
    assert due == 1
    assert enrolment.status == Enrolment.Status.COMPLETED
    assert Notification.objects.filter(member=member).count() == 1


def test_run_due_enrolments_skips_paused_play():
    play = PlayFactory()
    PlayStepFactory(play=play, position=1)
    enrolment = _enrol(play, factories.MemberFactory())
    Play.objects.filter(pk=play.pk).update(status=Play.Status.PAUSED)

    steps_run = run_due_enrolments()

    enrolment.refresh_from_db()
    assert steps_run == 0
    assert enrolment.status == Enrolment.Status.ACTIVE


def test_run_enrolment_exits_deactivated_member():
    play = PlayFactory()
    PlayStepFactory(play=play, position=1)
    member = factories.MemberFactory()
    enrolment = _enrol(play, member)
    member.deactivated_at = timezone.now()
    member.save()

    run_enrolment(enrolment_id=enrolment.pk)

    enrolment.refresh_from_db()
    assert enrolment.status == Enrolment.Status.EXITED
    assert not Notification.objects.filter(member=member).exists()


def test_holdout_enrolment_runs_no_steps():
    play = PlayFactory(holdout_percent=50)
    PlayStepFactory(play=play, position=1)
    members = [factories.MemberFactory() for _ in range(20)]
    candidates = [
        Candidate(occurrence_key="x", member_id=m.pk, account_id=m.account_id)
        for m in members
    ]

    enrol_subjects(play=play, candidates=candidates)
    run_due_enrolments()

    held_out = Enrolment.objects.filter(play=play, is_holdout=True)
    expected = {
        m.pk for m in members if is_held_out(play=play, subject_key=f"member:{m.pk}")
    }
    assert 0 < len(expected) < len(members)
    assert set(held_out.values_list("member_id", flat=True)) == expected
    assert set(held_out.values_list("status", flat=True)) <= {"held_out"}
    assert not StepRun.objects.filter(enrolment__in=held_out).exists()
    assert not Notification.objects.filter(member_id__in=expected).exists()
    assert Notification.objects.count() == len(members) - len(expected)


def test_holdout_is_stable_and_near_its_share():
    play = PlayFactory(holdout_percent=30)
    keys = [f"member:{n}" for n in range(2000)]

    first = [is_held_out(play=play, subject_key=key) for key in keys]
    second = [is_held_out(play=play, subject_key=key) for key in keys]

    assert first == second
    assert 500 <= sum(first) <= 700


def test_holdout_zero_holds_nobody_out():
    play = PlayFactory(holdout_percent=0)

    assert not any(
        is_held_out(play=play, subject_key=f"member:{n}") for n in range(500)
    )


def test_points_step_awards_points_once():
    play = PlayFactory(play_id="welcome")
    PlayStepFactory(play=play, position=1, action="points", config={"points": 25})
    member = factories.MemberFactory()
    enrolment = _enrol(play, member)

    run_enrolment(enrolment_id=enrolment.pk)

    entry = PointsEntry.objects.get(member=member)
    assert entry.points == 25
    assert entry.reason == "play:welcome"
    assert _outcomes(enrolment) == [(1, "done", "+25 points")]


def test_points_handler_called_twice_adds_one_entry():
    from apps.advocacy.services import award_play_points

    play = PlayFactory(play_id="welcome")
    step = PlayStepFactory(play=play, position=1, action="points", config={"points": 5})
    member = factories.MemberFactory()
    enrolment = _enrol(play, member)
    step_run = StepRun.objects.create(
        enrolment=enrolment, step=step, status="running", started_at=timezone.now()
    )
    context = ActionContext(
        play=play,
        step=step,
        enrolment=enrolment,
        step_run=step_run,
        member=member,
        account=member.account,
    )

    first = award_play_points(context)
    second = award_play_points(context)

    assert first.outcome == "+5 points"
    assert second.outcome == "+5 points, awarded before"
    assert PointsEntry.objects.filter(member=member).count() == 1


def test_points_step_with_invalid_config_fails():
    play = PlayFactory()
    PlayStepFactory(play=play, position=1, action="points", config={"points": "ten"})
    enrolment = _enrol(play, factories.MemberFactory())

    run_enrolment(enrolment_id=enrolment.pk)

    enrolment.refresh_from_db()
    assert enrolment.last_error == (
        "step 1 (points) failed: Invalid points 'ten' in the step config; "
        'set {"points": <whole number from -100,000 to 100,000, not 0>}.'
    )


def test_step_with_runs_cannot_be_deleted_alone():
    play = PlayFactory()
    step = PlayStepFactory(play=play, position=1)
    enrolment = _enrol(play, factories.MemberFactory())
    run_enrolment(enrolment_id=enrolment.pk)

    with pytest.raises(RestrictedError):
        step.delete()

    assert StepRun.objects.filter(step=step).count() == 1


def test_play_deletion_deletes_steps_and_runs():
    play = PlayFactory()
    PlayStepFactory(play=play, position=1)
    enrolment = _enrol(play, factories.MemberFactory())
    run_enrolment(enrolment_id=enrolment.pk)

    play.delete()

    assert not StepRun.objects.exists()
    assert not Enrolment.objects.exists()


def test_wait_step_with_consent_purpose_still_waits():
    play = PlayFactory()
    PlayStepFactory(
        play=play,
        position=1,
        action="wait",
        wait_hours=24,
        consent_purpose="marketing_email",
    )
    PlayStepFactory(play=play, position=2)
    enrolment = _enrol(play, factories.MemberFactory())

    run_enrolment(enrolment_id=enrolment.pk)

    enrolment.refresh_from_db()
    [(position, status, outcome)] = _outcomes(enrolment)
    assert (position, status) == (1, StepRun.Status.DONE)
    assert outcome.startswith("wait 24 h")
    assert enrolment.next_run_at is not None
