"""Run enrolments' steps, one database transaction per step.

Each step runs in one transaction that holds the enrolment's row lock. The
step run, the handler's side-effect rows, the touch and the enrolment's next
position commit together or not at all, so a step's database effects commit
once:

- A task that runs twice, or two workers on the same enrolment: the second
  skips the locked row (SKIP LOCKED) or finds the step already passed.
- A worker killed mid-step: PostgreSQL rolls back the open transaction when
  the connection closes, and the redelivered task (acks_late) runs the step
  again from the start. Steps that committed before are not repeated.

Contract for action handlers: write side effects as rows in the current
transaction, tied to `context.step_run` by a one-to-one or unique key, so
that a second write fails instead of duplicating. Anything outside the
database (SMTP, HTTP) must be sent after commit by a task keyed by the step
run, because the step's transaction can still roll back. Such a send is at
least once: a worker killed after sending and before recording it sends
again, so receivers get the key to drop repeats. A handler raises
`ActionSkipped` to decline, and any other exception fails the step.

Waits are kept in the database, in `Enrolment.next_run_at`, and the beat
task `run_due_enrolments` resumes them. No message waits in the broker with
a countdown.
"""

import logging
import time
from datetime import datetime, timedelta

from django.db import InterfaceError, OperationalError, transaction
from django.utils import timezone

from apps.lifecycle.actions import (
    ActionContext,
    ActionResult,
    ActionSkipped,
    get_action,
)
from apps.lifecycle.models import Enrolment, FatigueCap, Play, PlayStep, StepRun, Touch
from apps.membership.models import Member
from apps.membership.selectors.consent import has_consent
from rm6.errors import DomainError

logger = logging.getLogger(__name__)

# A handler's result details may carry this key with an aware datetime. The
# enrolment then waits until that instant before its next step.
RESUME_AT = "resume_at"
# Errors that a later attempt may not meet, so the task retries with back-off.
TRANSIENT_ERRORS = (OperationalError, InterfaceError)
RUNNABLE_STATUSES = (Enrolment.Status.ACTIVE, Enrolment.Status.WAITING)
# A guard against a runaway loop, because plays have a handful of steps.
MAX_STEPS_PER_RUN = 100
DUE_BATCH_SIZE = 200
# Beat starts the due-enrolment run every minute, and stopping before that
# keeps runs from piling up.
DUE_RUN_SECONDS = 50
OUTCOME_MAX_LENGTH = StepRun._meta.get_field("outcome").max_length


WAIT_ACTION = "wait"


def run_wait_step(context: ActionContext) -> ActionResult:
    """Pause the enrolment for the step's `wait_hours`."""
    hours = context.step.wait_hours or 0
    resume_at = context.step_run.started_at + timedelta(hours=hours)
    return ActionResult(
        outcome=f"wait {hours} h, until {resume_at:%Y-%m-%d %H:%M} UTC",
        details={RESUME_AT: resume_at},
    )


def _is_enrollable(member: Member) -> bool:
    return (
        member.deactivated_at is None
        and member.anonymised_at is None
        and member.merged_into_id is None
    )


def _finish(enrolment: Enrolment, status: str, now: datetime, error: str = ""):
    enrolment.status = status
    enrolment.next_run_at = None
    enrolment.finished_at = now
    enrolment.last_error = error
    enrolment.save(update_fields=["status", "next_run_at", "finished_at", "last_error"])


def _move_on(enrolment: Enrolment, step: PlayStep, run_at: datetime, status: str):
    enrolment.next_position = step.position + 1
    enrolment.next_run_at = run_at
    enrolment.status = status
    enrolment.save(update_fields=["next_position", "next_run_at", "status"])


def _close_step_run(step_run: StepRun, status: str, outcome: str, now: datetime):
    step_run.status = status
    step_run.outcome = outcome[:OUTCOME_MAX_LENGTH]
    step_run.finished_at = now
    step_run.save()


def _check_consent(step: PlayStep, member: Member | None, now: datetime) -> str:
    """Return why the step may not run for lack of consent, or ""."""
    purpose = step.consent_purpose
    # A wait contacts nobody. Admin rejects a purpose on wait steps, but one
    # saved before that check must not let members skip the wait.
    if not purpose or step.action == WAIT_ACTION:
        return ""
    if member is None:
        return f"no member to check {purpose} consent for"
    if not has_consent(member=member, purpose_key=purpose, at=now):
        return f"no {purpose} consent"
    return ""


