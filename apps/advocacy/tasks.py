import logging

from celery import shared_task

from apps.advocacy.services import expire_overdue_asks

logger = logging.getLogger(__name__)


@shared_task(name="advocacy.expire_overdue_asks")
def expire_overdue_asks_task() -> int:
    """Mark open advocacy asks past their due date as expired."""
    expired = expire_overdue_asks()
    if expired:
        logger.info("overdue advocacy asks expired: %d", expired)
    return expired
