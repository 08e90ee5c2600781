"""Watching spaces, topics and tags, and telling watchers about new posts.

A new reply reaches each watcher of its topic, space or tags once, in the
notification centre and, by the member's `email_notifications` preference,
by email at once or in the next daily digest. Visibility is checked when
sending, never only when watching, so a member who lost access to a space
gets nothing more about it.
"""

import logging
from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.cache import cache
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from apps.community.models import (
    DigestSent,
    Reply,
    Space,
    Subscription,
    Tag,
    Topic,
)
from apps.community.selectors import can_view_space
from apps.community.selectors.subscriptions import (
    list_digest_items,
    list_reply_watcher_ids,
)
from apps.lifecycle.delivery.notifications import notify_member
from apps.lifecycle.models import Notification
from apps.membership.models import Member
from rm6.errors import DomainError

logger = logging.getLogger(__name__)

WATCHER_CHUNK_SIZE = 500
REPLY_EMAIL_MARKER_TTL = timedelta(days=2)


def _site_url(path: str) -> str:
    return settings.SITE_URL.rstrip("/") + path


def send_member_email_on_commit(*, member: Member, subject: str, body: str) -> None:
    """Send a plain-text email to the member after the current transaction commits.

    An SMTP error is logged and not retried, because a retry after a timeout
    can deliver the message twice.
    """
    footer = (
        "\n\n--\nYou get this email because of your notification settings: "
        f"{_site_url(reverse('membership:profile_edit'))}"
    )
    recipient = member.user.email
    member_id = member.pk

    def send() -> None:
        try:
            send_mail(subject, body + footer, None, [recipient])
        except OSError:
            logger.exception("community email failed: member %s", member_id)

    transaction.on_commit(send)


def _check_target(*, space, topic, tag) -> None:
    if sum(target is not None for target in (space, topic, tag)) != 1:
        raise DomainError("Watch exactly one space, topic or tag.", code="invalid")


@transaction.atomic
def watch(
    *,
    member: Member,
    space: Space | None = None,
    topic: Topic | None = None,
    tag: Tag | None = None,
) -> Subscription:
    """Subscribe the member to a space, topic or tag; watching twice is a no-op."""
    _check_target(space=space, topic=topic, tag=tag)
    visible_space = space or (topic.space if topic is not None else None)
    if visible_space is not None and not can_view_space(
        member=member, space=visible_space
    ):
        raise DomainError("You cannot watch this space.", code="forbidden")

    try:
        with transaction.atomic():
            subscription, _ = Subscription.objects.get_or_create(
                member=member, space=space, topic=topic, tag=tag
            )
    except IntegrityError:
        # A second request created the same row between our read and write.
        subscription = Subscription.objects.get(
            member=member, space=space, topic=topic, tag=tag
        )
    return subscription


@transaction.atomic
def unwatch(
    *,
    member: Member,
    space: Space | None = None,
    topic: Topic | None = None,
    tag: Tag | None = None,
) -> bool:
    """Remove the member's subscription; return whether there was one."""
    _check_target(space=space, topic=topic, tag=tag)
    deleted, _ = Subscription.objects.filter(
        member=member, space=space, topic=topic, tag=tag
    ).delete()
    return deleted > 0


def _already_notified_ids(*, reply: Reply, member_ids: list[int]) -> set[int]:
    return set(
        Notification.objects.filter(
            member_id__in=member_ids,
            kind="community.reply",
            subject_type=ContentType.objects.get_for_model(Reply),
            subject_id=str(reply.pk),
        ).values_list("member_id", flat=True)
    )


def _notify_watcher(*, member: Member, reply: Reply, title: str, url: str) -> bool:
    """Notify one watcher in-app and, if they chose it, by instant email."""
    notified = False
    if member.in_app_notifications:
        notified = (
            notify_member(
                member=member,
                kind="community.reply",
                title=title,
                url=url,
                subject=reply,
            )
            is not None
        )
    if member.email_notifications == Member.EmailNotifications.INSTANT:
        marker = f"community:reply-email:{reply.pk}:{member.pk}"
        if cache.add(marker, 1, timeout=REPLY_EMAIL_MARKER_TTL.total_seconds()):
            author = reply.author.name if reply.author else "A former member"
            send_member_email_on_commit(
                member=member,
                subject=title,
                body=f"{author} replied to “{reply.topic.title}”:\n\n"
                f"{reply.body}\n\n{_site_url(url)}",
            )
            notified = True
    return notified


