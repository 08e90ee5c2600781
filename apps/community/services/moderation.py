"""Moderation: flags, hiding, locking, moving, merging, deleting, suspensions.

Counters count published posts. A topic counts while it is neither hidden
nor deleted (a merged topic is hidden), and a reply counts in its space and
for its author while neither it nor its topic is hidden or deleted.
`Topic.reply_count` counts the topic's replies that are neither hidden nor
deleted, whatever the state of the topic itself, so that hiding and
unhiding a topic leaves it alone. A solution counts while its topic and the
accepted reply are both published. Every action here moves the stored
counters by exactly the posts it publishes or unpublishes, with F()
updates, and `recount_space`, `recount_topic` and `recount_member_stats`
compute the same numbers from the rows, for tests and the admin "recount"
action.

Every action writes a ModerationAction row (the audit log) and records a
`community.moderation_<action>` activity event on the member the action is
about: the author of the post, the suspended member, or the reporter of a
flag. A post whose author is gone records no event.
"""

import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Min, Q
from django.db.models.functions import Greatest
from django.utils import timezone

from apps.community.models import (
    Flag,
    MemberStats,
    ModerationAction,
    Reply,
    Space,
    Suspension,
    Topic,
)
from apps.community.selectors.access import (
    can_moderate_space,
    filter_visible_replies,
    filter_visible_topics,
)
from apps.community.selectors.moderation import get_active_suspension
from apps.community.services.counters import change_member_stats
from apps.lifecycle.services import record_activity
from apps.membership.models import Member
from apps.membership.selectors import get_member_for_user
from apps.membership.selectors.roles import has_capability
from rm6.errors import DomainError

logger = logging.getLogger(__name__)

Post = Topic | Reply

# Open flags from this many members hide a post until a moderator reviews it.
DEFAULT_FLAG_HIDE_THRESHOLD = 3
ACTIONS = (
    "flag",
    "dismiss_flags",
    "hide",
    "unhide",
    "lock",
    "unlock",
    "move",
    "merge",
    "delete",
    "undelete",
    "suspend",
    "unsuspend",
)
SPACE_COUNTERS = ("topic_count", "reply_count", "solution_count")
MEMBER_COUNTERS = ("topic_count", "reply_count", "solution_count")


def get_flag_hide_threshold() -> int:
    """Return how many open flags hide a post automatically."""
    return getattr(
        settings, "COMMUNITY_FLAG_HIDE_THRESHOLD", DEFAULT_FLAG_HIDE_THRESHOLD
    )


# Permissions


def can_moderate(*, user, space: Space) -> bool:
    """Return whether the user may moderate posts in the space.

    Staff and champions moderate every space, and a private group's
    moderators their own group.
    """
    if not user.is_authenticated or not user.is_active:
        return False
    if has_capability(user, "moderate_community"):
        return True
    member = get_member_for_user(user)
    return can_moderate_space(member=member, space=space, is_staff=user.is_staff)


def _check_moderator(*, user, space: Space) -> None:
    if not can_moderate(user=user, space=space):
        raise DomainError(f"You cannot moderate {space.name}.", code="forbidden")


def _check_community_moderator(*, user) -> None:
    if not (user.is_active and has_capability(user, "moderate_community")):
        raise DomainError(
            "Only community moderators suspend members.", code="forbidden"
        )


# Counters


def is_topic_published(topic: Topic) -> bool:
    return not topic.is_hidden and topic.deleted_at is None


def is_reply_published(reply: Reply) -> bool:
    """Return whether the reply itself is neither hidden nor deleted."""
    return not reply.is_hidden and reply.deleted_at is None


@dataclass
class _Contribution:
    """What some published posts add to one space's and their members' counters."""

    space: Counter = field(default_factory=Counter)
    members: dict[int, Counter] = field(default_factory=lambda: defaultdict(Counter))

    def apply(self, *, space_id: int, sign: int, members: bool = True) -> None:
        change_space_counters(
            space_id=space_id, **{k: sign * v for k, v in self.space.items()}
        )
        if not members:
            return
        for member_id, counts in self.members.items():
            deltas = {name: sign * value for name, value in counts.items() if value}
            change_member_stats(member_id=member_id, **deltas)


