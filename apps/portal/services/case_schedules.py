"""Scheduled work on cases: SLA breach flags and escalation, auto-close,
and offers to escalate unanswered community questions.

Each function works in bounded batches and is safe to run twice, or twice
at once, because each change is guarded by a conditional UPDATE, a row
lock or a unique constraint.
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone

from apps.lifecycle.delivery.notifications import notify_member
from apps.lifecycle.models import CsmTask
from apps.lifecycle.services import record_activity
from apps.portal.models import Case, EscalationOffer
from apps.portal.selectors.cases import OPEN_STATUSES, list_questions_to_offer
from apps.portal.services.cases import apply_case_status

logger = logging.getLogger(__name__)

Status = Case.Status


def _breach_candidates(now: datetime) -> Q:
    open_case = Q(status__in=OPEN_STATUSES)
    first_response = Q(first_response_breached_at__isnull=True) & (
        Q(first_responded_at__isnull=True, first_response_due_at__lt=now)
        | Q(first_responded_at__gt=F("first_response_due_at"))
    )
    resolution = Q(resolution_breached_at__isnull=True, resolution_due_at__lt=now)
    return open_case & (first_response | resolution)


def flag_sla_breaches(*, now: datetime | None = None, batch_size: int = 500) -> int:
    """Flag cases past their due times, escalate them and record the events.

    Each flag is set by an UPDATE that requires it unset, so two runs at the
    same time flag, escalate and record each breach once. Returns how many
    flags this run set.
    """
    now = now or timezone.now()
    case_ids = list(
        Case.objects.filter(_breach_candidates(now))
        .order_by("id")
        .values_list("id", flat=True)[:batch_size]
    )
    flagged = 0
    for case_id in case_ids:
        flagged += _flag_case_breaches(case_id=case_id, now=now)
    if flagged:
        logger.info("case SLA breaches flagged: %s", flagged)
    return flagged


@transaction.atomic
def _flag_case_breaches(*, case_id: int, now: datetime) -> int:
    flagged = []
    first_response = Case.objects.filter(
        Q(first_responded_at__isnull=True, first_response_due_at__lt=now)
        | Q(first_responded_at__gt=F("first_response_due_at")),
        pk=case_id,
        status__in=OPEN_STATUSES,
        first_response_breached_at__isnull=True,
    ).update(first_response_breached_at=now)
    if first_response:
        flagged.append("first_response")
    resolution = Case.objects.filter(
        pk=case_id,
        status__in=OPEN_STATUSES,
        resolution_breached_at__isnull=True,
        resolution_due_at__lt=now,
    ).update(resolution_breached_at=now)
    if resolution:
        flagged.append("resolution")
    if not flagged:
        return 0

    case = Case.objects.select_related("member", "account__owner", "assignee").get(
        pk=case_id
    )
    for target in flagged:
        record_activity(
            member=case.member,
            kind="portal.case_sla_breached",
            subject=case,
            occurred_at=now,
            properties={"target": target, "priority": case.priority},
        )
    _escalate_case(case, reason=flagged[0], now=now)
    return len(flagged)


def _escalate_case(case: Case, *, reason: str, now: datetime) -> None:
    """Escalate a breached case once: a CSM task for its assignee or CSM."""
    escalated = Case.objects.filter(pk=case.pk, escalated_at__isnull=True).update(
        escalated_at=now
    )
    if not escalated:
        return
    owner = case.assignee or (case.account.owner if case.account else None)
    target = "first response" if reason == "first_response" else "resolution"
    url = reverse("portal:case_staff", kwargs={"pk": case.pk})
    task_id = None
    if case.account_id is None:
        # CSM tasks belong to an account; the breach flag in the staff queue
        # is then the only alert.
        logger.warning("case escalation without account: case %s", case.pk)
    else:
        task = CsmTask.objects.create(
            account=case.account,
            member=case.member,
            owner=owner,
            title=f"Case #{case.pk} missed its {target} target",
            description=(
                f"The {case.get_priority_display().lower()} case "
                f"“{case.subject}” is past its {target} due time. Open it at "
                f"{url}."
            ),
            due_on=timezone.localdate(now),
        )
        task_id = task.pk
    record_activity(
        member=case.member,
        kind="portal.case_escalated",
        subject=case,
        occurred_at=now,
        properties={
            "reason": reason,
            "owner_id": owner.pk if owner else None,
            "csm_task_id": task_id,
        },
    )


def close_solved_cases(*, now: datetime | None = None, batch_size: int = 500) -> int:
    """Close cases solved more than RM6_CASE_AUTO_CLOSE_DAYS ago; return how many."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.RM6_CASE_AUTO_CLOSE_DAYS)
    case_ids = list(
        Case.objects.filter(status=Status.SOLVED, solved_at__lt=cutoff)
        .order_by("id")
        .values_list("id", flat=True)[:batch_size]
    )
    closed = 0
    for case_id in case_ids:
        with transaction.atomic():
            case = (
                Case.objects.select_for_update(skip_locked=True)
                .filter(pk=case_id, status=Status.SOLVED, solved_at__lt=cutoff)
                .select_related("member")
                .first()
            )
            if case is None:
                continue
            apply_case_status(case, to_status=Status.CLOSED, actor=None, now=now)
            closed += 1
    if closed:
        logger.info("solved cases closed: %s", closed)
    return closed


def offer_question_escalations(
    *, now: datetime | None = None, batch_size: int = 500
) -> int:
    """Offer a support case to the authors of questions unanswered too long.

    Each question gets one offer, guarded by the unique topic of
    EscalationOffer, so repeated or concurrent runs notify once. Returns
    how many offers this run made.
    """
    now = now or timezone.now()
    offered = 0
    for topic in list_questions_to_offer(now=now, limit=batch_size):
        with transaction.atomic():
            _, created = EscalationOffer.objects.get_or_create(
                topic=topic, defaults={"member": topic.author, "offered_at": now}
            )
            if not created:
                continue
            url = reverse("portal:case_new") + f"?topic={topic.pk}"
            notify_member(
                member=topic.author,
                kind="portal.escalation_offered",
                title=f"No reply yet to “{topic.title}”: ask support",
                body=(
                    f"Your question has had no reply for "
                    f"{settings.RM6_ESCALATION_AFTER_HOURS} hours. You can turn "
                    "it into a support case, prefilled with the question."
                ),
                url=url,
                subject=topic,
            )
            record_activity(
                member=topic.author,
                kind="portal.escalation_offered",
                subject=topic,
                occurred_at=now,
            )
            offered += 1
    return offered
