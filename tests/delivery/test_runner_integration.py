"""Delivery handlers run by the real play runner."""

from django.core import mail
from django.utils import timezone

from apps.lifecycle.models import (
    CsmTask,
    Enrolment,
    Notification,
    PlayStep,
    StepRun,
    Touch,
    WebhookDelivery,
)
from apps.lifecycle.plays.runner import run_enrolment


def enrol(play, member) -> Enrolment:
    return Enrolment.objects.create(
        play=play,
        member=member,
        subject_key=f"member:{member.pk}",
        occurrence_key="integration",
        enrolled_at=timezone.now(),
    )


def add_step(play, position: int, action: str, config: dict) -> PlayStep:
    return PlayStep.objects.create(
        play=play, position=position, action=action, config=config
    )


def test_runner_runs_delivery_steps_once(
    play,
    enrolled_member,
    endpoint,
    queued_deliveries,
    django_capture_on_commit_callbacks,
):
    add_step(play, 1, "in_app", {"title": "Welcome", "url": "/community/"})
    add_step(play, 2, "csm_task", {"title": "Call {{ member_name }}"})
    add_step(play, 3, "webhook", {"endpoint_id": endpoint.pk})
    enrolment = enrol(play, enrolled_member)

    with django_capture_on_commit_callbacks(execute=True):
        run_enrolment(enrolment_id=enrolment.pk)
        run_enrolment(enrolment_id=enrolment.pk)

    enrolment.refresh_from_db()
    assert enrolment.status == Enrolment.Status.COMPLETED
    assert Notification.objects.count() == 1
    assert CsmTask.objects.count() == 1
    assert WebhookDelivery.objects.count() == 1
    assert len(queued_deliveries) == 1
    assert Touch.objects.filter(channel="in_app").count() == 1
    assert StepRun.objects.filter(status=StepRun.Status.DONE).count() == 3


def test_runner_sends_email_once(
    play, consenting_member, django_capture_on_commit_callbacks
):
    add_step(play, 1, "email", {"subject": "Hi", "body": "Welcome."})
    enrolment = enrol(play, consenting_member)

    with django_capture_on_commit_callbacks(execute=True):
        run_enrolment(enrolment_id=enrolment.pk)
        run_enrolment(enrolment_id=enrolment.pk)

    enrolment.refresh_from_db()
    assert enrolment.status == Enrolment.Status.COMPLETED
    assert len(mail.outbox) == 1
    assert Touch.objects.filter(channel="email").count() == 1


def test_runner_skips_email_without_consent(
    play, enrolled_member, purposes, django_capture_on_commit_callbacks
):
    add_step(play, 1, "email", {"subject": "Hi", "body": "Welcome."})
    enrolment = enrol(play, enrolled_member)

    with django_capture_on_commit_callbacks(execute=True):
        run_enrolment(enrolment_id=enrolment.pk)

    step_run = StepRun.objects.get()
    assert step_run.status == StepRun.Status.SKIPPED
    assert step_run.outcome == "member has no valid consent for marketing_email"
    assert len(mail.outbox) == 0
    assert Touch.objects.count() == 0