def change_space_counters(*, space_id: int, **deltas: int) -> None:
    """Add each delta to the space's counter of that name, in one UPDATE.

    A decrement stops at zero, because counters of spaces created before
    the counters were kept would otherwise violate the positive-integer
    column; the admin "recount" action repairs such a space.
    """
    deltas = {name: delta for name, delta in deltas.items() if delta}
    if not deltas:
        return
    Space.objects.filter(pk=space_id).update(
        **{name: Greatest(F(name) + delta, 0) for name, delta in deltas.items()}
    )


def _change_topic_reply_count(*, topic_id: int, delta: int) -> None:
    if delta:
        Topic.objects.filter(pk=topic_id).update(
            reply_count=Greatest(F("reply_count") + delta, 0)
        )


def _published_replies(topic_id: int):
    return Reply.objects.filter(
        topic_id=topic_id, is_hidden=False, deleted_at__isnull=True
    )


def _solution_author(topic: Topic) -> tuple[bool, int | None]:
    """Return whether the topic's accepted reply is published, and its author."""
    if topic.accepted_reply_id is None:
        return False, None
    row = (
        Reply.objects.filter(
            pk=topic.accepted_reply_id, is_hidden=False, deleted_at__isnull=True
        )
        .values_list("author_id")
        .first()
    )
    if row is None:
        return False, None
    return True, row[0]


def _topic_contribution(topic: Topic) -> _Contribution:
    """Return what the topic adds to the counters while it is published."""
    contribution = _Contribution()
    published_replies = _published_replies(topic.pk)
    reply_count = published_replies.count()
    contribution.space.update(topic_count=1, reply_count=reply_count)
    if topic.author_id is not None:
        contribution.members[topic.author_id]["topic_count"] += 1
    rows = (
        published_replies.filter(author__isnull=False)
        .values("author_id")
        .annotate(count=Count("id"))
        .order_by()
    )
    for row in rows:
        contribution.members[row["author_id"]]["reply_count"] += row["count"]

    has_solution, solution_author_id = _solution_author(topic)
    if has_solution:
        contribution.space["solution_count"] += 1
        if solution_author_id is not None:
            contribution.members[solution_author_id]["solution_count"] += 1
    return contribution


def _reply_contribution(reply: Reply, topic: Topic) -> _Contribution:
    """Return what the reply adds to its space and author while both count."""
    contribution = _Contribution()
    contribution.space["reply_count"] = 1
    if reply.author_id is not None:
        contribution.members[reply.author_id]["reply_count"] += 1
    if topic.accepted_reply_id == reply.pk:
        contribution.space["solution_count"] += 1
        if reply.author_id is not None:
            contribution.members[reply.author_id]["solution_count"] += 1
    return contribution


def _change_topic_state(topic: Topic, **values) -> None:
    """Save new hidden, deleted or merged values and move the counters with them."""
    was_published = is_topic_published(topic)
    for name, value in values.items():
        setattr(topic, name, value)
    is_published = is_topic_published(topic)

    if was_published != is_published:
        sign = 1 if is_published else -1
        _topic_contribution(topic).apply(space_id=topic.space_id, sign=sign)
    topic.save(update_fields=list(values))


def _change_reply_state(reply: Reply, topic: Topic, **values) -> None:
    was_published = is_reply_published(reply)
    for name, value in values.items():
        setattr(reply, name, value)
    is_published = is_reply_published(reply)

    if was_published != is_published:
        sign = 1 if is_published else -1
        _change_topic_reply_count(topic_id=topic.pk, delta=sign)
        if is_topic_published(topic):
            _reply_contribution(reply, topic).apply(space_id=topic.space_id, sign=sign)
    reply.save(update_fields=list(values))


# Recount, for tests and the admin action


def count_space(space: Space) -> dict[str, int]:
    """Return the counters of the space computed from its rows."""
    topics = Topic.objects.filter(space=space, is_hidden=False, deleted_at__isnull=True)
    replies = Reply.objects.filter(
        topic__in=topics, is_hidden=False, deleted_at__isnull=True
    )
    solutions = topics.filter(
        accepted_reply__is_hidden=False, accepted_reply__deleted_at__isnull=True
    )
    return {
        "topic_count": topics.count(),
        "reply_count": replies.count(),
        "solution_count": solutions.count(),
    }


def count_member(member: Member) -> dict[str, int]:
    """Return the member's post counters computed from the rows."""
    topics = Topic.objects.filter(
        author=member, is_hidden=False, deleted_at__isnull=True
    )
    replies = Reply.objects.filter(
        author=member,
        is_hidden=False,
        deleted_at__isnull=True,
        topic__is_hidden=False,
        topic__deleted_at__isnull=True,
    )
    return {
        "topic_count": topics.count(),
        "reply_count": replies.count(),
        "solution_count": replies.filter(accepted_for__isnull=False).count(),
    }


