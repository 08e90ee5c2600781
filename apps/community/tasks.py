import logging

from celery import shared_task
from django.db import OperationalError

from apps.community.selectors.subscriptions import list_digest_member_ids
from apps.community.services.subscriptions import (
    notify_reply_watchers,
    send_member_digest,
)
from apps.membership.models import Member

logger = logging.getLogger(__name__)

DIGEST_BATCH_SIZE = 200


@shared_task(
    name="community.notify_reply_watchers",
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def notify_reply_watchers_task(*, reply_id: int) -> int:
    """Notify the watchers of a reply; a reply deleted since notifies nobody."""
    return notify_reply_watchers(reply_id=reply_id)


@shared_task(
    name="community.send_member_digests",
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def send_member_digests_task(*, member_ids: list[int]) -> int:
    """Send the daily digest to each of the given members; return how many got one."""
    sent = 0
    for member in Member.objects.filter(pk__in=member_ids).select_related("user"):
        sent += send_member_digest(member=member)
    return sent


@shared_task(name="community.send_daily_digests")
def send_daily_digests_task() -> int:
    """Queue the daily digests in batches of member ids; return how many members."""
    queued = 0
    after_id = 0
    while member_ids := list_digest_member_ids(
        after_id=after_id, limit=DIGEST_BATCH_SIZE
    ):
        send_member_digests_task.delay(member_ids=member_ids)
        queued += len(member_ids)
        after_id = member_ids[-1]
    logger.info("daily digests queued: %d members", queued)
    return queued
