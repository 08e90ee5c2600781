"""CSM tasks: the play step that creates them and the staff task list."""

import zoneinfo
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, F, Q, QuerySet
from django.utils import timezone

from apps.lifecycle.actions import ActionContext, ActionResult, ActionSkipped
from apps.lifecycle.delivery.content import build_template_context, render_step_text
from apps.lifecycle.models import CsmTask
from apps.membership.models import Account, AuditEntry
from rm6.errors import DomainError

TITLE_MAX_LENGTH = CsmTask._meta.get_field("title").max_length
CLOSED_STATUSES = (CsmTask.Status.DONE, CsmTask.Status.DISMISSED)
# Far larger values overflow the date arithmetic when the step runs.
MAX_DUE_IN_DAYS = 3650


def is_valid_due_in_days(days: object) -> bool:
    """Return whether a step config's `due_in_days` is a usable day count."""
    if isinstance(days, bool) or not isinstance(days, int):
        return False
    return 0 <= days <= MAX_DUE_IN_DAYS


def _get_due_on(step, account: Account):
    days = step.config.get("due_in_days")
    if days is None:
        return None
    if not is_valid_due_in_days(days):
        raise DomainError(
            f"The csm_task step at position {step.position} of play "
            f"{step.play.play_id!r} has due_in_days {days!r}; use a whole "
            f"number of days from 0 to {MAX_DUE_IN_DAYS}, or leave it out for "
            "no due date.",
            field="due_in_days",
            code="invalid_step_config",
        )
    try:
        zone = zoneinfo.ZoneInfo(account.time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = zoneinfo.ZoneInfo("UTC")
    return timezone.localdate(timezone.now(), zone) + timedelta(days=days)


@transaction.atomic
def create_play_csm_task(ctx: ActionContext) -> ActionResult:
    """Create a task for the CSM who owns the enrolled account.

    The config's `title` and `description` are step templates, and
    `due_in_days` counts from today in the account's time zone. A task for
    an account without an owner is created unassigned. A second call for
    the same step run returns the task of the first.
    """
    account = ctx.account
    if account is None and ctx.member is not None:
        account = ctx.member.account
    if account is None:
        raise ActionSkipped("member has no account yet, so no CSM owns them")

    step = ctx.step
    context = build_template_context(member=ctx.member, account_name=account.name)
    title = render_step_text(step, "title", context)[:TITLE_MAX_LENGTH]
    description = render_step_text(step, "description", context, required=False)
    due_on = _get_due_on(step, account)

    task, created = CsmTask.objects.get_or_create(
        step_run=ctx.step_run,
        defaults={
            "account": account,
            "member": ctx.member,
            "owner_id": account.owner_id,
            "title": title,
            "description": description,
            "due_on": due_on,
            "play": ctx.play,
        },
    )

    if not created:
        outcome = "CSM task already created"
    elif task.owner_id is None:
        outcome = "CSM task created unassigned: the account has no owner"
    else:
        outcome = "CSM task created"
    return ActionResult(outcome=outcome, details={"csm_task_id": task.pk})


def list_csm_tasks(
    *,
    owner_id: int | None = None,
    is_unassigned: bool = False,
    status: str | None = None,
    account_id: int | None = None,
) -> QuerySet[CsmTask]:
    """Return CSM tasks, due first and undated last, filtered as given.

    `owner_id` None with `is_unassigned` False means any owner, and `status`
    None means any status.
    """
    tasks = CsmTask.objects.select_related("account", "member__user", "owner", "play")
    if is_unassigned:
        tasks = tasks.filter(owner__isnull=True)
    elif owner_id is not None:
        tasks = tasks.filter(owner_id=owner_id)
    if status is not None:
        tasks = tasks.filter(status=status)
    if account_id is not None:
        tasks = tasks.filter(account_id=account_id)
    return tasks.order_by(F("due_on").asc(nulls_last=True), "-created_at", "-id")


def get_other_csm_task_counts(
    *, owner_id: int, status: str | None = None, account_id: int | None = None
) -> dict[str, int]:
    """Count the tasks that match the filters but are not assigned to `owner_id`.

    Return the number assigned to other staff as "assigned" and the number
    without an owner as "unassigned", from one query.
    """
    tasks = list_csm_tasks(status=status, account_id=account_id)
    return tasks.exclude(owner_id=owner_id).aggregate(
        assigned=Count("pk", filter=Q(owner__isnull=False)),
        unassigned=Count("pk", filter=Q(owner__isnull=True)),
    )


def list_csm_task_owners() -> QuerySet:
    """Return the active staff users a task list can be filtered by."""
    return (
        get_user_model()
        .objects.filter(is_staff=True, is_active=True)
        .order_by("email", "pk")
    )


def access_csm_task(*, user, task_id: int) -> CsmTask:
    """Return a CSM task for a staff user.

    Raise PermissionDenied for anyone else, and CsmTask.DoesNotExist for an
    unknown id.
    """
    if not (user.is_authenticated and user.is_staff):
        raise PermissionDenied("Only staff may open CSM tasks.")
    return CsmTask.objects.select_related(
        "account", "member__user", "owner", "play"
    ).get(pk=task_id)


@transaction.atomic
def close_csm_task(*, task: CsmTask, status: str, closed_by) -> CsmTask:
    """Mark an open task done or dismissed, and audit who did it.

    Closing it again with the same status changes nothing. Raise
    DomainError for another status or for a task closed the other way.
    """
    if status not in CLOSED_STATUSES:
        raise DomainError(
            f"Status {status!r} is invalid. Close a CSM task as done or dismissed.",
            field="status",
        )
    locked = CsmTask.objects.select_for_update().get(pk=task.pk)
    if locked.status == status:
        task.status, task.completed_at = locked.status, locked.completed_at
        return task
    if locked.status != CsmTask.Status.OPEN:
        raise DomainError(
            f"CSM task {task.pk} is already {locked.get_status_display().lower()}, "
            f"so it cannot be marked {CsmTask.Status(status).label.lower()}.",
            field="status",
            code="task_closed",
        )

    locked.status = status
    locked.completed_at = timezone.now()
    locked.save(update_fields=["status", "completed_at"])

    AuditEntry.objects.create(
        actor=closed_by,
        action="csm_task_closed",
        member_id=locked.member_id,
        account_id=locked.account_id,
        details={"csm_task_id": locked.pk, "status": status},
    )
    task.status, task.completed_at = locked.status, locked.completed_at
    return task