def _compare(stored, expected: dict[str, int], *, fix: bool) -> dict:
    differences = {
        name: (getattr(stored, name), value)
        for name, value in expected.items()
        if getattr(stored, name) != value
    }
    if differences and fix:
        type(stored).objects.filter(pk=stored.pk).update(**expected)
    return differences


def recount_space(space: Space, *, fix: bool = False) -> dict[str, tuple[int, int]]:
    """Return the space's wrong counters as {name: (stored, counted)}.

    With `fix`, store the counted values. Services never call it: they keep
    the counters exact with F() updates, and this checks that they do.
    """
    space = Space.objects.get(pk=space.pk)
    return _compare(space, count_space(space), fix=fix)


def recount_topic(topic: Topic, *, fix: bool = False) -> dict[str, tuple[int, int]]:
    """Return the topic's wrong reply count as {"reply_count": (stored, counted)}."""
    topic = Topic.objects.get(pk=topic.pk)
    expected = {"reply_count": _published_replies(topic.pk).count()}
    return _compare(topic, expected, fix=fix)


def recount_member_stats(
    member: Member, *, fix: bool = False
) -> dict[str, tuple[int, int]]:
    """Return the member's wrong post counters as {name: (stored, counted)}."""
    stats, _ = MemberStats.objects.get_or_create(member=member)
    return _compare(stats, count_member(member), fix=fix)


# Audit


def _post_fields(post: Post) -> dict:
    if isinstance(post, Topic):
        return {"topic": post}
    return {"topic": post.topic, "reply": post}


def _audit(
    *,
    action: str,
    actor_user,
    post: Post | None = None,
    member: Member | None = None,
    reason: str = "",
    details: dict | None = None,
    event_member: Member | None = None,
) -> ModerationAction:
    """Write the audit row and record the activity event of one action."""
    row = ModerationAction.objects.create(
        actor=actor_user,
        action=action,
        member=member,
        reason=reason[:500],
        details=details or {},
        **(_post_fields(post) if post is not None else {}),
    )

    subject_member = event_member or member or (post.author if post else None)
    if subject_member is not None:
        record_activity(
            member=subject_member,
            kind=f"community.moderation_{action}",
            subject=post if post is not None else member,
            properties={
                "moderation_action_id": row.pk,
                "actor_user_id": actor_user.pk if actor_user else None,
                **(details or {}),
            },
        )
    logger.info(
        "community moderation action",
        extra={"action": action, "moderation_action_id": row.pk},
    )
    return row


def _resolve_open_flags(*, post: Post, actor_user, status: str) -> int:
    flags = Flag.objects.filter(status=Flag.Status.OPEN, **_flag_target(post))
    return flags.update(
        status=status, resolved_by=actor_user, resolved_at=timezone.now()
    )


def _flag_target(post: Post) -> dict:
    if isinstance(post, Topic):
        return {"topic": post}
    return {"reply": post}


def _lock_post(post: Post) -> tuple[Post, Topic]:
    """Return the post re-read under a row lock, and its topic."""
    if isinstance(post, Topic):
        topic = (
            Topic.objects.select_for_update().select_related("space").get(pk=post.pk)
        )
        return topic, topic
    reply = Reply.objects.select_for_update().get(pk=post.pk)
    topic = (
        Topic.objects.select_for_update().select_related("space").get(pk=reply.topic_id)
    )
    reply.topic = topic
    return reply, topic


# Flags


