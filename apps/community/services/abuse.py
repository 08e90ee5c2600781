"""Posting limits for new members, trust levels, and duplicate-post checks.

Trust levels (MemberStats.trust_level) grow with participation and unlock
higher posting limits. `update_trust_level` raises a member to the highest
level whose every threshold they meet, and never lowers a level, so staff may
set a higher one by hand:

| level | name    | days since first post | posts | solutions | kudos received |
| ----- | ------- | --------------------- | ----- | --------- | -------------- |
| 0     | new     | -                     | -     | -         | -              |
| 1     | basic   | 1                     | 3     | 0         | 0              |
| 2     | member  | 14                    | 20    | 1         | 3              |
| 3     | regular | 60                    | 100   | 5         | 20             |
| 4     | leader  | set by staff only     |       |           |                |

Posts are MemberStats.topic_count plus reply_count.
"""

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.db.models import F, Func, Min, TextField, Value
from django.db.models.functions import Lower, Trim
from django.utils import timezone

from apps.community.models import MemberStats, Reply, Topic
from apps.membership.models import Member
from rm6.errors import DomainError

logger = logging.getLogger(__name__)

RATE_WINDOW = timedelta(hours=1)
DUPLICATE_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class PostingLimit:
    """The most topics and replies a member may post per RATE_WINDOW."""

    topics: int
    replies: int


# Trust levels missing here post without a limit.
POSTING_LIMITS = {
    0: PostingLimit(topics=3, replies=10),
    1: PostingLimit(topics=10, replies=40),
    2: PostingLimit(topics=30, replies=120),
}


@dataclass(frozen=True)
class TrustRule:
    level: int
    days_since_first_post: int
    posts: int
    solutions: int
    kudos_received: int


TRUST_RULES = [
    TrustRule(
        level=3, days_since_first_post=60, posts=100, solutions=5, kudos_received=20
    ),
    TrustRule(
        level=2, days_since_first_post=14, posts=20, solutions=1, kudos_received=3
    ),
    TrustRule(level=1, days_since_first_post=1, posts=3, solutions=0, kudos_received=0),
]


def normalise_body(body: str) -> str:
    """Return the body lower-cased with runs of whitespace made one space."""
    return " ".join(body.lower().split())


def _normalised_body_expression():
    collapsed = Func(
        F("body"),
        Value(r"\s+"),
        Value(" "),
        Value("g"),
        function="regexp_replace",
        output_field=TextField(),
    )
    return Lower(Trim(collapsed))


def _lock_stats(member: Member) -> MemberStats:
    stats, _ = MemberStats.objects.select_for_update().get_or_create(member=member)
    return stats


def check_posting_allowed(*, member: Member, kind: str, body: str) -> None:
    """Raise DomainError if the member may not post this topic or reply now.

    `kind` is "topic" or "reply". Call it inside the posting transaction: it
    locks the member's MemberStats row until the transaction ends, so two
    concurrent posts by one member are counted one after the other and cannot
    both pass the limit.
    """
    if kind not in ("topic", "reply"):
        raise ValueError(f"Unknown post kind {kind!r}; use 'topic' or 'reply'.")
    stats = _lock_stats(member)
    now = timezone.now()

    limit = POSTING_LIMITS.get(stats.trust_level)
    if limit is not None:
        since = now - RATE_WINDOW
        if kind == "topic":
            count = Topic.objects.filter(author=member, created_at__gte=since).count()
            maximum = limit.topics
        else:
            count = Reply.objects.filter(author=member, created_at__gte=since).count()
            maximum = limit.replies
        if count >= maximum:
            logger.info(
                "post rejected by rate limit: member=%s kind=%s", member.pk, kind
            )
            noun = "topics" if kind == "topic" else "replies"
            raise DomainError(
                f"At your trust level you may post at most {maximum} {noun} an "
                "hour, and you have reached that limit. Try again later; the "
                "limit rises as you take part.",
                code="rate_limited",
            )

    _reject_duplicate(member=member, body=body, now=now)


def _reject_duplicate(*, member: Member, body: str, now) -> None:
    normalised = normalise_body(body)
    if not normalised:
        return
    since = now - DUPLICATE_WINDOW
    for model in (Topic, Reply):
        duplicates = (
            model.objects.filter(author=member, created_at__gte=since)
            .alias(normalised_body=_normalised_body_expression())
            .filter(normalised_body=normalised)
        )
        if duplicates.exists():
            logger.info("post rejected as a duplicate: member=%s", member.pk)
            raise DomainError(
                "You posted the same text in the last 24 hours. Link to your "
                "earlier post instead of posting it again.",
                field="body",
                code="duplicate",
            )


def compute_trust_level(*, stats: MemberStats, days_since_first_post: int) -> int:
    """Return the highest trust level whose thresholds the counters meet."""
    posts = stats.topic_count + stats.reply_count
    for rule in TRUST_RULES:
        if (
            days_since_first_post >= rule.days_since_first_post
            and posts >= rule.posts
            and stats.solution_count >= rule.solutions
            and stats.kudos_received >= rule.kudos_received
        ):
            return rule.level
    return 0


def update_trust_level(*, member: Member) -> int:
    """Raise the member's trust level to what their participation earns.

    Call it after a post or an accepted solution, inside that transaction.
    Return the level after the update.
    """
    stats = _lock_stats(member)
    first_topic = Topic.objects.filter(author=member).aggregate(at=Min("created_at"))
    first_reply = Reply.objects.filter(author=member).aggregate(at=Min("created_at"))
    firsts = [at for at in (first_topic["at"], first_reply["at"]) if at is not None]
    if not firsts:
        return stats.trust_level
    days = (timezone.now() - min(firsts)).days

    level = compute_trust_level(stats=stats, days_since_first_post=days)
    if level <= stats.trust_level:
        return stats.trust_level
    MemberStats.objects.filter(pk=stats.pk).update(trust_level=level)
    logger.info("trust level raised: member=%s level=%s", member.pk, level)
    return level
