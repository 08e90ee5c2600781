from django.db import models

from apps.community.models.posts import Reply, Topic
from apps.community.models.spaces import Space, Tag
from apps.membership.models import Member

_ONE_POST = models.Q(topic__isnull=False, reply__isnull=True) | models.Q(
    topic__isnull=True, reply__isnull=False
)


def _once_per_post(prefix: str) -> list[models.BaseConstraint]:
    """Return constraints: one post per row, and one row per member and post."""
    return [
        models.CheckConstraint(condition=_ONE_POST, name=f"{prefix}_one_post"),
        models.UniqueConstraint(
            fields=["member", "topic"],
            condition=models.Q(topic__isnull=False),
            name=f"{prefix}_once_per_topic",
        ),
        models.UniqueConstraint(
            fields=["member", "reply"],
            condition=models.Q(reply__isnull=False),
            name=f"{prefix}_once_per_reply",
        ),
    ]


class Vote(models.Model):
    """A member's up (+1) or down (-1) vote on a topic or a reply."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="votes")
    topic = models.ForeignKey(
        Topic, on_delete=models.CASCADE, null=True, blank=True, related_name="votes"
    )
    reply = models.ForeignKey(
        Reply, on_delete=models.CASCADE, null=True, blank=True, related_name="votes"
    )
    value = models.SmallIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(value__in=[-1, 1]), name="vote_value_plus_minus_one"
            ),
            *_once_per_post("vote"),
        ]

    def __str__(self) -> str:
        return f"{self.value:+d} by {self.member_id}"


class Kudos(models.Model):
    """A thank-you from one member for a topic or a reply."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="kudos")
    topic = models.ForeignKey(
        Topic, on_delete=models.CASCADE, null=True, blank=True, related_name="kudos"
    )
    reply = models.ForeignKey(
        Reply, on_delete=models.CASCADE, null=True, blank=True, related_name="kudos"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "kudos"
        constraints = [
            *_once_per_post("kudos"),
        ]

    def __str__(self) -> str:
        return f"Kudos by {self.member_id}"


class Mention(models.Model):
    """An @mention of a member in a post; its row makes the notice go once."""

    member = models.ForeignKey(
        Member, on_delete=models.CASCADE, related_name="mentions"
    )
    topic = models.ForeignKey(
        Topic, on_delete=models.CASCADE, null=True, blank=True, related_name="mentions"
    )
    reply = models.ForeignKey(
        Reply, on_delete=models.CASCADE, null=True, blank=True, related_name="mentions"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            *_once_per_post("mention"),
        ]

    def __str__(self) -> str:
        return f"@{self.member_id}"


class Subscription(models.Model):
    """A member watching a space, a topic or a tag."""

    member = models.ForeignKey(
        Member, on_delete=models.CASCADE, related_name="subscriptions"
    )
    space = models.ForeignKey(
        Space, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    topic = models.ForeignKey(
        Topic, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    tag = models.ForeignKey(
        Tag, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(
                    space__isnull=False, topic__isnull=True, tag__isnull=True
                )
                | models.Q(space__isnull=True, topic__isnull=False, tag__isnull=True)
                | models.Q(space__isnull=True, topic__isnull=True, tag__isnull=False),
                name="subscription_one_target",
            ),
            models.UniqueConstraint(
                fields=["member", "space"],
                condition=models.Q(space__isnull=False),
                name="subscription_once_per_space",
            ),
            models.UniqueConstraint(
                fields=["member", "topic"],
                condition=models.Q(topic__isnull=False),
                name="subscription_once_per_topic",
            ),
            models.UniqueConstraint(
                fields=["member", "tag"],
                condition=models.Q(tag__isnull=False),
                name="subscription_once_per_tag",
            ),
        ]

    def __str__(self) -> str:
        return f"Subscription {self.pk} of {self.member_id}"


class DigestSent(models.Model):
    """The record that a member's daily digest for one UTC day went out.

    The unique (member, day) pair makes the send happen at most once per day,
    whatever the number of beat runs or workers, and survives a cache flush.
    """

    member = models.ForeignKey(
        Member, on_delete=models.CASCADE, related_name="digests_sent"
    )
    day = models.DateField(help_text="The UTC day the digest covers.")
    topic_count = models.PositiveIntegerField(default=0)
    reply_count = models.PositiveIntegerField(default=0)
    sent_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "digest sent"
        verbose_name_plural = "digests sent"
        constraints = [
            models.UniqueConstraint(
                fields=["member", "day"], name="digestsent_once_per_member_day"
            ),
        ]

    def __str__(self) -> str:
        return f"Digest of {self.day} to member {self.member_id}"


class MemberStats(models.Model):
    """A member's community counters and trust level, kept exact by services."""

    member = models.OneToOneField(
        Member,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="community_stats",
    )
    topic_count = models.PositiveIntegerField(default=0)
    reply_count = models.PositiveIntegerField(default=0)
    solution_count = models.PositiveIntegerField(default=0)
    kudos_received = models.PositiveIntegerField(default=0)

    class TrustLevel(models.IntegerChoices):
        NEW = 0, "New"
        BASIC = 1, "Basic"
        MEMBER = 2, "Member"
        REGULAR = 3, "Regular"
        LEADER = 4, "Leader"

    trust_level = models.PositiveSmallIntegerField(
        default=0,
        choices=TrustLevel.choices,
        help_text="0 new, 1 basic, 2 member, 3 regular, 4 leader.",
    )

    class Meta:
        verbose_name_plural = "member stats"

    def __str__(self) -> str:
        return f"Stats of member {self.member_id}"