@transaction.atomic
def flag_post(*, reporter: Member, post: Post, reason: str, note: str = "") -> Flag:
    """Flag a post for moderators; enough open flags hide it until reviewed."""
    post, topic = _lock_post(post)
    if isinstance(post, Topic):
        visible = filter_visible_topics(Topic.objects.filter(pk=post.pk), reporter)
    else:
        visible = filter_visible_replies(Reply.objects.filter(pk=post.pk), reporter)
    if not visible.exists():
        raise DomainError("Post not found.", code="not_found")
    if post.author_id == reporter.pk:
        raise DomainError("You cannot flag your own post.", field="reason")
    if reason not in Flag.Reason.values:
        raise DomainError(
            f"Unknown flag reason {reason!r}; use one of "
            f"{', '.join(Flag.Reason.values)}.",
            field="reason",
        )

    try:
        with transaction.atomic():
            flag = Flag.objects.create(
                reporter=reporter,
                reason=reason,
                note=(note or "").strip()[:500],
                **_flag_target(post),
            )
    except IntegrityError:
        raise DomainError(
            "You have already flagged this post; a moderator will review it.",
            code="duplicate",
        ) from None
    _audit(
        action="flag",
        actor_user=reporter.user,
        post=post,
        reason=flag.note,
        details={"flag_id": flag.pk, "flag_reason": reason},
        event_member=reporter,
    )

    open_flags = Flag.objects.filter(
        status=Flag.Status.OPEN, **_flag_target(post)
    ).count()
    threshold = get_flag_hide_threshold()
    if open_flags >= threshold and not post.is_hidden:
        _set_hidden(post, topic, hidden=True)
        _audit(
            action="hide",
            actor_user=None,
            post=post,
            reason=f"Hidden automatically after {open_flags} open flags.",
            details={"automatic": True, "open_flags": open_flags},
        )
    return flag


@transaction.atomic
def dismiss_flags(*, post: Post, actor_user, reason: str = "") -> int:
    """Dismiss the post's open flags and unhide it if they had hidden it.

    Return the number of flags dismissed.
    """
    post, topic = _lock_post(post)
    _check_moderator(user=actor_user, space=topic.space)
    dismissed = _resolve_open_flags(
        post=post, actor_user=actor_user, status=Flag.Status.DISMISSED
    )
    if not dismissed:
        return 0

    last_hide = (
        ModerationAction.objects.filter(
            action__in=["hide", "unhide"], **_post_fields(post)
        )
        .order_by("-created_at", "-id")
        .first()
    )
    hidden_by_flags = (
        post.is_hidden
        and last_hide is not None
        and last_hide.action == "hide"
        and last_hide.details.get("automatic") is True
    )
    if hidden_by_flags:
        _set_hidden(post, topic, hidden=False)
    _audit(
        action="dismiss_flags",
        actor_user=actor_user,
        post=post,
        reason=reason,
        details={"dismissed_flags": dismissed, "unhidden": hidden_by_flags},
    )
    return dismissed


# Hide, lock, delete


def _set_hidden(post: Post, topic: Topic, *, hidden: bool) -> None:
    if isinstance(post, Topic):
        _change_topic_state(post, is_hidden=hidden)
    else:
        _change_reply_state(post, topic, is_hidden=hidden)


@transaction.atomic
def hide_post(*, post: Post, actor_user, reason: str = "") -> bool:
    """Hide a topic or reply from members; return False if it was hidden."""
    post, topic = _lock_post(post)
    _check_moderator(user=actor_user, space=topic.space)
    if post.is_hidden:
        return False

    _set_hidden(post, topic, hidden=True)
    flags = _resolve_open_flags(
        post=post, actor_user=actor_user, status=Flag.Status.ACTIONED
    )
    _audit(
        action="hide",
        actor_user=actor_user,
        post=post,
        reason=reason,
        details={"actioned_flags": flags},
    )
    return True


@transaction.atomic
def unhide_post(*, post: Post, actor_user, reason: str = "") -> bool:
    """Show a hidden topic or reply again; return False if it was not hidden."""
    post, topic = _lock_post(post)
    _check_moderator(user=actor_user, space=topic.space)
    if not post.is_hidden:
        return False
    if isinstance(post, Topic) and post.merged_into_id is not None:
        raise DomainError(
            "This topic was merged into another one and stays hidden.",
            code="merged",
        )

    _set_hidden(post, topic, hidden=False)
    _audit(action="unhide", actor_user=actor_user, post=post, reason=reason)
    return True


@transaction.atomic
def delete_post(*, post: Post, actor_user, reason: str = "") -> bool:
    """Soft-delete a topic or reply; return False if it was already deleted."""
    post, topic = _lock_post(post)
    _check_moderator(user=actor_user, space=topic.space)
    if post.deleted_at is not None:
        return False

    now = timezone.now()
    if isinstance(post, Topic):
        _change_topic_state(post, deleted_at=now)
    else:
        _change_reply_state(post, topic, deleted_at=now)
    flags = _resolve_open_flags(
        post=post, actor_user=actor_user, status=Flag.Status.ACTIONED
    )
    _audit(
        action="delete",
        actor_user=actor_user,
        post=post,
        reason=reason,
        details={"actioned_flags": flags},
    )
    return True


