"""Periodic work on support cases; each task calls one service."""

from celery import shared_task

from apps.portal.services import case_schedules


@shared_task(name="portal.flag_case_sla_breaches")
def flag_case_sla_breaches_task() -> int:
    """Flag and escalate cases past their SLA due times."""
    return case_schedules.flag_sla_breaches()


@shared_task(name="portal.close_solved_cases")
def close_solved_cases_task() -> int:
    """Close cases solved longer ago than the auto-close delay."""
    return case_schedules.close_solved_cases()


@shared_task(name="portal.offer_question_escalations")
def offer_question_escalations_task() -> int:
    """Offer a support case to the authors of long-unanswered questions."""
    return case_schedules.offer_question_escalations()