def notify_reply_watchers(*, reply_id: int) -> int:
    """Notify the watchers of a new reply who can still see it; return how many.

    Safe to run twice: members who already have the in-app notification are
    skipped, and a cache marker stops a second instant email.
    """
    try:
        reply = Reply.objects.select_related(
            "topic__space", "author__user", "topic"
        ).get(pk=reply_id)
    except Reply.DoesNotExist:
        return 0
    topic = reply.topic
    if reply.is_hidden or reply.deleted_at or topic.is_hidden or topic.deleted_at:
        return 0

    watcher_ids = list_reply_watcher_ids(reply=reply)
    title = f"New reply in {topic.title}"
    url = reply.get_absolute_url()
    notified = 0
    for start in range(0, len(watcher_ids), WATCHER_CHUNK_SIZE):
        chunk = watcher_ids[start : start + WATCHER_CHUNK_SIZE]
        skipped = _already_notified_ids(reply=reply, member_ids=chunk)
        members = Member.objects.filter(
            pk__in=chunk, deactivated_at__isnull=True
        ).select_related("user")
        for member in members:
            if member.pk in skipped:
                continue
            if not can_view_space(member=member, space=topic.space):
                continue
            with transaction.atomic():
                if _notify_watcher(member=member, reply=reply, title=title, url=url):
                    notified += 1

    logger.info("reply watchers notified: reply %s, members %d", reply_id, notified)
    return notified


def send_member_digest(*, member: Member, now: datetime | None = None) -> bool:
    """Email the member the day's new topics and replies in what they watch.

    Return whether an email was sent. One digest goes per member per UTC
    day: a DigestSent row, unique on (member, day), is inserted before the
    email goes, so a second beat run, a second worker or a retry after a
    cache flush fails to insert it and sends nothing. When sending fails the
    row is deleted again, so that a retry can send.
    NOTE: a worker that dies between the insert and the send leaves the row,
    so that day's digest is lost rather than sent twice.
    """
    now = now or timezone.now()
    if (
        member.email_notifications != Member.EmailNotifications.DAILY
        or member.deactivated_at is not None
    ):
        return False
    day = now.astimezone(UTC).date()
    if DigestSent.objects.filter(member=member, day=day).exists():
        return False

    items = list_digest_items(member=member, since=now - timedelta(days=1), until=now)
    if not items["topics"] and not items["replies"]:
        return False
    record = _claim_digest(member=member, day=day, items=items)
    if record is None:
        return False

    context = {"member": member, "site_url": settings.SITE_URL.rstrip("/"), **items}
    body = render_to_string("community/email/daily_digest.txt", context)
    try:
        send_mail("Your daily community digest", body, None, [member.user.email])
    except OSError:
        DigestSent.objects.filter(pk=record.pk).delete()
        logger.exception("daily digest email failed: member %s", member.pk)
        return False
    return True


def _claim_digest(*, member: Member, day: date, items: dict) -> DigestSent | None:
    """Insert the member's digest row for the day; return None if one exists.

    The unique constraint decides between two concurrent runs: the second
    insert waits for the first transaction and then fails.
    """
    try:
        with transaction.atomic():
            return DigestSent.objects.create(
                member=member,
                day=day,
                topic_count=len(items["topics"]),
                reply_count=len(items["replies"]),
            )
    except IntegrityError:
        logger.info("daily digest already sent: member %s, day %s", member.pk, day)
        return None


def schedule_reply_notifications(*, reply: Reply) -> None:
    """Queue the fan-out to the reply's watchers once the transaction commits."""
    from apps.community.tasks import notify_reply_watchers_task

    reply_id = reply.pk
    transaction.on_commit(lambda: notify_reply_watchers_task.delay(reply_id=reply_id))