@transaction.atomic
def undelete_post(*, post: Post, actor_user, reason: str = "") -> bool:
    """Restore a soft-deleted topic or reply; return False if it was not deleted."""
    post, topic = _lock_post(post)
    _check_moderator(user=actor_user, space=topic.space)
    if post.deleted_at is None:
        return False

    if isinstance(post, Topic):
        _change_topic_state(post, deleted_at=None)
    else:
        _change_reply_state(post, topic, deleted_at=None)
    _audit(action="undelete", actor_user=actor_user, post=post, reason=reason)
    return True


@transaction.atomic
def lock_topic(*, topic: Topic, actor_user, reason: str = "") -> bool:
    """Close a topic to new replies; return False if it was locked."""
    topic, _ = _lock_post(topic)
    _check_moderator(user=actor_user, space=topic.space)
    if topic.is_locked:
        return False

    topic.is_locked = True
    topic.save(update_fields=["is_locked"])
    _audit(action="lock", actor_user=actor_user, post=topic, reason=reason)
    return True


@transaction.atomic
def unlock_topic(*, topic: Topic, actor_user, reason: str = "") -> bool:
    """Open a locked topic to replies again; return False if it was open."""
    topic, _ = _lock_post(topic)
    _check_moderator(user=actor_user, space=topic.space)
    if not topic.is_locked:
        return False

    topic.is_locked = False
    topic.save(update_fields=["is_locked"])
    _audit(action="unlock", actor_user=actor_user, post=topic, reason=reason)
    return True


# Move and merge


@transaction.atomic
def move_topic(*, topic: Topic, space: Space, actor_user, reason: str = "") -> bool:
    """Move a topic, with its replies and solution, to another space.

    Return False if it is already there. The moderator must moderate both
    spaces.
    """
    topic, _ = _lock_post(topic)
    _check_moderator(user=actor_user, space=topic.space)
    _check_moderator(user=actor_user, space=space)
    if topic.space_id == space.pk:
        return False

    source_space_id = topic.space_id
    if is_topic_published(topic):
        contribution = _topic_contribution(topic)
        contribution.apply(space_id=source_space_id, sign=-1, members=False)
        contribution.apply(space_id=space.pk, sign=1, members=False)
    topic.space = space
    topic.save(update_fields=["space"])
    _audit(
        action="move",
        actor_user=actor_user,
        post=topic,
        reason=reason,
        details={"from_space_id": source_space_id, "to_space_id": space.pk},
    )
    return True


@transaction.atomic
def merge_topic(*, source: Topic, target: Topic, actor_user, reason: str = "") -> int:
    """Move every reply of `source` under `target` and hide `source`.

    The source keeps a link to the target in `merged_into`. Its accepted
    solution moves with it when the target is a question without one, and
    is dropped otherwise. Return the number of replies moved.
    """
    if source.pk == target.pk:
        raise DomainError("A topic cannot be merged into itself.", field="target")
    # Lock in id order, so two merges of the same pair cannot deadlock.
    locked = {
        topic.pk: topic
        for topic in Topic.objects.select_for_update()
        .select_related("space")
        .filter(pk__in=[source.pk, target.pk])
        .order_by("pk")
    }
    source, target = locked[source.pk], locked[target.pk]
    _check_moderator(user=actor_user, space=source.space)
    _check_moderator(user=actor_user, space=target.space)
    if source.merged_into_id is not None:
        raise DomainError(
            f"This topic was already merged into topic {source.merged_into_id}.",
            code="merged",
        )
    if target.deleted_at is not None or target.merged_into_id is not None:
        raise DomainError(
            "The target topic is deleted or merged; choose another one.",
            field="target",
        )

    _take_out_merged_topic(source)
    moved = _move_replies(source, target)
    _audit(
        action="merge",
        actor_user=actor_user,
        post=source,
        reason=reason,
        details={"target_topic_id": target.pk, "moved_replies": moved},
    )
    return moved


def _take_out_merged_topic(source: Topic) -> None:
    """Hide the source and take it and its replies out of every counter."""
    if is_topic_published(source):
        _topic_contribution(source).apply(space_id=source.space_id, sign=-1)
    source.is_hidden = True
    source.save(update_fields=["is_hidden"])


