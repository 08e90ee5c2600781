from datetime import date, timedelta

from django.db import transaction
from django.db.models import Sum
from django.urls import reverse
from django.utils import timezone

from apps.advocacy.models import AdvocacyAsk, Badge, MemberBadge, PointsEntry
from apps.lifecycle.actions import ActionContext, ActionResult, ActionSkipped
from apps.lifecycle.delivery.content import build_template_context, render_step_text
from apps.lifecycle.delivery.notifications import notify_member
from apps.lifecycle.delivery.step_config import check_step_template
from apps.lifecycle.models import ActivityEvent, Play, StepRun
from apps.lifecycle.services import record_activity
from apps.membership.models import Member
from apps.membership.selectors.consent import has_consent
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
    """Move the duplicate's points balance, badges and asks to the survivor of a merge.

    The ledger is append-only, so no entry is re-pointed. The duplicate gets
    an entry of minus its balance and the survivor one of plus that balance,
    each noting the other member. Called through the merge handler registry
    by `apps.membership.services.merge.merge_members`.

    NOTE: the merge locks the duplicate's member row, but award_points does
    not take that lock, so points awarded to the duplicate by a transaction
    that commits during the merge stay on the duplicate.
    """
    moved = _move_merged_member_badges_and_asks(survivor=survivor, duplicate=duplicate)
    balance = PointsEntry.objects.filter(member=duplicate).aggregate(
        total=Sum("points")
    )["total"]
    if not balance:
        return {"points_moved": 0, **moved}

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
    return {"points_moved": balance, **moved}


def _move_merged_member_badges_and_asks(
    *, survivor: Member, duplicate: Member
) -> dict[str, int]:
    """Move the duplicate's asks, and the badges the survivor lacks, to the survivor.

    A badge both members earned stays on the duplicate, because each member
    earns each badge at most once.
    """
    asks = AdvocacyAsk.objects.filter(member=duplicate).update(member=survivor)
    badges = (
        MemberBadge.objects.filter(member=duplicate)
        .exclude(badge__in=MemberBadge.objects.filter(member=survivor).values("badge"))
        .update(member=survivor)
    )
    return {"asks_moved": asks, "badges_moved": badges}


# A play step awards at most this many points, up or down, so that a typing
# slip in admin cannot swamp the leaderboard or overflow a member's total.
MAX_PLAY_POINTS = 100_000
MAX_ASK_DUE_IN_DAYS = 3650


def _raise_config_errors(errors: list[tuple[str, str]]) -> None:
    if errors:
        raise DomainError(errors[0][1], field="config")


def check_points_config(config: dict) -> list[tuple[str, str]]:
    """Return what is wrong with a points step's config, as (key, message) pairs."""
    points = config.get("points")
    is_whole = isinstance(points, int) and not isinstance(points, bool)
    if not is_whole or points == 0 or abs(points) > MAX_PLAY_POINTS:
        return [
            (
                "points",
                f"Invalid points {points!r} in the step config; set "
                f'{{"points": <whole number from -{MAX_PLAY_POINTS:,} to '
                f"{MAX_PLAY_POINTS:,}, not 0>}}.",
            )
        ]
    return []


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
    _raise_config_errors(check_points_config(context.step.config))
    points = context.step.config["points"]

    reason = f"play:{context.play.play_id}"
    note = f"Play step run {context.step_run.pk}."
    entry = PointsEntry.objects.filter(member=member, reason=reason, note=note).first()
    if entry is not None:
        return ActionResult(outcome=f"{entry.points:+d} points, awarded before")

    entry = award_points(member=member, points=points, reason=reason, note=note)
    return ActionResult(
        outcome=f"{points:+d} points", details={"points_entry_id": entry.pk}
    )


ADVOCACY_CONTACT_PURPOSE = "advocacy_contact"
ASK_RESPONSE_KINDS = {True: "advocacy.ask_accepted", False: "advocacy.ask_declined"}


