from django.db.models import QuerySet

from apps.community.models import Reply, Space, Topic
from apps.community.selectors.access import (
    can_moderate_space,
    can_post_in_space,
    can_view_space,
    filter_visible_replies,
    filter_visible_topics,
    is_community_moderator,
    list_visible_spaces,
)
from apps.membership.models import Member

__all__ = [
    "can_moderate_space",
    "can_post_in_space",
    "can_view_space",
    "filter_visible_replies",
    "filter_visible_topics",
    "is_community_moderator",
    "list_visible_spaces",
]


def list_space_topics(*, space: Space, is_moderator: bool = False) -> QuerySet[Topic]:
    """Return the space's topics; hidden and deleted ones only for its moderators.

    The caller has checked that the viewer may read the space, and passes
    `is_moderator` from `can_moderate_space`.
    """
    topics = Topic.objects.filter(space=space)
    if not is_moderator:
        topics = topics.filter(is_hidden=False, deleted_at__isnull=True)
    return topics.select_related("author__user").prefetch_related("tags")


# The reply fields and the author fields that the reply templates read.
REPLY_PAGE_FIELDS = (
    "topic_id",
    "body",
    "quoted_reply_id",
    "vote_score",
    "kudos_count",
    "is_hidden",
    "deleted_at",
    "edited_at",
    "created_at",
    "author__display_name",
    "author__user__email",
)


def list_topic_replies(*, topic: Topic, is_moderator: bool = False) -> QuerySet[Reply]:
    """Return the topic's replies; hidden and deleted ones only for moderators.

    The caller has checked that the viewer may read the topic, and passes
    `is_moderator` from `can_moderate_space` for the topic's space. Authors
    do not see their own hidden replies either, so a hidden reply is shown
    to the same people on every page, list, search result and feed.
    """
    replies = Reply.objects.filter(topic=topic)
    if not is_moderator:
        replies = replies.filter(is_hidden=False, deleted_at__isnull=True)
    # Only the columns the reply templates read: the page builds its SQL and
    # objects for six joined tables, and the search vectors, profiles and
    # password hashes it would otherwise load are neither small nor shown.
    return replies.select_related("author__user", "quoted_reply__author__user").only(
        *REPLY_PAGE_FIELDS,
        *(f"quoted_reply__{name}" for name in REPLY_PAGE_FIELDS),
    )


def list_recent_posts_by_member(*, member: Member, limit: int = 5) -> dict:
    """Return the member's latest topics and replies, each list newest first.

    Only posts the member may still read are listed: a hidden or deleted
    post, or one in a private space they have left, is left out unless they
    moderate its space, as on every other page.
    """
    topics = filter_visible_topics(Topic.objects.filter(author=member), member)
    replies = filter_visible_replies(Reply.objects.filter(author=member), member)
    return {
        "topics": list(topics.select_related("space").order_by("-created_at")[:limit]),
        "replies": list(
            replies.select_related("topic").order_by("-created_at")[:limit]
        ),
    }


def access_space(*, slug: str, member: Member | None, is_staff: bool = False) -> Space:
    """Return the space with this slug if the viewer may read it.

    Raise `Space.DoesNotExist` both when there is no such space and when the
    viewer may not read it, so a private space's existence does not leak.
    """
    space = Space.objects.get(slug=slug)
    if not is_staff and not can_view_space(member=member, space=space):
        raise Space.DoesNotExist(f"No space {slug!r} visible to this viewer.")
    return space


def access_topic(*, pk: int, member: Member | None, is_staff: bool = False) -> Topic:
    """Return the topic, with its space and author, if the viewer may read it.

    Raise `Topic.DoesNotExist` when it does not exist, its space is hidden
    from the viewer, or it is hidden or deleted and the viewer does not
    moderate its space.
    """
    topics = Topic.objects.select_related("space", "author__user")
    try:
        return filter_visible_topics(topics, member, is_staff).get(pk=pk)
    except Topic.DoesNotExist:
        raise Topic.DoesNotExist(f"No topic {pk} visible to this viewer.") from None


def list_member_posts_visible_to(
    *, author: Member, viewer: Member | None, is_staff: bool = False, limit: int = 20
) -> dict:
    """Return the author's latest topics and replies in spaces the viewer may read.

    Each list is newest first and contains at most `limit` items, and the
    `*_count` entries count every visible one, for a "showing N of M" line.
    """
    topics = filter_visible_topics(
        Topic.objects.filter(author=author), viewer, is_staff
    )
    replies = filter_visible_replies(
        Reply.objects.filter(author=author), viewer, is_staff
    )
    return {
        "topics": list(topics.select_related("space").order_by("-created_at")[:limit]),
        "replies": list(
            replies.select_related("topic__space").order_by("-created_at")[:limit]
        ),
        "topic_count": topics.count(),
        "reply_count": replies.count(),
    }


def export_member_data(member: Member) -> dict:
    """Return every topic and reply the member wrote, for their data export."""
    topics = Topic.objects.filter(author=member).select_related("space")
    replies = Reply.objects.filter(author=member).select_related("topic")
    return {
        "topics": [
            {
                "id": topic.pk,
                "space": topic.space.name,
                "kind": topic.kind,
                "title": topic.title,
                "body": topic.body,
                "created_at": topic.created_at,
                "url": topic.get_absolute_url(),
            }
            for topic in topics.order_by("created_at", "id")
        ],
        "replies": [
            {
                "id": reply.pk,
                "topic_id": reply.topic_id,
                "topic_title": reply.topic.title,
                "body": reply.body,
                "created_at": reply.created_at,
                "url": reply.get_absolute_url(),
            }
            for reply in replies.order_by("created_at", "id")
        ],
    }