def _move_replies(source: Topic, target: Topic) -> int:
    published = _published_replies(source.pk)
    moved_published = published.count()
    authors = (
        published.filter(author__isnull=False)
        .values("author_id")
        .annotate(count=Count("id"))
        .order_by()
    )
    author_counts = {row["author_id"]: row["count"] for row in authors}
    first_reply_at = (
        Reply.objects.filter(topic=source)
        .exclude(author_id=target.author_id)
        .aggregate(first=Min("created_at"))["first"]
    )

    solution_id = source.accepted_reply_id
    takes_solution = (
        solution_id is not None
        and target.accepted_reply_id is None
        and target.kind == Topic.Kind.QUESTION
    )
    source.accepted_reply = None
    source.solved_at, solved_at = None, source.solved_at
    source.reply_count = 0
    source.merged_into = target
    source.save(
        update_fields=["accepted_reply", "solved_at", "reply_count", "merged_into"]
    )
    moved = Reply.objects.filter(topic=source).update(topic=target)

    target_fields = []
    if takes_solution:
        target.accepted_reply_id = solution_id
        target.solved_at = solved_at or timezone.now()
        target_fields += ["accepted_reply", "solved_at"]
    if first_reply_at and (
        target.first_reply_at is None or first_reply_at < target.first_reply_at
    ):
        target.first_reply_at = first_reply_at
        target_fields.append("first_reply_at")
    if target_fields:
        target.save(update_fields=target_fields)
    _change_topic_reply_count(topic_id=target.pk, delta=moved_published)

    if is_topic_published(target):
        contribution = _Contribution()
        contribution.space["reply_count"] = moved_published
        for author_id, count in author_counts.items():
            contribution.members[author_id]["reply_count"] += count
        if takes_solution:
            has_solution, author_id = _solution_author(target)
            if has_solution:
                contribution.space["solution_count"] += 1
                if author_id is not None:
                    contribution.members[author_id]["solution_count"] += 1
        contribution.apply(space_id=target.space_id, sign=1)
    return moved


# Suspensions


def check_not_suspended(member: Member) -> None:
    """Raise DomainError if the member is suspended from posting now."""
    suspension = get_active_suspension(member)
    if suspension is None:
        return
    if suspension.ends_at is None:
        until = "indefinitely"
    else:
        until = f"until {suspension.ends_at:%Y-%m-%d %H:%M} UTC"
    raise DomainError(
        f"You are suspended {until}: {suspension.reason}", code="suspended"
    )


@transaction.atomic
def suspend_member(
    *, member: Member, actor_user, reason: str, ends_at: datetime | None = None
) -> Suspension:
    """Stop a member from posting until `ends_at`, or until lifted if None."""
    _check_community_moderator(user=actor_user)
    reason = (reason or "").strip()
    if not reason:
        raise DomainError(
            "A suspension needs a reason, which the member sees.", field="reason"
        )
    if len(reason) > 500:
        raise DomainError(
            f"The reason has {len(reason)} characters; the maximum is 500.",
            field="reason",
        )
    now = timezone.now()
    if ends_at is not None and ends_at <= now:
        raise DomainError(
            "The end of a suspension must be in the future.", field="ends_at"
        )
    if member.user_id == actor_user.pk:
        raise DomainError("You cannot suspend yourself.", field="member")
    # The member row lock makes two moderators' suspensions queue up.
    Member.objects.select_for_update().filter(pk=member.pk).first()
    current = get_active_suspension(member)
    if current is not None:
        raise DomainError(
            "This member is already suspended; lift that suspension first to "
            "set another.",
            code="duplicate",
        )

    suspension = Suspension.objects.create(
        member=member,
        starts_at=now,
        ends_at=ends_at,
        reason=reason,
        created_by=actor_user,
    )
    _audit(
        action="suspend",
        actor_user=actor_user,
        member=member,
        reason=reason,
        details={
            "suspension_id": suspension.pk,
            "ends_at": ends_at.isoformat() if ends_at else None,
        },
    )
    return suspension


@transaction.atomic
def unsuspend_member(*, member: Member, actor_user, reason: str = "") -> int:
    """Lift the member's current suspensions; return how many were lifted."""
    _check_community_moderator(user=actor_user)
    now = timezone.now()
    lifted = Suspension.objects.filter(
        Q(ends_at__isnull=True) | Q(ends_at__gt=now),
        member=member,
        lifted_at__isnull=True,
    ).update(lifted_at=now)
    if not lifted:
        return 0

    _audit(
        action="unsuspend",
        actor_user=actor_user,
        member=member,
        reason=reason,
        details={"lifted_suspensions": lifted},
    )
    return lifted
