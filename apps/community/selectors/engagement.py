"""Reads of a viewer's own votes and kudos, for the pressed state of buttons."""

from collections.abc import Iterable

from django.db.models import BooleanField, IntegerField, Q, Value

from apps.community.models import Kudos, MemberStats, Reply, Topic, Vote
from apps.membership.models import Member


def mark_viewer_reactions(
    *, member: Member | None, topic: Topic | None = None, replies: Iterable[Reply] = ()
) -> None:
    """Set `viewer_vote` and `viewer_has_kudos` on the topic and replies given.

    `viewer_vote` is the member's vote (1, -1, or 0 for none) and
    `viewer_has_kudos` whether they gave kudos. One query reads both, for
    any number of posts, and none runs for a visitor or an empty list.
    """
    replies = list(replies)
    posts: list[Topic | Reply] = [*([topic] if topic is not None else []), *replies]
    for post in posts:
        post.viewer_vote = 0
        post.viewer_has_kudos = False
    if member is None or not posts:
        return

    on_posts = Q(reply_id__in=[reply.pk for reply in replies])
    if topic is not None:
        on_posts |= Q(topic_id=topic.pk)
    columns = ("topic_id", "reply_id", "value", "is_kudos")
    votes = (
        Vote.objects.filter(on_posts, member=member)
        .annotate(is_kudos=Value(False, output_field=BooleanField()))
        .values_list(*columns)
    )
    kudos = (
        Kudos.objects.filter(on_posts, member=member)
        .annotate(
            value=Value(0, output_field=IntegerField()),
            is_kudos=Value(True, output_field=BooleanField()),
        )
        .values_list(*columns)
    )

    topics = {topic.pk: topic} if topic is not None else {}
    replies_by_id = {reply.pk: reply for reply in replies}
    for topic_id, reply_id, value, is_kudos in votes.union(kudos, all=True):
        post = replies_by_id.get(reply_id) if reply_id else topics.get(topic_id)
        if post is None:
            continue
        if is_kudos:
            post.viewer_has_kudos = True
        else:
            post.viewer_vote = value


def get_profile_stats(member: Member) -> dict | None:
    """Return the member's community counters for their public profile, or None.

    One query. A member who never posted and received nothing has no section.
    """
    stats = MemberStats.objects.filter(member=member).first()
    if stats is None:
        return None
    counters = [
        ("Topics", stats.topic_count),
        ("Replies", stats.reply_count),
        ("Accepted solutions", stats.solution_count),
        ("Kudos received", stats.kudos_received),
    ]
    if not any(value for _, value in counters) and stats.trust_level == 0:
        return None
    return {
        "template": "community/_profile_stats.html",
        "counters": counters,
        "trust_level": stats.get_trust_level_display(),
    }
