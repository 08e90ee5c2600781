import logging

from celery import shared_task
from django.db import OperationalError

from apps.lifecycle import scoring
from apps.membership.models import Member

logger = logging.getLogger(__name__)

BATCH_SIZE = 5000


@shared_task(
    name="lifecycle.refresh_member_scores",
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def refresh_member_scores_task(*, member_ids: list[int]) -> int:
    """Recompute the given members' scores; members deleted since are skipped."""
    return scoring.refresh_member_health_scores(member_ids=member_ids)


@shared_task(name="lifecycle.rescore_stale_members")
def rescore_stale_members_task() -> int:
    """Rescore, in batches, members with new events or a decayed score."""
    total = 0
    last_id = 0
    while member_ids := scoring.list_stale_member_ids(
        after_id=last_id, limit=BATCH_SIZE
    ):
        total += scoring.refresh_member_health_scores(member_ids=member_ids)
        last_id = member_ids[-1]
    logger.info("stale member scores refreshed: %d", total)
    return total


@shared_task(name="lifecycle.rescore_all_members")
def rescore_all_members_task() -> int:
    """Rescore every member, in batches of ids."""
    total = 0
    last_id = 0
    while True:
        member_ids = list(
            Member.objects.filter(pk__gt=last_id)
            .order_by("pk")
            .values_list("pk", flat=True)[:BATCH_SIZE]
        )
        if not member_ids:
            break
        total += scoring.refresh_member_health_scores(member_ids=member_ids)
        last_id = member_ids[-1]
    logger.info("all member scores refreshed: %d", total)
    return total
