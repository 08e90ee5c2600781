import logging
from collections.abc import Iterable
from datetime import datetime

from celery import shared_task
from django.db import OperationalError

from apps.lifecycle import scoring
from apps.lifecycle.delivery import event_webhooks, webhooks
from apps.lifecycle.ingestion import held
from apps.lifecycle.plays import runner, schedules, triggers
from apps.lifecycle.scoring import statements as score_statements
from apps.membership.services.data_sources import Source as DataSource
from apps.membership.services.data_sources import (
    describe_error,
    record_source_failure,
    record_source_run,
    record_source_success,
)

logger = logging.getLogger(__name__)


def _describe_score_error(error: Exception) -> str:
    """Describe a failed score computation for the freshness panel.

    A score row locked too long gets a sentence, as its cause and remedy
    are known. Other errors get their class only, as a database error's
    message may quote the values it rejected.
    """
    if isinstance(error, scoring.StalePassLocked) or scoring.is_lock_timeout(error):
        seconds = score_statements.SCORE_LOCK_TIMEOUT.total_seconds()
        return (
            f"another transaction kept a score row locked for more than "
            f"{seconds:g} s, so the run stopped; it is tried again"
        )
    return describe_error(error)


def _score_computation_run(action: str):
    """Record a score computation run, as record_source_run does."""
    return record_source_run(
        source=DataSource.SCORE_COMPUTATION,
        action=action,
        describe=_describe_score_error,
    )


