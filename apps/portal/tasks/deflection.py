"""Scheduled work of case deflection and the content-gap backlog."""

from celery import shared_task

from apps.portal.services.deflection import classify_attempts
from apps.portal.services.gaps import group_content_gaps


@shared_task(name="portal.classify_case_attempts")
def classify_case_attempts_task() -> dict:
    """Settle pending case attempts whose outcome is now known."""
    result = classify_attempts()
    return {"deflected": result.deflected, "not_deflected": result.not_deflected}


@shared_task(name="portal.group_content_gaps")
def group_content_gaps_task() -> dict:
    """Regroup unanswered cases and no-result searches into content gaps."""
    result = group_content_gaps()
    return {"case_gaps": result.case_gaps, "search_gaps": result.search_gaps}
