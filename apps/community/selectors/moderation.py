"""Reads for moderators: suspensions, the flag queue and the audit log."""

from dataclasses import dataclass, field

from django.core.paginator import Page, Paginator
from django.db.models import Count, F, Max, Q, QuerySet
from django.utils import timezone

from apps.community.models import Flag, ModerationAction, Reply, Suspension, Topic
from apps.membership.models import Member


def get_active_suspension(member: Member) -> Suspension | None:
    """Return the member's suspension in force now, the longest one if several."""
    now = timezone.now()
    return (
        Suspension.objects.filter(
            Q(ends_at__isnull=True) | Q(ends_at__gt=now),
            member=member,
            lifted_at__isnull=True,
            starts_at__lte=now,
        )
        .order_by(F("ends_at").desc(nulls_first=True), "-starts_at")
        .first()
    )


@dataclass
class FlaggedPost:
    """A post with open flags, for the moderator queue."""

    topic: Topic
    reply: Reply | None
    flag_count: int
    flags: list[Flag] = field(default_factory=list)

    @property
    def post(self) -> Topic | Reply:
        return self.reply if self.reply is not None else self.topic

    @property
    def kind(self) -> str:
        return "reply" if self.reply is not None else "topic"

    @property
    def author(self) -> Member | None:
        return self.post.author


def list_flagged_posts(*, page_number, per_page: int) -> tuple[Page, list[FlaggedPost]]:
    """Return one page of posts with open flags, most recently flagged first.

    Five queries whatever the page size: count, page, topics, replies, flags.
    """
    groups = (
        Flag.objects.filter(status=Flag.Status.OPEN)
        .values("topic_id", "reply_id")
        .annotate(flag_count=Count("id"), last_flagged_at=Max("created_at"))
        .order_by("-last_flagged_at", "topic_id", "reply_id")
    )
    page = Paginator(groups, per_page).get_page(page_number)
    rows = list(page.object_list)

    reply_ids = [row["reply_id"] for row in rows if row["reply_id"]]
    replies = Reply.objects.select_related("author__user").in_bulk(reply_ids)
    topic_ids = {row["topic_id"] for row in rows if row["topic_id"]}
    topic_ids |= {reply.topic_id for reply in replies.values()}
    topics = Topic.objects.select_related("space", "author__user").in_bulk(topic_ids)
    flags = (
        Flag.objects.filter(status=Flag.Status.OPEN)
        .filter(Q(topic_id__in=topic_ids) | Q(reply_id__in=reply_ids))
        .select_related("reporter__user")
        .order_by("created_at")
    )

    posts = []
    by_key = {}
    for row in rows:
        reply = replies.get(row["reply_id"]) if row["reply_id"] else None
        topic = topics[reply.topic_id if reply else row["topic_id"]]
        if reply is not None:
            reply.topic = topic
        item = FlaggedPost(topic=topic, reply=reply, flag_count=row["flag_count"])
        posts.append(item)
        by_key[(row["topic_id"], row["reply_id"])] = item
    for flag in flags:
        item = by_key.get((flag.topic_id, flag.reply_id))
        if item is not None:
            item.flags.append(flag)
    return page, posts


def list_moderation_actions(*, action: str = "") -> QuerySet[ModerationAction]:
    """Return the audit log, newest first, of one action or of all."""
    actions = ModerationAction.objects.select_related(
        "actor", "topic", "reply", "member__user"
    )
    if action:
        actions = actions.filter(action=action)
    return actions.order_by("-created_at", "-id")