def _check_fatigue_cap(member: Member, channel: str, now: datetime) -> str:
    """Lock the member's row and return why the cap blocks a touch, or "".

    The lock lasts until the step's transaction ends, after its touch is
    written, so two workers touching one member count one after the other.
    """
    list(Member.objects.select_for_update().filter(pk=member.pk).values_list("pk"))
    cap = FatigueCap.objects.filter(channel=channel).first()
    if cap is None:
        return ""
    touches = Touch.objects.filter(
        member=member,
        channel=channel,
        touched_at__gt=now - timedelta(days=cap.period_days),
    ).count()
    if touches >= cap.max_touches:
        return f"fatigue cap: {cap.max_touches} per {cap.period} on {channel}"
    return ""


def _describe_error(exc: Exception) -> str:
    if isinstance(exc, DomainError):
        return exc.message
    return f"{type(exc).__name__}: {exc}"


def _fail_step(
    enrolment: Enrolment,
    step: PlayStep,
    step_run: StepRun,
    error: str,
    now: datetime,
) -> None:
    step_run.error = error
    _close_step_run(step_run, StepRun.Status.FAILED, "failed", now)
    _finish(
        enrolment,
        Enrolment.Status.FAILED,
        now,
        error=f"step {step.position} ({step.action}) failed: {error}",
    )


def _run_step(enrolment: Enrolment, step: PlayStep, now: datetime) -> bool:
    """Run one step inside the caller's transaction.

    Return whether the enrolment's next step may run now, which is False
    after a failure or when the step made the enrolment wait.
    """
    member = enrolment.member
    step_run, created = StepRun.objects.get_or_create(
        enrolment=enrolment,
        step=step,
        defaults={"status": StepRun.Status.RUNNING, "started_at": now},
    )
    if not created and step_run.status in (StepRun.Status.DONE, StepRun.Status.SKIPPED):
        _move_on(enrolment, step, now, Enrolment.Status.ACTIVE)
        return True
    step_run.status = StepRun.Status.RUNNING
    step_run.started_at = now
    step_run.error = ""
    step_run.attempts += 1

    action = get_action(step.action)
    if action is None:
        error = f"unknown action {step.action!r}: no installed app registers it"
        logger.error(
            "play step failed: enrolment %s, step %s: %s",
            enrolment.pk,
            step.position,
            error,
        )
        _fail_step(enrolment, step, step_run, error, now)
        return False
    reason = _check_consent(step, member, now)
    if not reason and action.channel and member is not None:
        reason = _check_fatigue_cap(member, action.channel, now)
    if reason:
        _close_step_run(step_run, StepRun.Status.SKIPPED, reason, now)
        _move_on(enrolment, step, now, Enrolment.Status.ACTIVE)
        return True

    context = ActionContext(
        play=enrolment.play,
        step=step,
        enrolment=enrolment,
        step_run=step_run,
        member=member,
        account=enrolment.account or (member.account if member else None),
    )
    try:
        with transaction.atomic():
            result = action.handler(context)
    except ActionSkipped as exc:
        _close_step_run(step_run, StepRun.Status.SKIPPED, str(exc) or "skipped", now)
        _move_on(enrolment, step, now, Enrolment.Status.ACTIVE)
        return True
    except TRANSIENT_ERRORS:
        raise
    except DomainError as exc:
        # An expected failure, such as a step text that renders empty for this
        # member: the step run keeps the message, and a large audience must
        # not fill the log with tracebacks.
        logger.warning(
            "play step failed: enrolment %s, step %s, code %s",
            enrolment.pk,
            step.position,
            exc.code,
        )
        _fail_step(enrolment, step, step_run, exc.message, now)
        return False
    except Exception as exc:
        logger.exception(
            "play step failed: enrolment %s, step %s",
            enrolment.pk,
            step.position,
        )
        _fail_step(enrolment, step, step_run, _describe_error(exc), now)
        return False

    if action.channel and member is not None:
        # A handler may have written the step run's touch already, as the
        # marker that makes a repeated call send nothing (the email handler).
        Touch.objects.get_or_create(
            step_run=step_run,
            defaults={
                "member": member,
                "channel": action.channel,
                "play": enrolment.play,
                "touched_at": now,
            },
        )
    _close_step_run(step_run, StepRun.Status.DONE, result.outcome, now)
    resume_at = result.details.get(RESUME_AT)
    if resume_at is not None and resume_at > now:
        _move_on(enrolment, step, resume_at, Enrolment.Status.WAITING)
        return False
    _move_on(enrolment, step, now, Enrolment.Status.ACTIVE)
    return True


