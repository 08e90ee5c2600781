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
