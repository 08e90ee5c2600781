from django.db import transaction
from django.db.models import F
from django.utils import timezone

from apps.community.models import Reply, Space, Topic
from apps.community.selectors import can_post_in_space, can_view_space
from apps.community.services.abuse import check_posting_allowed, update_trust_level
from apps.community.services.counters import change_member_stats
from apps.community.services.moderation import check_not_suspended
from apps.community.services.subscriptions import (
    schedule_reply_notifications,
    watch,
)
from apps.lifecycle.services import record_activity
from apps.membership.models import Member
from rm6.errors import DomainError

MAX_TITLE_LENGTH = 200
MAX_BODY_LENGTH = 20000


def _clean_text(value: str, *, name: str, max_length: int) -> str:
    value = (value or "").strip()
    if not value:
        raise DomainError(f"The {name} is empty; write a few words.", field=name)
    if len(value) > max_length:
        raise DomainError(
            f"The {name} has {len(value)} characters; the maximum is {max_length}.",
            field=name,
        )
    return value


def _record_mentions(*, post: Topic | Reply, author: Member) -> None:
    # Imported here because the posts module imports this package's helpers.
    from apps.community.services.posts import record_mentions

    record_mentions(post=post, author=author)


@transaction.atomic
def post_topic(
    *,
    author: Member,
    space: Space,
    title: str,
    body: str,
    kind: str = Topic.Kind.QUESTION,
    attribution: dict | None = None,
) -> Topic:
    """Post a new topic in a space and record the activity event."""
    check_not_suspended(author)
    if not can_post_in_space(member=author, space=space):
        raise DomainError(f"You cannot post in {space.name}.", code="forbidden")
    if kind not in Topic.Kind.values:
        raise DomainError(
            f"Unknown topic kind {kind!r}; use one of {', '.join(Topic.Kind.values)}.",
            field="kind",
        )
    if kind == Topic.Kind.ANNOUNCEMENT and author.role != Member.Role.ADMIN:
        raise DomainError(
            "Only account admins and staff post announcements.", field="kind"
        )
    title = _clean_text(title, name="title", max_length=MAX_TITLE_LENGTH)
    body = _clean_text(body, name="body", max_length=MAX_BODY_LENGTH)
    check_posting_allowed(member=author, kind="topic", body=body)

    now = timezone.now()
    topic = Topic.objects.create(
        space=space,
        author=author,
        kind=kind,
        title=title,
        body=body,
        created_at=now,
        last_activity_at=now,
    )
    Space.objects.filter(pk=space.pk).update(topic_count=F("topic_count") + 1)
    change_member_stats(member_id=author.pk, topic_count=1)
    _record_mentions(post=topic, author=author)

    event_kind = (
        "community.question_posted"
        if kind == Topic.Kind.QUESTION
        else "community.topic_posted"
    )
    record_activity(
        member=author,
        kind=event_kind,
        subject=topic,
        occurred_at=now,
        properties={"space": space.slug, "topic_kind": kind},
        attribution=attribution,
    )
    watch(member=author, topic=topic)
    update_trust_level(member=author)
    return topic


@transaction.atomic
def post_reply(
    *,
    author: Member,
    topic: Topic,
    body: str,
    quoted_reply_id: int | None = None,
    attribution: dict | None = None,
) -> Reply:
    """Post a reply under a topic, bump its counters and record the event.

    `quoted_reply_id` names a visible reply in the same topic to quote.
    """
    from apps.community.services.posts import get_quotable_reply

    check_not_suspended(author)
    if not can_view_space(member=author, space=topic.space):
        raise DomainError("You cannot reply in this space.", code="forbidden")
    if topic.is_locked:
        raise DomainError("This topic is locked; it takes no new replies.")
    body = _clean_text(body, name="body", max_length=MAX_BODY_LENGTH)
    check_posting_allowed(member=author, kind="reply", body=body)
    quoted_reply = get_quotable_reply(topic=topic, reply_id=quoted_reply_id)

    now = timezone.now()
    reply = Reply.objects.create(
        topic=topic, author=author, body=body, quoted_reply=quoted_reply, created_at=now
    )
    Topic.objects.filter(pk=topic.pk).update(
        reply_count=F("reply_count") + 1, last_activity_at=now
    )
    if topic.author_id != author.pk:
        # The condition is checked in the UPDATE, not on the loaded topic, so
        # only the first of two concurrent replies sets the time.
        Topic.objects.filter(pk=topic.pk, first_reply_at__isnull=True).update(
            first_reply_at=now
        )
    Space.objects.filter(pk=topic.space_id).update(reply_count=F("reply_count") + 1)
    change_member_stats(member_id=author.pk, reply_count=1)
    _record_mentions(post=reply, author=author)

    record_activity(
        member=author,
        kind="community.reply_posted",
        subject=reply,
        occurred_at=now,
        properties={
            "topic_id": topic.pk,
            "space": topic.space.slug,
            "is_own_topic": topic.author_id == author.pk,
        },
        attribution=attribution,
    )
    schedule_reply_notifications(reply=reply)
    update_trust_level(member=author)
    return reply


@transaction.atomic
def move_merged_member_posts(*, survivor: Member, duplicate: Member) -> dict[str, int]:
    """Make the survivor of a member merge the author of the duplicate's posts.

    `apps.membership.services.merge.merge_members` calls it through the
    merge handler registry.
    """
    topics = Topic.objects.filter(author=duplicate).update(author=survivor)
    replies = Reply.objects.filter(author=duplicate).update(author=survivor)
    return {"topics_moved": topics, "replies_moved": replies}