@transaction.atomic
def _run_next_step(*, enrolment_id: int, now: datetime) -> tuple[bool, bool]:
    """Run the enrolment's next step if it is due.

    Return whether a step ran, and whether the next one may run now.
    """
    enrolment = (
        Enrolment.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("play", "member", "account", "member__account")
        .filter(pk=enrolment_id, status__in=RUNNABLE_STATUSES)
        .first()
    )
    if enrolment is None:
        # Finished, deleted, or another worker holds its lock right now.
        return False, False
    if enrolment.play.status != Play.Status.ACTIVE:
        return False, False
    if enrolment.next_run_at is not None and enrolment.next_run_at > now:
        return False, False

    member = enrolment.member
    if member is not None and not _is_enrollable(member):
        error = "member was deactivated, anonymised or merged"
        _finish(enrolment, Enrolment.Status.EXITED, now, error=error)
        return False, False
    step = (
        enrolment.play.steps.filter(position__gte=enrolment.next_position)
        .order_by("position")
        .first()
    )
    if step is None:
        _finish(enrolment, Enrolment.Status.COMPLETED, now)
        return False, False

    return True, _run_step(enrolment, step, now)


def run_enrolment(*, enrolment_id: int, now: datetime | None = None) -> int:
    """Run an enrolment's due steps until it waits, ends or fails.

    Return the number of steps run: 0 when the enrolment is not due, has
    ended, belongs to a play that is not active, or another worker is
    running it.
    """
    steps_run = 0
    for _ in range(MAX_STEPS_PER_RUN):
        ran, go_on = _run_next_step(
            enrolment_id=enrolment_id, now=now or timezone.now()
        )
        steps_run += ran
        if not go_on:
            break
    return steps_run


def run_enrolments(*, enrolment_ids: list[int], now: datetime | None = None) -> int:
    """Run each enrolment in turn, so that one enrolment's error never stops the rest.

    Return the number of steps run. An unexpected error is logged and the
    enrolment stays due, so the next due-enrolment run tries it again. A
    transient database error is raised instead, because the connection may
    be unusable. The task then retries with a fresh connection and skips
    the steps that committed.
    """
    steps_run = 0
    for enrolment_id in enrolment_ids:
        try:
            steps_run += run_enrolment(enrolment_id=enrolment_id, now=now)
        except TRANSIENT_ERRORS:
            raise
        except Exception:
            logger.exception("play enrolment run failed: enrolment %s", enrolment_id)
    return steps_run


def list_due_enrolment_ids(
    *, now: datetime, after_id: int = 0, limit: int = DUE_BATCH_SIZE
) -> list[int]:
    """Return ids of enrolments of active plays whose next step is due."""
    return list(
        Enrolment.objects.filter(
            status__in=RUNNABLE_STATUSES,
            next_run_at__lte=now,
            play__status=Play.Status.ACTIVE,
            pk__gt=after_id,
        )
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )


def run_due_enrolments(
    *, now: datetime | None = None, max_seconds: float = DUE_RUN_SECONDS
) -> int:
    """Run due enrolments in batches until none is left or time runs out.

    Return the number of steps run. Several workers may run this at once:
    each enrolment is locked with SKIP LOCKED while it runs, so they share
    the work instead of repeating it.
    """
    started = time.monotonic()
    steps_run = 0
    last_id = 0
    while enrolment_ids := list_due_enrolment_ids(
        now=now or timezone.now(), after_id=last_id
    ):
        steps_run += run_enrolments(enrolment_ids=enrolment_ids, now=now)
        last_id = enrolment_ids[-1]
        if time.monotonic() - started > max_seconds:
            logger.info("due enrolment run stopped after %d s", max_seconds)
            break
    return steps_run
