"""Celery tasks that turn activity events into onboarding progress."""

import logging

from celery import shared_task
from django.db import OperationalError

from apps.portal.services import onboarding as services

logger = logging.getLogger(__name__)


@shared_task(
    name="portal.sync_recent_onboarding_progress",
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def sync_recent_onboarding_progress_task() -> int:
    """Complete steps from the events recorded since the previous run."""
    result = services.sync_progress_since_last_run()
    logger.info(
        "onboarding sync finished: %d steps done, %d paths completed",
        result.steps_done,
        result.paths_completed,
    )
    return result.steps_done


@shared_task(
    name="portal.sync_onboarding_member_range",
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def sync_onboarding_member_range_task(
    *, first_id: int, last_id: int, step_ids: list[int] | None = None
) -> int:
    """Sync all events of the members with ids in [first_id, last_id]."""
    result = services.sync_member_range_progress(
        first_id=first_id, last_id=last_id, step_ids=step_ids
    )
    return result.steps_done


def _queue_member_ranges(*, step_ids: list[int] | None) -> int:
    queued = 0
    for first_id, last_id in services.iter_member_id_ranges():
        sync_onboarding_member_range_task.delay(
            first_id=first_id, last_id=last_id, step_ids=step_ids
        )
        queued += 1
    return queued


@shared_task(name="portal.sync_all_onboarding_progress")
def sync_all_onboarding_progress_task() -> int:
    """Queue a sync of every member's events, one message per range of ids."""
    queued = _queue_member_ranges(step_ids=None)
    logger.info("onboarding full sync queued: %d member ranges", queued)
    return queued


@shared_task(name="portal.backfill_onboarding_steps")
def backfill_onboarding_steps_task(*, step_ids: list[int]) -> int:
    """Queue a sync of new or changed steps against every member's past events."""
    queued = _queue_member_ranges(step_ids=step_ids)
    logger.info(
        "onboarding step backfill queued: %d member ranges for steps %s",
        queued,
        step_ids,
    )
    return queued
