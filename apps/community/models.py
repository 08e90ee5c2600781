from django.db import models
from django.urls import reverse

from apps.membership.models import Account, Member


class Space(models.Model):
    """A place for topics about one subject, with its own audience."""

    class Visibility(models.TextChoices):
        PUBLIC = "public", "Public"
        MEMBERS = "members", "Members only"
        ACCOUNT = "account", "One account"

    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=120, unique=True)
    description = models.TextField(blank=True, default="")
    visibility = models.CharField(
        max_length=20, choices=Visibility.choices, default=Visibility.MEMBERS
    )
    account = models.ForeignKey(
        Account,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="spaces",
        help_text="For spaces private to one account.",
    )
    position = models.PositiveSmallIntegerField(default=0)
    topic_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["position", "name"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(visibility="account", account__isnull=False)
                    | (~models.Q(visibility="account") & models.Q(account__isnull=True))
                ),
                name="space_account_iff_account_visibility",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("community:space", kwargs={"slug": self.slug})


class Topic(models.Model):
    """A question, discussion, idea or announcement in a space."""

    class Kind(models.TextChoices):
        QUESTION = "question", "Question"
        DISCUSSION = "discussion", "Discussion"
        IDEA = "idea", "Idea"
        ANNOUNCEMENT = "announcement", "Announcement"

    space = models.ForeignKey(Space, on_delete=models.CASCADE, related_name="topics")
    author = models.ForeignKey(
        Member, on_delete=models.SET_NULL, null=True, related_name="topics"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.QUESTION)
    title = models.CharField(max_length=200)
    body = models.TextField()
    reply_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField()
    last_activity_at = models.DateTimeField()

    class Meta:
        ordering = ["-last_activity_at", "-id"]
        indexes = [
            models.Index(fields=["space", "-last_activity_at"]),
            models.Index(fields=["author", "-created_at"]),
            models.Index(fields=["kind", "created_at"]),
        ]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("community:topic", kwargs={"pk": self.pk})


class Reply(models.Model):
    """An answer or comment posted under a topic."""

    topic = models.ForeignKey(Topic, on_delete=models.CASCADE, related_name="replies")
    author = models.ForeignKey(
        Member, on_delete=models.SET_NULL, null=True, related_name="replies"
    )
    body = models.TextField()
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name_plural = "replies"
        indexes = [
            models.Index(fields=["topic", "created_at"]),
            models.Index(fields=["author", "-created_at"]),
        ]

    def __str__(self) -> str:
        return f"Reply {self.pk} to {self.topic_id}"

    def get_absolute_url(self) -> str:
        return f"{self.topic.get_absolute_url()}#reply-{self.pk}"