def _play_attribution(play: Play | None) -> dict | None:
    """Return the play's IDs as event attribution, or None to use the request's."""
    if play is None:
        return None
    return {"play_id": play.play_id, "campaign_id": play.campaign_id}


@transaction.atomic
def award_badge(
    *,
    member: Member,
    badge: Badge,
    reason: str,
    step_run: StepRun | None = None,
) -> tuple[MemberBadge, bool]:
    """Award the badge to the member once, and return the award and whether it is new.

    A repeated call, from a play or from staff, returns the first award and
    records nothing. A new award records advocacy.badge_awarded and notifies
    the member in-app.
    """
    if not badge.is_active:
        raise DomainError(
            f"The badge {badge.slug!r} is inactive. Activate it in admin before "
            "awarding it.",
            field="badge",
        )

    award, created = MemberBadge.objects.get_or_create(
        member=member,
        badge=badge,
        defaults={
            "reason": reason,
            "step_run": step_run,
            "awarded_at": timezone.now(),
        },
    )
    if not created:
        return award, False

    play = step_run.step.play if step_run is not None else None
    record_activity(
        member=member,
        kind="advocacy.badge_awarded",
        subject=award,
        properties={"badge": badge.slug},
        attribution=_play_attribution(play),
    )
    notify_member(
        member=member,
        kind="advocacy.badge",
        title=f"You earned the {badge.name} badge",
        body=badge.description,
        url=reverse("advocacy:home"),
        subject=award,
    )
    return award, True


@transaction.atomic
def create_advocacy_ask(
    *,
    member: Member,
    kind: str,
    message: str,
    play: Play | None = None,
    step_run: StepRun | None = None,
    due_on: date | None = None,
) -> tuple[AdvocacyAsk, bool]:
    """Send the member an advocacy ask, and return it and whether it is new.

    An ask from a play step is unique on its step run, so a repeated call
    returns the first ask. A new ask records advocacy.ask_sent and notifies
    the member in-app. The caller checks the advocacy_contact consent.
    """
    if kind not in AdvocacyAsk.Kind.values:
        raise DomainError(
            f"Invalid ask kind {kind!r}; use one of "
            f"{', '.join(AdvocacyAsk.Kind.values)}.",
            field="kind",
        )
    if not message.strip():
        raise DomainError("An advocacy ask needs a message.", field="message")

    values = {
        "member": member,
        "kind": kind,
        "message": message.strip(),
        "play": play,
        "due_on": due_on,
    }
    if step_run is None:
        ask, created = AdvocacyAsk.objects.create(**values), True
    else:
        ask, created = AdvocacyAsk.objects.get_or_create(
            step_run=step_run, defaults=values
        )
    if not created:
        return ask, False

    record_activity(
        member=member,
        kind="advocacy.ask_sent",
        subject=ask,
        properties={"ask_kind": kind},
        attribution=_play_attribution(play),
    )
    notify_member(
        member=member,
        kind="advocacy.ask",
        title=f"New request: {ask.get_kind_display().lower()}",
        body=ask.message,
        url=reverse("advocacy:asks"),
        subject=ask,
    )
    return ask, True


def _lock_ask(ask: AdvocacyAsk) -> AdvocacyAsk:
    return AdvocacyAsk.objects.select_for_update().get(pk=ask.pk)


