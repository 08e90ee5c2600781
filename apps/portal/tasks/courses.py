"""Periodic certificate work: recertification reminders and expiry events."""

import logging

from celery import shared_task
from django.db import OperationalError

from apps.portal.services.certificates import (
    record_certificate_expiries,
    send_certificate_reminders,
)

logger = logging.getLogger(__name__)


@shared_task(
    name="portal.send_certificate_reminders",
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
)
def send_certificate_reminders_task() -> int:
    """Send the recertification reminders due now; safe to run twice."""
    return send_certificate_reminders()


@shared_task(
    name="portal.record_certificate_expiries",
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
)
def record_certificate_expiries_task() -> int:
    """Record an expiry event for each certificate that lapsed; safe to run twice."""
    handled = record_certificate_expiries()
    if handled:
        logger.info("certificate expiries recorded: %d", handled)
    return handled
