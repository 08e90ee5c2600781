"""Reads for questions and ideas: the unanswered, unsolved and idea lists."""

from django.db.models import Q, QuerySet

from apps.community.models import Reply, Topic
from apps.community.selectors.access import filter_visible_topics
from apps.membership.models import Member

IDEA_STATUS_NEW_VALUES = ("", Topic.IdeaStatus.NEW)


def _published_topics(*, kind: str, member: Member | None, is_staff: bool):
    # Moderators may open hidden topics, but these lists show published ones
    # to everybody.
    topics = Topic.objects.filter(kind=kind, is_hidden=False, deleted_at__isnull=True)
    return filter_visible_topics(topics, member, is_staff).select_related(
        "space", "author__user"
    )


def list_unanswered_questions(
    *, member: Member | None, is_staff: bool = False
) -> QuerySet[Topic]:
    """Return visible questions nobody but their author replied to, oldest first."""
    questions = _published_topics(
        kind=Topic.Kind.QUESTION, member=member, is_staff=is_staff
    )
    return questions.filter(first_reply_at__isnull=True).order_by("created_at", "id")


def has_published_solution_q(prefix: str = "") -> Q:
    """Return the condition for a topic whose accepted reply is published."""
    return Q(
        **{
            f"{prefix}accepted_reply__isnull": False,
            f"{prefix}accepted_reply__is_hidden": False,
            f"{prefix}accepted_reply__deleted_at__isnull": True,
        }
    )


def list_unsolved_questions(
    *, member: Member | None, is_staff: bool = False
) -> QuerySet[Topic]:
    """Return visible questions without a published accepted reply, newest first."""
    questions = _published_topics(
        kind=Topic.Kind.QUESTION, member=member, is_staff=is_staff
    )
    return questions.exclude(has_published_solution_q()).order_by("-created_at", "-id")


def list_ideas(
    *, member: Member | None, is_staff: bool = False, status: str = ""
) -> QuerySet[Topic]:
    """Return visible ideas by vote score, then newest, of one status or all.

    Ideas nobody has reviewed yet have an empty status, and count as new.
    """
    ideas = _published_topics(kind=Topic.Kind.IDEA, member=member, is_staff=is_staff)
    if status == Topic.IdeaStatus.NEW:
        ideas = ideas.filter(idea_status__in=IDEA_STATUS_NEW_VALUES)
    elif status:
        ideas = ideas.filter(idea_status=status)
    return ideas.order_by("-vote_score", "-created_at", "-id")


def get_accepted_solution(topic: Topic) -> Reply | None:
    """Return the topic's accepted reply if it is published, with its author."""
    if topic.accepted_reply_id is None:
        return None
    return (
        Reply.objects.filter(
            pk=topic.accepted_reply_id, is_hidden=False, deleted_at__isnull=True
        )
        .select_related("author__user")
        .first()
    )
