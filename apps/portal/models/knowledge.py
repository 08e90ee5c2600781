"""The knowledge base: articles with owners, review dates and versions."""

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.db import models

from apps.membership.models import Member


class Article(models.Model):
    """A knowledge base article.

    `review_due_on` is `reviewed_on` plus `review_interval_days`; content
    freshness (kpis.md) is the share of published articles not yet due.
    `search_vector` is kept by the services on every save of the text.
    `suggest_vector` holds only the title (weight A) and the summary (weight
    B): the case form matches a short subject against it on every pause in
    typing, and a vector without the body keeps posting lists short and the
    rows small enough to rank without reading TOASTed values. PostgreSQL
    computes it, so no write path can forget it.
    """

    class Audience(models.TextChoices):
        PUBLIC = "public", "Everyone, signed in or not"
        MEMBERS = "members", "Signed-in members"

    title = models.CharField(max_length=200)
    slug = models.SlugField(max_length=120, unique=True)
    summary = models.CharField(max_length=300, blank=True, default="")
    body = models.TextField(help_text="Markdown.")
    audience = models.CharField(
        max_length=10, choices=Audience.choices, default=Audience.MEMBERS
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="owned_articles",
        limit_choices_to={"is_staff": True},
        help_text="The staff member who keeps the article correct.",
    )
    review_interval_days = models.PositiveIntegerField(default=180)
    reviewed_on = models.DateField(null=True, blank=True)
    review_due_on = models.DateField(null=True, blank=True)
    is_published = models.BooleanField(default=False)
    published_at = models.DateTimeField(null=True, blank=True)
    helpful_count = models.PositiveIntegerField(default=0)
    not_helpful_count = models.PositiveIntegerField(default=0)
    view_count = models.PositiveIntegerField(default=0)
    search_vector = SearchVectorField(null=True, editable=False)
    suggest_vector = models.GeneratedField(
        expression=SearchVector("title", weight="A", config="english")
        + SearchVector("summary", weight="B", config="english"),
        output_field=SearchVectorField(),
        db_persist=True,
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["title"]
        indexes = [
            GinIndex(fields=["search_vector"], name="portal_article_search_idx"),
            # Partial on the published filter every member query carries, so
            # the planner can use it for the case form's suggestions.
            GinIndex(
                fields=["suggest_vector"],
                name="portal_article_suggest_idx",
                condition=models.Q(is_published=True),
            ),
            models.Index(
                fields=["review_due_on"],
                name="portal_article_review_idx",
                condition=models.Q(is_published=True),
            ),
        ]

    def __str__(self) -> str:
        return self.title


class ArticleVersion(models.Model):
    """A saved state of an article's text; number 1 is the first."""

    article = models.ForeignKey(
        Article, on_delete=models.CASCADE, related_name="versions"
    )
    number = models.PositiveIntegerField()
    title = models.CharField(max_length=200)
    summary = models.CharField(max_length=300, blank=True, default="")
    body = models.TextField()
    edited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    note = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["article", "-number"]
        constraints = [
            models.UniqueConstraint(
                fields=["article", "number"], name="portal_article_version_number"
            )
        ]

    def __str__(self) -> str:
        return f"{self.article} v{self.number}"


class ArticleFeedback(models.Model):
    """A member's answer to "was this helpful"; they may change it."""

    article = models.ForeignKey(
        Article, on_delete=models.CASCADE, related_name="feedback"
    )
    member = models.ForeignKey(
        Member, on_delete=models.CASCADE, related_name="article_feedback"
    )
    helpful = models.BooleanField()
    comment = models.CharField(max_length=1000, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["article", "member"], name="portal_feedback_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.member} on {self.article}"


class ArticleReviewReminder(models.Model):
    """The daily overdue-review email sent to one article owner.

    The unique (owner, sent_on) pair lets the beat task run any number of
    times a day and still send each owner one reminder.
    """

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="article_review_reminders",
    )
    sent_on = models.DateField()
    article_count = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-sent_on"]
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "sent_on"], name="portal_review_reminder_daily"
            )
        ]

    def __str__(self) -> str:
        return f"Review reminder to {self.owner} on {self.sent_on}"
