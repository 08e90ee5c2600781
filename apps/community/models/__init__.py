from apps.community.models.engagement import (
    DigestSent,
    Kudos,
    MemberStats,
    Mention,
    Subscription,
    Vote,
)
from apps.community.models.events import CommunityEvent, Rsvp
from apps.community.models.moderation import (
    Flag,
    ModerationAction,
    SearchLog,
    Suspension,
)
from apps.community.models.posts import PostRevision, Reply, Topic
from apps.community.models.spaces import Space, SpaceMembership, Tag

__all__ = [
    "CommunityEvent",
    "DigestSent",
    "Flag",
    "Kudos",
    "MemberStats",
    "Mention",
    "ModerationAction",
    "PostRevision",
    "Reply",
    "Rsvp",
    "SearchLog",
    "Space",
    "SpaceMembership",
    "Subscription",
    "Suspension",
    "Tag",
    "Topic",
    "Vote",
]
