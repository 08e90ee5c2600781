"""Reads for subscriptions: who watches what, digests, and what is still visible."""

from collections.abc import Iterable
from datetime import datetime

from django.db.models import Q, QuerySet

from apps.community.models import CommunityEvent, Reply, Subscription, Topic
from apps.community.selectors import list_visible_spaces
from apps.membership.models import Member

DIGEST_ITEM_LIMIT = 50


def is_watching(
    *, member: Member | None, space_id=None, topic_id=None, tag_id=None
) -> bool:
    if member is None:
        return False
    return Subscription.objects.filter(
        member=member, space_id=space_id, topic_id=topic_id, tag_id=tag_id
    ).exists()


def list_reply_watcher_ids(*, reply: Reply) -> list[int]:
    """Return the ids of members watching the reply's topic, space or tags.

    Each member appears once however many of these they watch, and the
    reply's author never appears.
    """
    topic = reply.topic
    watched = (
        Q(topic_id=topic.pk)
        | Q(space_id=topic.space_id)
        | Q(tag__in=topic.tags.values("pk"))
    )
    return list(
        Subscription.objects.filter(watched)
        .exclude(member_id=reply.author_id)
        .values_list("member_id", flat=True)
        .distinct()
        .order_by("member_id")
    )


def _is_shown(prefix: str = "") -> Q:
    return Q(**{f"{prefix}is_hidden": False, f"{prefix}deleted_at__isnull": True})


def list_digest_items(
    *, member: Member, since: datetime, until: datetime
) -> dict[str, list]:
    """Return the new topics and replies in what the member watches, visible now.

    Visibility is checked against the member's spaces at the time of the
    call, so content in a space they have since lost access to is left out.
    """
    subscriptions = Subscription.objects.filter(member=member)
    topic_ids = subscriptions.filter(topic__isnull=False).values("topic_id")
    space_ids = subscriptions.filter(space__isnull=False).values("space_id")
    tag_ids = subscriptions.filter(tag__isnull=False).values("tag_id")
    spaces = list_visible_spaces(member=member)

    topics = (
        Topic.objects.filter(
            Q(space_id__in=space_ids) | Q(tags__in=tag_ids),
            _is_shown(),
            created_at__gte=since,
            created_at__lt=until,
            space__in=spaces,
        )
        .exclude(author=member)
        .select_related("space")
        .distinct()
        .order_by("created_at", "id")
    )
    replies = (
        Reply.objects.filter(
            Q(topic_id__in=topic_ids)
            | Q(topic__space_id__in=space_ids)
            | Q(topic__tags__in=tag_ids),
            _is_shown(),
            _is_shown("topic__"),
            created_at__gte=since,
            created_at__lt=until,
            topic__space__in=spaces,
        )
        .exclude(author=member)
        .select_related("topic", "author__user")
        .distinct()
        .order_by("created_at", "id")
    )
    return {
        "topics": list(topics[:DIGEST_ITEM_LIMIT]),
        "replies": list(replies[:DIGEST_ITEM_LIMIT]),
    }


def list_digest_member_ids(*, after_id: int = 0, limit: int) -> list[int]:
    """Return the next ids of active members who asked for a daily digest."""
    return list(
        Member.objects.filter(
            pk__gt=after_id,
            email_notifications=Member.EmailNotifications.DAILY,
            deactivated_at__isnull=True,
            subscriptions__isnull=False,
        )
        .values_list("pk", flat=True)
        .distinct()
        .order_by("pk")[:limit]
    )


def _to_ints(ids: Iterable[str]) -> list[int]:
    return [int(value) for value in ids if str(value).isdigit()]


def _as_strings(values: QuerySet) -> set[str]:
    return {str(value) for value in values}


def filter_visible_topic_ids(member: Member, subject_ids: Iterable[str]) -> set[str]:
    """Return the topic ids, of those given, that the member can still read."""
    topics = Topic.objects.filter(
        _is_shown(),
        pk__in=_to_ints(subject_ids),
        space__in=list_visible_spaces(member=member),
    )
    return _as_strings(topics.values_list("pk", flat=True))


def filter_visible_reply_ids(member: Member, subject_ids: Iterable[str]) -> set[str]:
    """Return the reply ids, of those given, that the member can still read."""
    replies = Reply.objects.filter(
        _is_shown(),
        _is_shown("topic__"),
        pk__in=_to_ints(subject_ids),
        topic__space__in=list_visible_spaces(member=member),
    )
    return _as_strings(replies.values_list("pk", flat=True))


def filter_visible_event_ids(member: Member, subject_ids: Iterable[str]) -> set[str]:
    """Return the event ids, of those given, that the member can still read."""
    events = CommunityEvent.objects.filter(pk__in=_to_ints(subject_ids)).filter(
        Q(space__isnull=True) | Q(space__in=list_visible_spaces(member=member))
    )
    return _as_strings(events.values_list("pk", flat=True))
