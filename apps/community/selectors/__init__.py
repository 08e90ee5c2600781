from django.db.models import Q, QuerySet

from apps.community.models import Reply, Space, Topic
from apps.membership.models import Member


def list_visible_spaces(
    *, member: Member | None, is_staff: bool = False
) -> QuerySet[Space]:
    """Return the spaces a member (or an anonymous visitor, as None) may read."""
    spaces = Space.objects.all()
    if is_staff:
        return spaces
    if member is None:
        return spaces.filter(visibility=Space.Visibility.PUBLIC)
    return spaces.filter(
        Q(visibility__in=[Space.Visibility.PUBLIC, Space.Visibility.MEMBERS])
        | Q(visibility=Space.Visibility.ACCOUNT, account_id=member.account_id)
    )


def can_view_space(*, member: Member | None, space: Space) -> bool:
    if space.visibility == Space.Visibility.PUBLIC:
        return True
    if member is None:
        return False
    if space.visibility == Space.Visibility.MEMBERS:
        return True
    return space.account_id is not None and space.account_id == member.account_id


def can_post_in_space(*, member: Member, space: Space) -> bool:
    return can_view_space(member=member, space=space)


def list_space_topics(*, space: Space) -> QuerySet[Topic]:
    return Topic.objects.filter(space=space).select_related("author__user")


def list_topic_replies(*, topic: Topic) -> QuerySet[Reply]:
    return Reply.objects.filter(topic=topic).select_related("author__user")


def list_recent_posts_by_member(*, member: Member, limit: int = 5) -> dict:
    """Return the member's latest topics and replies, each list newest first."""
    topics = (
        Topic.objects.filter(author=member)
        .select_related("space")
        .order_by("-created_at")[:limit]
    )
    replies = (
        Reply.objects.filter(author=member)
        .select_related("topic")
        .order_by("-created_at")[:limit]
    )
    return {"topics": list(topics), "replies": list(replies)}


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

    Raise `Topic.DoesNotExist` when it does not exist or its space is hidden
    from the viewer.
    """
    topic = Topic.objects.select_related("space", "author__user").get(pk=pk)
    if not is_staff and not can_view_space(member=member, space=topic.space):
        raise Topic.DoesNotExist(f"No topic {pk} visible to this viewer.")
    return topic


def list_member_posts_visible_to(
    *, author: Member, viewer: Member | None, is_staff: bool = False, limit: int = 20
) -> dict:
    """Return the author's latest topics and replies in spaces the viewer may read.

    Each list is newest first and contains at most `limit` items, and the
    `*_count` entries count every visible one, for a "showing N of M" line.
    """
    spaces = list_visible_spaces(member=viewer, is_staff=is_staff)
    topics = Topic.objects.filter(author=author, space__in=spaces)
    replies = Reply.objects.filter(author=author, topic__space__in=spaces)
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
