"""Accepted solutions of questions and the staff status of ideas."""

from django.db import transaction
from django.utils import timezone

from apps.community.models import Reply, Topic
from apps.community.services.counters import change_member_stats
from apps.community.services.moderation import (
    can_moderate,
    change_space_counters,
    is_reply_published,
    is_topic_published,
)
from apps.lifecycle.delivery.notifications import notify_member
from apps.lifecycle.services import record_activity
from apps.membership.models import Member
from apps.membership.roles import CAPABILITIES
from apps.membership.selectors import get_member_for_user
from rm6.errors import DomainError

MAX_OFFICIAL_RESPONSE_LENGTH = 20000


def can_accept_solution(
    *, topic: Topic, user, is_moderator: bool | None = None
) -> bool:
    """Return whether the user may accept or unaccept the question's solution.

    The question's author may, and so may moderators and champions, and an
    account admin for questions asked by members of their account. Roles are
    read from the member row, as `is_community_moderator` does, because the
    role services grant the matching permissions from that row; so the check
    runs no query. A caller that already knows whether the user moderates the
    topic's space passes `is_moderator` to save that query too.
    """
    if topic.kind != Topic.Kind.QUESTION:
        return False
    if not user.is_authenticated or not user.is_active:
        return False
    if user.is_staff:
        return True
    member = get_member_for_user(user)
    if member is not None and topic.author_id == member.pk:
        return True
    if member is not None and _has_accept_role(member=member, topic=topic):
        return True
    if is_moderator is None:
        is_moderator = can_moderate(user=user, space=topic.space)
    return is_moderator


def _has_accept_role(*, member: Member, topic: Topic) -> bool:
    if member.deactivated_at is not None or member.anonymised_at is not None:
        return False
    capability = CAPABILITIES["accept_solution"]
    if member.role in capability.global_roles:
        return True
    # Account admins hold the account-scoped permission on their own account
    # only, so they accept answers to questions from that account's members.
    return (
        member.role in capability.account_roles
        and member.account_id is not None
        and topic.author_id is not None
        and topic.author.account_id == member.account_id
    )


def _lock_question(topic: Topic, user) -> Topic:
    topic = (
        Topic.objects.select_for_update(of=("self",))
        .select_related("space", "author__account")
        .get(pk=topic.pk)
    )
    if topic.kind != Topic.Kind.QUESTION:
        raise DomainError("Only questions have accepted solutions.", field="topic")
    if not can_accept_solution(topic=topic, user=user):
        raise DomainError(
            "Only the question's author, a champion or a moderator can accept "
            "a solution.",
            code="forbidden",
        )
    if not is_topic_published(topic):
        raise DomainError(
            "This question is hidden or deleted; restore it first.", field="topic"
        )
    return topic


def _change_solution_counters(*, topic: Topic, author_id: int | None, sign: int):
    change_space_counters(space_id=topic.space_id, solution_count=sign)
    change_member_stats(member_id=author_id, solution_count=sign)


@transaction.atomic
def accept_solution(*, topic: Topic, reply: Reply, actor_user) -> bool:
    """Mark the reply as the question's solution, replacing an earlier one.

    Return False if it already was the solution.
    """
    topic = _lock_question(topic, actor_user)
    reply = Reply.objects.select_related("author").get(pk=reply.pk)
    if reply.topic_id != topic.pk:
        raise DomainError("That reply belongs to another topic.", field="reply")
    if not is_reply_published(reply):
        raise DomainError(
            "A hidden or deleted reply cannot be the solution.", field="reply"
        )
    if topic.accepted_reply_id == reply.pk:
        return False

    previous = None
    if topic.accepted_reply_id is not None:
        previous = Reply.objects.filter(pk=topic.accepted_reply_id).first()
    if previous is not None and is_reply_published(previous):
        _change_solution_counters(topic=topic, author_id=previous.author_id, sign=-1)

    now = timezone.now()
    topic.accepted_reply = reply
    topic.solved_at = now
    topic.save(update_fields=["accepted_reply", "solved_at"])
    _change_solution_counters(topic=topic, author_id=reply.author_id, sign=1)

    if reply.author is not None:
        record_activity(
            member=reply.author,
            kind="community.solution_accepted",
            subject=reply,
            occurred_at=now,
            properties={
                "topic_id": topic.pk,
                "space": topic.space.slug,
                "accepted_by_user_id": actor_user.pk,
                "replaced_reply_id": previous.pk if previous else None,
            },
        )
    return True


@transaction.atomic
def unaccept_solution(*, topic: Topic, actor_user) -> bool:
    """Clear the question's accepted solution; return False if it had none."""
    topic = _lock_question(topic, actor_user)
    if topic.accepted_reply_id is None:
        return False

    previous = Reply.objects.select_related("author").get(pk=topic.accepted_reply_id)
    topic.accepted_reply = None
    topic.solved_at = None
    topic.save(update_fields=["accepted_reply", "solved_at"])
    if is_reply_published(previous):
        _change_solution_counters(topic=topic, author_id=previous.author_id, sign=-1)

    if previous.author is not None:
        record_activity(
            member=previous.author,
            kind="community.solution_unaccepted",
            subject=previous,
            properties={
                "topic_id": topic.pk,
                "space": topic.space.slug,
                "unaccepted_by_user_id": actor_user.pk,
            },
        )
    return True


@transaction.atomic
def set_idea_status(*, topic: Topic, status: str, response: str, staff_user) -> Topic:
    """Set an idea's status and official response, and notify its author.

    An empty response leaves the current official response in place.
    """
    if not (
        staff_user.is_authenticated and staff_user.is_active and staff_user.is_staff
    ):
        raise DomainError("Only staff set the status of ideas.", code="forbidden")
    topic = (
        Topic.objects.select_for_update(of=("self",))
        .select_related("author")
        .get(pk=topic.pk)
    )
    if topic.kind != Topic.Kind.IDEA:
        raise DomainError("Only ideas have a status.", field="status")
    if status not in Topic.IdeaStatus.values:
        raise DomainError(
            f"Unknown idea status {status!r}; use one of "
            f"{', '.join(Topic.IdeaStatus.values)}.",
            field="status",
        )
    response = (response or "").strip()
    if len(response) > MAX_OFFICIAL_RESPONSE_LENGTH:
        raise DomainError(
            f"The response has {len(response)} characters; the maximum is "
            f"{MAX_OFFICIAL_RESPONSE_LENGTH}.",
            field="response",
        )
    changes_response = bool(response) and response != topic.official_response
    if status == topic.idea_status and not changes_response:
        return topic

    old_status = topic.idea_status
    now = timezone.now()
    topic.idea_status = status
    fields = ["idea_status"]
    if changes_response:
        topic.official_response = response
        topic.official_response_by = staff_user
        topic.official_response_at = now
        fields += ["official_response", "official_response_by", "official_response_at"]
    topic.save(update_fields=fields)

    if topic.author is not None:
        record_activity(
            member=topic.author,
            kind="community.idea_status_changed",
            subject=topic,
            occurred_at=now,
            properties={
                "old_status": old_status,
                "new_status": status,
                "changed_by_user_id": staff_user.pk,
                "has_response": changes_response,
            },
        )
        notify_member(
            member=topic.author,
            kind="community.idea_status_changed",
            title=f"Your idea “{topic.title}” is now {topic.get_idea_status_display()}",
            url=topic.get_absolute_url(),
            body=response if changes_response else "",
            subject=topic,
        )
    return topic