@transaction.atomic
def respond_to_ask(*, ask: AdvocacyAsk, member: Member, accept: bool) -> AdvocacyAsk:
    """Accept or decline an open ask, as the member who was asked.

    Raise AdvocacyAsk.DoesNotExist for another member's ask, so that views
    return 404 whether it exists or not, and DomainError for an ask that is
    no longer open.
    """
    ask = _lock_ask(ask)
    if ask.member_id != member.pk:
        raise AdvocacyAsk.DoesNotExist("Advocacy ask not found.")
    if ask.status != AdvocacyAsk.Status.OPEN:
        raise DomainError(
            f"This ask is {ask.get_status_display().lower()}, so it can no "
            "longer be accepted or declined.",
            code="not_open",
        )
    if ask.due_on is not None and ask.due_on < timezone.localdate():
        # The hourly expiry task may not have marked it yet.
        raise DomainError(
            f"This ask expired after {ask.due_on.isoformat()}, so it can no "
            "longer be accepted or declined.",
            code="expired",
        )

    ask.status = AdvocacyAsk.Status.ACCEPTED if accept else AdvocacyAsk.Status.DECLINED
    ask.responded_at = timezone.now()
    ask.save(update_fields=["status", "responded_at"])

    record_activity(
        member=member,
        kind=ASK_RESPONSE_KINDS[accept],
        subject=ask,
        properties={"ask_kind": ask.kind},
        attribution=_play_attribution(ask.play),
    )
    return ask


def expire_overdue_asks(*, today: date | None = None) -> int:
    """Mark open asks whose due date has passed as expired; return how many.

    An ask is open through its `due_on` day (in the site's time zone) and
    expires the day after. Asks without a due date never expire. Running it
    twice changes nothing more: an expired ask is no longer open.
    """
    today = today or timezone.localdate()
    return AdvocacyAsk.objects.filter(
        status=AdvocacyAsk.Status.OPEN, due_on__lt=today
    ).update(status=AdvocacyAsk.Status.EXPIRED)


@transaction.atomic
def complete_ask(*, ask: AdvocacyAsk, staff_user) -> AdvocacyAsk:
    """Mark an open or accepted ask completed, as staff.

    Completing a completed ask returns it unchanged. Declined and expired
    asks raise DomainError. Records advocacy.ask_completed, which reporting
    counts as an advocacy action.
    """
    if not staff_user.is_staff:
        raise DomainError("Only staff can mark an advocacy ask completed.")
    ask = _lock_ask(ask)
    if ask.status == AdvocacyAsk.Status.COMPLETED:
        return ask
    if ask.status not in (AdvocacyAsk.Status.OPEN, AdvocacyAsk.Status.ACCEPTED):
        raise DomainError(
            f"Ask {ask.pk} is {ask.get_status_display().lower()}, but only open or "
            "accepted asks can be completed.",
            code="not_completable",
        )

    ask.status = AdvocacyAsk.Status.COMPLETED
    ask.completed_at = timezone.now()
    ask.completed_by = staff_user
    ask.save(update_fields=["status", "completed_at", "completed_by"])

    record_activity(
        member=ask.member,
        kind="advocacy.ask_completed",
        subject=ask,
        properties={"ask_kind": ask.kind},
        attribution=_play_attribution(ask.play),
    )
    return ask


def check_badge_config(config: dict) -> list[tuple[str, str]]:
    """Return what is wrong with a badge step's config, as (key, message) pairs."""
    slug = config.get("badge")
    badge = Badge.objects.filter(slug=slug).first() if isinstance(slug, str) else None
    if badge is None:
        return [
            (
                "badge",
                f"Unknown badge {slug!r} in the step config; set "
                '{"badge": "<slug>"} to the slug of a badge in admin.',
            )
        ]
    if not badge.is_active:
        # award_badge rejects an inactive badge, so every run would fail.
        return [
            (
                "badge",
                f"The badge {slug!r} is inactive, and an inactive badge cannot be "
                "awarded: activate it in admin, or set the slug of an active badge.",
            )
        ]
    return []


