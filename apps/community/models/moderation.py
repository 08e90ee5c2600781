from django.conf import settings
from django.db import models

from apps.community.models.posts import Reply, Topic
from apps.membership.models import Member


class Flag(models.Model):
    """A member's report that a post needs a moderator's look."""

    class Reason(models.TextChoices):
        SPAM = "spam", "Spam"
        ABUSE = "abuse", "Abusive or offensive"
        OFF_TOPIC = "off_topic", "Off topic"
        PERSONAL_DATA = "personal_data", "Shares personal data"
        OTHER = "other", "Other"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ACTIONED = "actioned", "Actioned"
        DISMISSED = "dismissed", "Dismissed"

    reporter = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="flags")
    topic = models.ForeignKey(
        Topic, on_delete=models.CASCADE, null=True, blank=True, related_name="flags"
    )
    reply = models.ForeignKey(
        Reply, on_delete=models.CASCADE, null=True, blank=True, related_name="flags"
    )
    reason = models.CharField(max_length=20, choices=Reason.choices)
    note = models.CharField(max_length=500, blank=True, default="")
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.OPEN
    )
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(topic__isnull=False, reply__isnull=True)
                | models.Q(topic__isnull=True, reply__isnull=False),
                name="flag_one_post",
            ),
            models.UniqueConstraint(
                fields=["reporter", "topic"],
                condition=models.Q(status="open", topic__isnull=False),
                name="flag_one_open_per_topic",
            ),
            models.UniqueConstraint(
                fields=["reporter", "reply"],
                condition=models.Q(status="open", reply__isnull=False),
                name="flag_one_open_per_reply",
            ),
        ]
        indexes = [models.Index(fields=["status", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.get_reason_display()} flag {self.pk}"


class ModerationAction(models.Model):
    """The audit log of moderation: who did what to which post or member."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    action = models.CharField(max_length=30)
    topic = models.ForeignKey(
        Topic, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    reply = models.ForeignKey(
        Reply, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    member = models.ForeignKey(
        Member, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    reason = models.CharField(max_length=500, blank=True, default="")
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["action", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.action} at {self.created_at:%Y-%m-%d %H:%M}"


class Suspension(models.Model):
    """A period during which a member may read but not post."""

    member = models.ForeignKey(
        Member, on_delete=models.CASCADE, related_name="suspensions"
    )
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField(
        null=True, blank=True, help_text="Empty: indefinite."
    )
    reason = models.CharField(max_length=500)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    lifted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-starts_at"]
        indexes = [models.Index(fields=["member", "lifted_at"])]

    def __str__(self) -> str:
        return f"Suspension of member {self.member_id}"


class SearchLog(models.Model):
    """A search that found nothing, kept for the content-gap report."""

    query = models.CharField(max_length=200)
    member = models.ForeignKey(
        Member, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    filters = models.JSONField(default=dict, blank=True)
    result_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["result_count", "-created_at"])]

    def __str__(self) -> str:
        return self.query
