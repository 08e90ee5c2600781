"""Plays through real Celery workers on the test database and the real Redis."""

import os
import signal
from datetime import timedelta

import pytest
from celery.result import allow_join_result
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from apps.lifecycle.models import (
    Enrolment,
    FatigueCap,
    Notification,
    Play,
    StepRun,
    Touch,
)
from apps.lifecycle.tasks import evaluate_event_triggers_task, run_enrolment_task
from apps.membership.models import Member
from tests import factories
from tests.plays.conftest import wait_until
from tests.plays.factories import PlayFactory, PlayStepFactory

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

RESULT_TIMEOUT = 60


@pytest.fixture(autouse=True)
def _allow_waiting_on_results():
    """Let the test thread wait on task results.

    Earlier tests that run tasks eagerly in a live-server thread can leave
    Celery's process-wide "inside a task" flag set, and result.get() then
    refuses to block; the test thread is never inside a task.
    """
    with allow_join_result():
        yield


def _drain(rounds: int = 3) -> None:
    """Wait until a single worker has run everything queued so far.

    Each round queues a no-op task behind the others and waits for it. Tasks
    queued by a task run in a later round, so three rounds cover a trigger
    evaluation that queues a run.
    """
    for _ in range(rounds):
        evaluate_event_triggers_task.delay(event_ids=[]).get(timeout=RESULT_TIMEOUT)


def _post_events(client: APIClient, events: list[dict]):
    return client.post("/api/v1/events/batch/", {"events": events}, format="json")


def test_ingested_batch_fires_play_once(start_worker):
    start_worker()
    play = PlayFactory(
        trigger=Play.Trigger.FEATURE_FIRST_USE,
        audience_roles=[Member.Role.CHAMPION],
    )
    PlayStepFactory(play=play, position=1)
    champion = factories.MemberFactory(role=Member.Role.CHAMPION)
    other = factories.MemberFactory(role=Member.Role.MEMBER)
    client = APIClient()
    staff = factories.StaffFactory()
    client.credentials(
        HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=staff).key}"
    )
    occurred_at = (timezone.now() - timedelta(minutes=5)).isoformat()
    events = [
        {
            "member_email": member.email,
            "kind": "product.report_exported",
            "occurred_at": occurred_at,
            "idempotency_key": f"export-{member.pk}-{i}",
        }
        for member in (champion, other)
        for i in range(3)
    ]

    first = _post_events(client, events)
    retried = _post_events(client, events)
    later = _post_events(
        client,
        [{**events[0], "idempotency_key": f"export-{champion.pk}-later"}],
    )

    assert first.status_code == 201, first.content
    assert retried.status_code == 201, retried.content
    assert later.status_code == 201, later.content
    wait_until(
        lambda: Notification.objects.filter(member=champion).exists(),
        timeout=RESULT_TIMEOUT,
        message="the play never notified the champion",
    )
    _drain()
    enrolment = Enrolment.objects.get(play=play)
    assert enrolment.member == champion
    assert enrolment.occurrence_key == "first"
    assert enrolment.status == Enrolment.Status.COMPLETED
    assert Notification.objects.filter(member=champion).count() == 1
    assert not Notification.objects.filter(member=other).exists()


def _create_enrolment(play: Play, member: Member) -> Enrolment:
    """Insert an enrolment without dispatching a run, so the test sends it."""
    return Enrolment.objects.create(
        play=play,
        member=member,
        account=member.account,
        subject_key=f"member:{member.pk}",
        occurrence_key="test",
        next_position=0,
        next_run_at=timezone.now(),
        enrolled_at=timezone.now(),
    )