@shared_task(
    name="lifecycle.refresh_member_scores",
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def refresh_member_scores_task(*, member_ids: list[int]) -> int:
    """Recompute the given members' scores; members deleted since are skipped."""
    with _score_computation_run("member score refresh"):
        return scoring.refresh_member_health_scores(member_ids=member_ids)


@shared_task(
    name="lifecycle.refresh_account_scores",
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def refresh_account_scores_task(*, account_ids: list[int]) -> int:
    """Recompute the given accounts' scores; accounts deleted since are skipped."""
    with _score_computation_run("account score refresh"):
        return scoring.refresh_account_health_scores(account_ids=account_ids)


def _queue_batches(
    task, keyword: str, batches: Iterable[list[int]], *, action: str
) -> int:
    """Send one message per batch of ids and return the number of ids sent.

    A message per batch, never per member, lets several workers share a pass.
    The refresh tasks record the score computation's successes. A pass with
    nothing to queue records one itself, because every score is current then.
    """
    queued = 0
    try:
        for ids in batches:
            task.delay(**{keyword: ids})
            queued += len(ids)
    except Exception as error:
        record_source_failure(
            source=DataSource.SCORE_COMPUTATION,
            error=f"{action} failed: {describe_error(error)}",
        )
        raise

    if not queued:
        record_source_success(source=DataSource.SCORE_COMPUTATION)
    return queued


def _run_stale_pass(refresh, *, level: str, action: str) -> int:
    """Run a stale pass, recording it as a score computation run.

    A pass that stops at a score row another transaction keeps locked is
    recorded as a failure and not retried: the next beat run starts it
    again, and a retry would wait for the same lock.
    """
    try:
        with _score_computation_run(action):
            refreshed = refresh()
    except scoring.StalePassLocked as error:
        logger.warning("stale %s pass stopped: %s", level, error)
        return 0
    logger.info("stale %s scores refreshed: %d", level, refreshed)
    return refreshed


@shared_task(
    name="lifecycle.rescore_stale_members",
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def rescore_stale_members_task() -> int:
    """Refresh members with new events, no score or a decayed one, here.

    The stale members are few between two runs, so the task scores them
    itself, a page per transaction, rather than sending a message per batch.
    """
    return _run_stale_pass(
        scoring.refresh_stale_member_scores, level="member", action="stale member pass"
    )


@shared_task(name="lifecycle.rescore_all_members")
def rescore_all_members_task() -> int:
    """Queue a refresh of every member, in batches of ids."""
    queued = _queue_batches(
        refresh_member_scores_task,
        "member_ids",
        scoring.iter_id_batches("member"),
        action="full member pass",
    )
    logger.info("all member scores queued: %d", queued)
    return queued


@shared_task(
    name="lifecycle.rescore_stale_accounts",
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def rescore_stale_accounts_task() -> int:
    """Refresh accounts whose members have new events, or decayed ones, here."""
    return _run_stale_pass(
        scoring.refresh_stale_account_scores,
        level="account",
        action="stale account pass",
    )


@shared_task(name="lifecycle.rescore_all_accounts")
def rescore_all_accounts_task() -> int:
    """Queue a refresh of every account, in batches of ids."""
    queued = _queue_batches(
        refresh_account_scores_task,
        "account_ids",
        scoring.iter_id_batches("account"),
        action="full account pass",
    )
    logger.info("all account scores queued: %d", queued)
    return queued


@shared_task(name="lifecycle.deliver_webhook")
def deliver_webhook_task(*, delivery_id: int, claimed_until: str | None = None) -> None:
    """Make one attempt at a webhook delivery under the claim it was queued with.

    Without a claim, the delivery is claimed here when it is due. A claim
    that expired or moved on to another worker makes this a no-op.
    """
    claim = datetime.fromisoformat(claimed_until) if claimed_until else None
    webhooks.deliver_webhook(delivery_id=delivery_id, claimed_until=claim)


@shared_task(name="lifecycle.retry_webhooks")
def retry_webhooks_task() -> int:
    """Queue an attempt for each webhook delivery that is due, in one batch."""
    queued = webhooks.queue_due_webhook_deliveries()
    if queued:
        logger.info("due webhook deliveries queued: %d", queued)
    return queued


@shared_task(name="lifecycle.purge_held_usage_events")
def purge_held_usage_events_task() -> int:
    """Delete held Segment messages older than the retention."""
    return held.purge_held_events()


@shared_task(name="lifecycle.release_matched_held_events")
def release_matched_held_events_task() -> int:
    """Record held Segment messages whose person has since become a member.

    A failed run needs no retry of its own: the next scheduled run matches
    the same messages again.
    """
    return held.release_matched_held_events()


@shared_task(name="lifecycle.sweep_event_webhooks")
def sweep_event_webhooks_task() -> int:
    """Create and send the webhook deliveries of the events recorded lately."""
    return event_webhooks.sweep_event_webhooks()


@shared_task(
    name="lifecycle.evaluate_event_triggers",
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def evaluate_event_triggers_task(*, event_ids: list[int]) -> int:
    """Enrol the subjects of these events in the active plays they trigger."""
    return triggers.evaluate_event_triggers(event_ids=event_ids)


@shared_task(
    name="lifecycle.evaluate_account_band_change",
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def evaluate_account_band_change_task(
    *, account_id: int, band: str, changed_at: str
) -> int:
    """Enrol an account whose band changed in the account-level band plays."""
    return triggers.evaluate_account_band_change(
        account_id=account_id,
        band=band,
        changed_at=datetime.fromisoformat(changed_at),
    )


@shared_task(name="lifecycle.sweep_event_triggers")
def sweep_event_triggers_task() -> int:
    """Evaluate recent events again, for plays whose dispatch message was lost."""
    return triggers.sweep_event_triggers()


@shared_task(name="lifecycle.evaluate_scheduled_triggers")
def evaluate_scheduled_triggers_task() -> int:
    """Enrol the subjects that schedule-triggered plays select now."""
    created = schedules.evaluate_scheduled_triggers()
    logger.info("scheduled play triggers evaluated: %d enrolment(s)", created)
    return created


@shared_task(
    name="lifecycle.run_enrolment",
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def run_enrolment_task(*, enrolment_id: int) -> int:
    """Run one enrolment's due steps; a missing or finished one is skipped."""
    return runner.run_enrolment(enrolment_id=enrolment_id)


@shared_task(
    name="lifecycle.run_enrolments",
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def run_enrolments_task(*, enrolment_ids: list[int]) -> int:
    """Run the due steps of a few enrolments, each on its own."""
    return runner.run_enrolments(enrolment_ids=enrolment_ids)


@shared_task(name="lifecycle.run_due_enrolments")
def run_due_enrolments_task() -> int:
    """Run enrolments whose wait is over or whose run message was lost."""
    steps_run = runner.run_due_enrolments()
    if steps_run:
        logger.info("due play enrolments run: %d step(s)", steps_run)
    return steps_run
