from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.db import models
from django.urls import reverse

from apps.community.models.spaces import Space, Tag
from apps.membership.models import Member


class Topic(models.Model):
    """A question, discussion, idea or announcement in a space.

    `suggest_vector` holds only the title: the portal's case form matches a
    short subject against solved questions on every pause in typing, and a
    title vector keeps the GIN posting lists of common words short. Its
    index covers solved questions only, the filter that search carries.
    PostgreSQL computes it, so no write path can forget it.
    """

    class Kind(models.TextChoices):
        QUESTION = "question", "Question"
        DISCUSSION = "discussion", "Discussion"
        IDEA = "idea", "Idea"
        ANNOUNCEMENT = "announcement", "Announcement"

    class IdeaStatus(models.TextChoices):
        NEW = "new", "New"
        UNDER_REVIEW = "under_review", "Under review"
        PLANNED = "planned", "Planned"
        SHIPPED = "shipped", "Shipped"
        DECLINED = "declined", "Declined"

    space = models.ForeignKey(Space, on_delete=models.CASCADE, related_name="topics")
    author = models.ForeignKey(
        Member, on_delete=models.SET_NULL, null=True, related_name="topics"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.QUESTION)
    title = models.CharField(max_length=200)
    body = models.TextField()
    tags = models.ManyToManyField(Tag, blank=True, related_name="topics")
    reply_count = models.PositiveIntegerField(default=0)
    vote_score = models.IntegerField(default=0)
    kudos_count = models.PositiveIntegerField(default=0)
    accepted_reply = models.OneToOneField(
        "Reply",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="accepted_for",
    )
    solved_at = models.DateTimeField(null=True, blank=True)
    first_reply_at = models.DateTimeField(
        null=True, blank=True, help_text="First reply by someone other than the author."
    )
    idea_status = models.CharField(
        max_length=20, choices=IdeaStatus.choices, blank=True, default=""
    )
    official_response = models.TextField(blank=True, default="")
    official_response_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    official_response_at = models.DateTimeField(null=True, blank=True)
    is_locked = models.BooleanField(default=False)
    is_hidden = models.BooleanField(default=False)
    deleted_at = models.DateTimeField(null=True, blank=True)
    merged_into = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    edited_at = models.DateTimeField(null=True, blank=True)
    search_vector = SearchVectorField(null=True, editable=False)
    suggest_vector = models.GeneratedField(
        expression=SearchVector("title", weight="A", config="english"),
        output_field=SearchVectorField(),
        db_persist=True,
    )
    created_at = models.DateTimeField()
    last_activity_at = models.DateTimeField()

    class Meta:
        ordering = ["-last_activity_at", "-id"]
        indexes = [
            models.Index(fields=["space", "-last_activity_at", "-id"]),
            models.Index(fields=["author", "-created_at"]),
            models.Index(fields=["kind", "created_at"]),
            models.Index(
                fields=["space", "-vote_score"],
                condition=models.Q(kind="idea"),
                name="topic_idea_votes_idx",
            ),
            GinIndex(fields=["search_vector"], name="topic_search_idx"),
            # Partial on the solved-question filter of the portal's case
            # suggestions, so the planner can use it for that search.
            GinIndex(
                fields=["suggest_vector"],
                name="topic_suggest_idx",
                condition=models.Q(kind="question", accepted_reply__isnull=False),
            ),
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
    quoted_reply = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    vote_score = models.IntegerField(default=0)
    kudos_count = models.PositiveIntegerField(default=0)
    is_hidden = models.BooleanField(default=False)
    deleted_at = models.DateTimeField(null=True, blank=True)
    edited_at = models.DateTimeField(null=True, blank=True)
    search_vector = SearchVectorField(null=True, editable=False)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name_plural = "replies"
        indexes = [
            models.Index(fields=["topic", "created_at", "id"]),
            models.Index(fields=["author", "-created_at"]),
            GinIndex(fields=["search_vector"], name="reply_search_idx"),
        ]

    def __str__(self) -> str:
        return f"Reply {self.pk} to {self.topic_id}"

    def get_absolute_url(self) -> str:
        # From topic_id, so that lists of replies do not load each topic.
        topic_url = reverse("community:topic", kwargs={"pk": self.topic_id})
        return f"{topic_url}#reply-{self.pk}"


class PostRevision(models.Model):
    """The text of a topic or reply before one edit, for the edit history."""

    topic = models.ForeignKey(
        Topic, on_delete=models.CASCADE, null=True, blank=True, related_name="revisions"
    )
    reply = models.ForeignKey(
        Reply, on_delete=models.CASCADE, null=True, blank=True, related_name="revisions"
    )
    editor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    title = models.CharField(max_length=200, blank=True, default="")
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(topic__isnull=False, reply__isnull=True)
                | models.Q(topic__isnull=True, reply__isnull=False),
                name="postrevision_one_post",
            ),
        ]

    def __str__(self) -> str:
        return f"Revision {self.pk}"
