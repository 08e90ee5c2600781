"""Votes and kudos on topics and replies, with their counters."""

from django.db import IntegrityError, transaction
from django.db.models import F

from apps.community.models import Kudos, Reply, Topic, Vote
from apps.community.selectors import can_view_space
from apps.community.services.counters import change_member_stats
from apps.lifecycle.services import record_activity
from apps.membership.models import Member
from rm6.errors import DomainError

VOTE_VALUES = (1, -1)


def _post_filter(post: Topic | Reply) -> dict:
    return {"topic": post} if isinstance(post, Topic) else {"reply": post}


def _topic_of(post: Topic | Reply) -> Topic:
    return post if isinstance(post, Topic) else post.topic


def _check_can_react(member: Member, post: Topic | Reply, *, action: str) -> None:
    topic = _topic_of(post)
    if not can_view_space(member=member, space=topic.space):
        raise DomainError(f"You cannot {action} posts in this space.", code="forbidden")
    if post.is_hidden or post.deleted_at is not None or topic.deleted_at is not None:
        raise DomainError(
            f"This post is hidden or deleted; you cannot {action} it.",
            code="forbidden",
        )
    if post.author_id == member.pk:
        raise DomainError(f"You cannot {action} your own post.", code="own_post")


def _event_properties(post: Topic | Reply, **extra) -> dict:
    topic = _topic_of(post)
    return {"topic_id": topic.pk, "space": topic.space.slug, **extra}


def _change_score(post: Topic | Reply, delta: int) -> None:
    if delta:
        type(post).objects.filter(pk=post.pk).update(vote_score=F("vote_score") + delta)


@transaction.atomic
def vote(*, member: Member, post: Topic | Reply, value: int) -> Vote:
    """Vote a topic or reply up (+1) or down (-1), or change an earlier vote.

    Ideas take only up votes. The post's score moves by the difference
    between the new and the earlier vote, so a repeated vote changes
    nothing. A concurrent first vote by the same member is caught by the
    unique constraint and treated as the earlier vote.
    """
    if value not in VOTE_VALUES:
        raise DomainError(f"A vote is +1 or -1, not {value!r}.", field="value")
    if isinstance(post, Topic) and post.kind == Topic.Kind.IDEA and value != 1:
        raise DomainError("Ideas take only up votes.", field="value")
    _check_can_react(member, post, action="vote on")

    lookup = {"member": member, **_post_filter(post)}
    existing = Vote.objects.select_for_update().filter(**lookup).first()
    if existing is None:
        try:
            with transaction.atomic():
                existing = Vote.objects.create(value=value, **lookup)
        except IntegrityError:
            existing = Vote.objects.select_for_update().get(**lookup)
        else:
            _change_score(post, value)
            _record_vote(member, post, value=value, delta=value)
            return existing

    delta = value - existing.value
    if delta == 0:
        return existing
    existing.value = value
    existing.save(update_fields=["value"])
    _change_score(post, delta)
    _record_vote(member, post, value=value, delta=delta)
    return existing


def _record_vote(member: Member, post: Topic | Reply, *, value: int, delta: int):
    record_activity(
        member=member,
        kind="community.voted",
        subject=post,
        properties=_event_properties(post, value=value, score_change=delta),
    )


@transaction.atomic
def unvote(*, member: Member, post: Topic | Reply) -> None:
    """Withdraw the member's vote on the post; without one, do nothing."""
    lookup = {"member": member, **_post_filter(post)}
    existing = Vote.objects.select_for_update().filter(**lookup).first()
    if existing is None:
        return

    existing.delete()
    _change_score(post, -existing.value)
    record_activity(
        member=member,
        kind="community.vote_withdrawn",
        subject=post,
        properties=_event_properties(post, value=existing.value),
    )


@transaction.atomic
def give_kudos(*, member: Member, post: Topic | Reply) -> Kudos:
    """Thank the author of a topic or reply; a second thank-you does nothing."""
    _check_can_react(member, post, action="give kudos for")

    # get_or_create catches the IntegrityError of a concurrent duplicate and
    # returns the other request's row, so only one of them counts.
    kudos, created = Kudos.objects.get_or_create(member=member, **_post_filter(post))
    if not created:
        return kudos

    type(post).objects.filter(pk=post.pk).update(kudos_count=F("kudos_count") + 1)
    change_member_stats(member_id=post.author_id, kudos_received=1)
    record_activity(
        member=member,
        kind="community.kudos_given",
        subject=post,
        properties=_event_properties(post, author_id=post.author_id),
    )
    return kudos


@transaction.atomic
def remove_kudos(*, member: Member, post: Topic | Reply) -> None:
    """Take back the member's kudos for the post; without one, do nothing."""
    deleted, _ = Kudos.objects.filter(member=member, **_post_filter(post)).delete()
    if not deleted:
        return

    type(post).objects.filter(pk=post.pk, kudos_count__gt=0).update(
        kudos_count=F("kudos_count") - 1
    )
    change_member_stats(member_id=post.author_id, kudos_received=-1)
    record_activity(
        member=member,
        kind="community.kudos_removed",
        subject=post,
        properties=_event_properties(post, author_id=post.author_id),
    )