def test_two_workers_racing_on_one_event_enrol_once(start_worker):
    start_worker()
    start_worker()
    play = PlayFactory()
    PlayStepFactory(play=play, position=1)
    # Written by the factory, so no after-commit message competes with the
    # two evaluations sent below.
    event = factories.ActivityEventFactory(kind="product.report_exported")

    evaluations = [
        evaluate_event_triggers_task.delay(event_ids=[event.pk]) for _ in range(2)
    ]

    created = sorted(result.get(timeout=RESULT_TIMEOUT) for result in evaluations)
    assert created == [0, 1]
    enrolment = Enrolment.objects.get(play=play)
    wait_until(
        lambda: Enrolment.objects.filter(
            pk=enrolment.pk, status=Enrolment.Status.COMPLETED
        ).exists(),
        timeout=RESULT_TIMEOUT,
        message="the enrolment never completed",
    )
    assert enrolment.occurrence_key == str(event.pk)
    assert Notification.objects.filter(member=event.member).count() == 1


def test_two_workers_racing_on_one_enrolment_run_once(start_worker):
    start_worker()
    start_worker()
    play = PlayFactory()
    # The sleep keeps the first worker's step, and its row lock, open while
    # the second worker takes its message.
    PlayStepFactory(play=play, position=1, config={"sleep_seconds": 1})
    member = factories.MemberFactory()
    enrolment = _create_enrolment(play, member)

    runs = [run_enrolment_task.delay(enrolment_id=enrolment.pk) for _ in range(2)]

    steps_run = sorted(result.get(timeout=RESULT_TIMEOUT) for result in runs)
    assert steps_run == [0, 1]
    assert Notification.objects.filter(member=member).count() == 1
    assert StepRun.objects.get(enrolment=enrolment).status == StepRun.Status.DONE


def test_fatigue_cap_holds_across_two_workers(start_worker):
    start_worker()
    start_worker()
    FatigueCap.objects.create(channel="test", max_touches=2, period_days=30)
    member = factories.MemberFactory()
    enrolments = []
    for _ in range(4):
        play = PlayFactory()
        PlayStepFactory(play=play, position=1, config={"sleep_seconds": 0.5})
        enrolments.append(_create_enrolment(play, member))

    runs = [run_enrolment_task.delay(enrolment_id=e.pk) for e in enrolments]

    assert [result.get(timeout=RESULT_TIMEOUT) for result in runs] == [1, 1, 1, 1]
    assert Touch.objects.filter(member=member, channel="test").count() == 2
    assert Notification.objects.filter(member=member).count() == 2
    skipped = StepRun.objects.filter(
        enrolment__in=enrolments, status=StepRun.Status.SKIPPED
    )
    assert (
        list(skipped.values_list("outcome", flat=True))
        == ["fatigue cap: 2 per 30 days on test"] * 2
    )


def test_killed_worker_step_runs_once_after_redelivery(start_worker, tmp_path):
    block_file = tmp_path / "block"
    started_file = tmp_path / "started"
    block_file.touch()
    play = PlayFactory()
    first = PlayStepFactory(play=play, position=1, config={"title": "first"})
    second = PlayStepFactory(
        play=play,
        position=2,
        action="test_block",
        config={
            "title": "second",
            "block_file": str(block_file),
            "started_file": str(started_file),
        },
    )
    member = factories.MemberFactory()
    enrolment = _create_enrolment(play, member)
    doomed = start_worker(visibility_timeout=2)

    run_enrolment_task.delay(enrolment_id=enrolment.pk)
    wait_until(
        started_file.exists,
        timeout=RESULT_TIMEOUT,
        message="the worker never reached the blocking step",
    )
    os.kill(doomed.pid, signal.SIGKILL)
    doomed.wait()
    # The first step committed before the kill; the second was mid-transaction.
    assert StepRun.objects.get(step=first).status == StepRun.Status.DONE
    assert not StepRun.objects.filter(step=second).exists()
    block_file.unlink()
    start_worker(visibility_timeout=2)

    wait_until(
        lambda: Enrolment.objects.filter(
            pk=enrolment.pk, status=Enrolment.Status.COMPLETED
        ).exists(),
        timeout=RESULT_TIMEOUT,
        message="the redelivered task never completed the enrolment",
    )
    titles = list(
        Notification.objects.filter(member=member)
        .order_by("title")
        .values_list("title", flat=True)
    )
    assert titles == ["first", "second"]
    assert StepRun.objects.get(step=second).attempts == 1
