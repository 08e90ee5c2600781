"""In-app notifications: the play step that creates them and the member's reads."""

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from apps.lifecycle.actions import ActionContext, ActionResult, ActionSkipped
from apps.lifecycle.delivery.content import (
    add_play_params,
    build_template_context,
    is_site_link,
    render_step_text,
)
from apps.lifecycle.models import Notification
from apps.membership.models import Member
from rm6.errors import DomainError

TITLE_MAX_LENGTH = Notification._meta.get_field("title").max_length
URL_MAX_LENGTH = Notification._meta.get_field("url").max_length


@transaction.atomic
def create_play_notification(ctx: ActionContext) -> ActionResult:
    """Create the in-app notification of a play step for the enrolled member.

    The config's `title` and `body` are step templates and `url` is a link
    that gets the play's ID. A second call for the same step run returns the
    notification of the first, because the step run is unique on it.
    """
    member = ctx.member
    if member is None:
        raise ActionSkipped("in-app notifications need a member, not an account")
    if member.is_deactivated or member.anonymised_at is not None:
        raise ActionSkipped("member is deactivated")
    if not member.in_app_notifications:
        raise ActionSkipped("member turned in-app notifications off")

    step = ctx.step
    context = build_template_context(member=member)
    title = render_step_text(step, "title", context)[:TITLE_MAX_LENGTH]
    body = render_step_text(step, "body", context, required=False)
    url = step.config.get("url", "")
    if is_site_link(url):
        url = add_play_params(url, ctx.play)
    if len(url) > URL_MAX_LENGTH:
        raise DomainError(
            f"The link of the in_app step at position {step.position} of play "
            f"{ctx.play.play_id!r} is {len(url)} characters long with the play "
            f"parameters, over the limit of {URL_MAX_LENGTH}. Shorten the url "
            "in the step's config.",
            field="url",
            code="invalid_step_config",
        )

    notification, created = Notification.objects.get_or_create(
        step_run=ctx.step_run,
        defaults={
            "member": member,
            "title": title,
            "body": body,
            "url": url,
            "play": ctx.play,
        },
    )

    outcome = "notification created" if created else "notification already created"
    return ActionResult(outcome=outcome, details={"notification_id": notification.pk})


def list_member_notifications(member: Member) -> QuerySet[Notification]:
    """Return the member's notifications, newest first, with their subject types.

    The list shows only what `filter_visible_notifications` keeps of a page.
    """
    return (
        Notification.objects.filter(member_id=member.pk)
        .select_related("subject_type")
        .order_by("-created_at", "-id")
    )


def count_unread_notifications(*, user_id: int) -> int:
    """Return how many of the user's member's notifications are unread.

    It takes the user id so that the count costs one query, with no query
    for the member first.
    """
    return Notification.objects.filter(
        member__user_id=user_id, read_at__isnull=True
    ).count()


def access_notification(*, member: Member, notification_id: int) -> Notification:
    """Return the member's own notification.

    Raise Notification.DoesNotExist for another member's notification too,
    so callers return 404 whether it exists or not.
    """
    return Notification.objects.get(pk=notification_id, member_id=member.pk)


def mark_notification_read(*, notification: Notification) -> Notification:
    """Mark the notification read, keeping the first read time on repeats."""
    if notification.read_at is not None:
        return notification

    now = timezone.now()
    Notification.objects.filter(pk=notification.pk, read_at__isnull=True).update(
        read_at=now
    )
    notification.read_at = now
    return notification


def mark_all_notifications_read(*, member: Member) -> int:
    """Mark every unread notification of the member read; return how many."""
    return Notification.objects.filter(
        member_id=member.pk, read_at__isnull=True
    ).update(read_at=timezone.now())


@transaction.atomic
def notify_member(
    *,
    member: Member,
    kind: str,
    title: str,
    url: str = "",
    body: str = "",
    subject=None,
) -> Notification | None:
    """Create an in-app notification about `subject` for other apps' events.

    Returns None, creating nothing, for members who turned in-app
    notifications off or who are deactivated. `kind` names the cause, for
    example community.mention, and `subject` the content it is about, so
    that lists can hide notifications whose content the member can no
    longer see.
    """
    if not member.in_app_notifications or member.deactivated_at is not None:
        return None
    if not title.strip():
        raise DomainError("A notification needs a title.", field="title")

    values = {
        "member": member,
        "kind": kind,
        "title": title.strip()[:TITLE_MAX_LENGTH],
        "body": body,
        "url": url[:URL_MAX_LENGTH],
    }
    if subject is not None:
        from django.contrib.contenttypes.models import ContentType

        values["subject_type"] = ContentType.objects.get_for_model(subject)
        values["subject_id"] = str(subject.pk)
    return Notification.objects.create(**values)
