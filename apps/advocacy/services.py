from django.db import transaction
from django.db.models import Sum

from apps.advocacy.models import PointsEntry
from apps.lifecycle.actions import ActionContext, ActionResult, ActionSkipped
from apps.lifecycle.models import ActivityEvent
from apps.membership.models import Member
from rm6.errors import DomainError

REPLY_POINTS = 10


@transaction.atomic
def award_points(
    *,
    member: Member,
    points: int,
    reason: str,
    event: ActivityEvent | None = None,
    note: str = "",
) -> PointsEntry:
    """Add a ledger entry; for an event, at most one per (event, reason)."""
    if points == 0:
        raise DomainError("An award of 0 points changes nothing.", field="points")
    if event is None:
        return PointsEntry.objects.create(
            member=member, points=points, reason=reason, note=note
        )
    entry, _ = PointsEntry.objects.get_or_create(
        event=event,
        reason=reason,
        defaults={"member": member, "points": points, "note": note},
    )
    return entry


MERGED_OUT_REASON = "merged_out"
MERGED_IN_REASON = "merged_in"


@transaction.atomic
def move_merged_member_points(*, survivor: Member, duplicate: Member) -> dict[str, int]:
    """Move the duplicate's points balance to the survivor of a member merge.

    The ledger is append-only, so no entry is re-pointed. The duplicate gets
    an entry of minus its balance and the survivor one of plus that balance,
    each noting the other member. Called through the merge handler registry
    by `apps.membership.services.merge.merge_members`.

    NOTE: the merge locks the duplicate's member row, but award_points does
    not take that lock, so points awarded to the duplicate by a transaction
    that commits during the merge stay on the duplicate.
    """
    balance = PointsEntry.objects.filter(member=duplicate).aggregate(
        total=Sum("points")
    )["total"]
    if not balance:
        return {"points_moved": 0}

    award_points(
        member=duplicate,
        points=-balance,
        reason=MERGED_OUT_REASON,
        note=f"Moved to member {survivor.pk} by a merge.",
    )
    award_points(
        member=survivor,
        points=balance,
        reason=MERGED_IN_REASON,
        note=f"Moved from member {duplicate.pk} by a merge.",
    )
    return {"points_moved": balance}


def award_play_points(context: ActionContext) -> ActionResult:
    """Award the points a play step sets in its config, once per step run.

    The step's config is {"points": <non-zero integer>}. The entry's reason
    is "play:<play ID>" and its note names the step run. The play runner
    holds the enrolment's row lock while the step runs, and the entry commits
    in the step's transaction. The lookup by note makes a second call for the
    same step run return the first entry instead of adding one.
    """
    # NOTE: no database constraint makes the entry unique per step run; a
    # unique step run reference on PointsEntry would enforce it.
    member = context.member
    if member is None:
        raise ActionSkipped("points need a member; this enrolment is for an account")
    points = context.step.config.get("points")
    if isinstance(points, bool) or not isinstance(points, int) or points == 0:
        raise DomainError(
            f"Invalid points {points!r} in the step config; set "
            '{"points": <non-zero integer>}.',
            field="config",
        )

    reason = f"play:{context.play.play_id}"
    note = f"Play step run {context.step_run.pk}."
    entry = PointsEntry.objects.filter(member=member, reason=reason, note=note).first()
    if entry is not None:
        return ActionResult(outcome=f"{entry.points:+d} points, awarded before")

    entry = award_points(member=member, points=points, reason=reason, note=note)
    return ActionResult(
        outcome=f"{points:+d} points", details={"points_entry_id": entry.pk}
    )
