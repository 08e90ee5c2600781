"""Scheduled work of the knowledge base."""

import logging

from celery import shared_task

from apps.portal.selectors.knowledge import list_owners_with_overdue_reviews
from apps.portal.services.knowledge import send_overdue_review_reminder

logger = logging.getLogger(__name__)


@shared_task(name="portal.send_overdue_review_reminders")
def send_overdue_review_reminders_task() -> int:
    """Email each owner of overdue articles their list, once a day.

    Return the number of reminders sent; a second run the same day sends none.
    """
    sent = 0
    for owner_id in list_owners_with_overdue_reviews():
        sent += send_overdue_review_reminder(owner_id=owner_id)
    logger.info("overdue review reminders sent", extra={"count": sent})
    return sent