def award_play_badge(context: ActionContext) -> ActionResult:
    """Award the badge a play step names in its config: {"badge": "<slug>"}.

    The award is unique per member and badge, so a member who already has the
    badge gets nothing new and the step still succeeds.
    """
    member = context.member
    if member is None:
        raise ActionSkipped("a badge needs a member; this enrolment is for an account")
    _raise_config_errors(check_badge_config(context.step.config))
    badge = Badge.objects.get(slug=context.step.config["badge"])

    award, created = award_badge(
        member=member,
        badge=badge,
        reason=f"play:{context.play.play_id}",
        step_run=context.step_run,
    )

    if not created:
        return ActionResult(outcome=f"badge {badge.slug} earned before")
    return ActionResult(
        outcome=f"badge {badge.slug} awarded", details={"member_badge_id": award.pk}
    )


def check_ask_config(config: dict) -> list[tuple[str, str]]:
    """Return what is wrong with an advocacy ask step's config, as (key, message).

    The message is a step template, so it must parse and may use only
    member_name and account_name.
    """
    errors = _check_ask_settings(config)
    if not any(key == "message" for key, _ in errors):
        errors += check_step_template(config, "message", required=True)
    return errors


def _check_ask_settings(config: dict) -> list[tuple[str, str]]:
    """Return what is wrong with the kind, message and due_in_days of an ask step."""
    errors = []
    kind = config.get("kind")
    if kind not in AdvocacyAsk.Kind.values:
        errors.append(
            (
                "kind",
                f"Invalid ask kind {kind!r} in the step config; set "
                f'"kind" to one of {", ".join(AdvocacyAsk.Kind.values)}.',
            )
        )
    message = config.get("message")
    if not isinstance(message, str) or not message.strip():
        errors.append(
            (
                "message",
                'Missing "message" in the step config; set it to the text the '
                "member reads with the ask.",
            )
        )
    due_in_days = config.get("due_in_days")
    is_whole = isinstance(due_in_days, int) and not isinstance(due_in_days, bool)
    if due_in_days is not None and (
        not is_whole or not 1 <= due_in_days <= MAX_ASK_DUE_IN_DAYS
    ):
        errors.append(
            (
                "due_in_days",
                f'Invalid "due_in_days" {due_in_days!r} in the step config; set a '
                f"number of days from 1 to {MAX_ASK_DUE_IN_DAYS} or leave it out.",
            )
        )
    return errors


def _parse_ask_config(config: dict) -> tuple[str, int | None]:
    # As with the delivery actions, a run does not check the message's
    # variables again. Unknown names render empty, and render_step_text raises
    # DomainError for a template that does not parse.
    _raise_config_errors(_check_ask_settings(config))
    return config["kind"], config.get("due_in_days")


def send_play_advocacy_ask(context: ActionContext) -> ActionResult:
    """Send the advocacy ask a play step sets in its config, once per step run.

    The config is {"kind": <ask kind>, "message": <step template>} with an
    optional "due_in_days". The member needs a valid advocacy_contact
    consent. The runner checks it when the step's consent purpose names it,
    and this handler checks it otherwise, so a step set to another purpose
    cannot bypass it.
    """
    member = context.member
    if member is None:
        raise ActionSkipped("an ask needs a member; this enrolment is for an account")
    kind, due_in_days = _parse_ask_config(context.step.config)
    now = context.step_run.started_at
    if context.step.consent_purpose != ADVOCACY_CONTACT_PURPOSE and not has_consent(
        member=member, purpose_key=ADVOCACY_CONTACT_PURPOSE, at=now
    ):
        raise ActionSkipped(f"no {ADVOCACY_CONTACT_PURPOSE} consent")

    message = render_step_text(
        context.step, "message", build_template_context(member=member)
    )
    due_on = None
    if due_in_days is not None:
        due_on = timezone.localdate(now) + timedelta(days=due_in_days)
    ask, created = create_advocacy_ask(
        member=member,
        kind=kind,
        message=message,
        play=context.play,
        step_run=context.step_run,
        due_on=due_on,
    )

    if not created:
        return ActionResult(outcome=f"{kind} ask sent before")
    return ActionResult(outcome=f"{kind} ask sent", details={"advocacy_ask_id": ask.pk})
