"""Case deflection (kpis.md) and the content-gap backlog.

An attempt starts when a member opens the new-case form. Every suggestion
the form shows is a `Suggestion` row, stamped when opened and when marked
helpful. The classification follows kpis.md: deflected when the member
opened a suggestion and filed no case within 24 hours, or said an answer
solved the problem; not deflected when a case was filed; pending until then.
"""

from django.conf import settings
from django.db import models

from apps.membership.models import Member


class CaseAttempt(models.Model):
    class Outcome(models.TextChoices):
        PENDING = "pending", "Pending"
        DEFLECTED = "deflected", "Deflected"
        NOT_DEFLECTED = "not_deflected", "Not deflected"

    member = models.ForeignKey(
        Member, on_delete=models.CASCADE, related_name="case_attempts"
    )
    started_at = models.DateTimeField()
    query = models.CharField(
        max_length=300, blank=True, default="", help_text="The last text searched."
    )
    topic = models.ForeignKey(
        "portal.CaseTopic",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="attempts",
    )
    segment = models.CharField(
        max_length=20, blank=True, default="", help_text="The account segment then."
    )
    campaign_id = models.CharField(max_length=100, blank=True, default="")
    play_id = models.CharField(max_length=100, blank=True, default="")
    utm = models.JSONField(default=dict, blank=True)
    outcome = models.CharField(
        max_length=15, choices=Outcome.choices, default=Outcome.PENDING
    )
    solved_by_suggestion_at = models.DateTimeField(null=True, blank=True)
    classified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [
            models.Index(
                fields=["started_at"],
                name="portal_attempt_pending_idx",
                condition=models.Q(outcome="pending"),
            ),
            models.Index(fields=["started_at"], name="portal_attempt_started_idx"),
        ]

    def __str__(self) -> str:
        return f"Case attempt {self.pk} ({self.outcome})"


class Suggestion(models.Model):
    """One answer the case form showed during an attempt: an article or an
    accepted community solution (exactly one of the two)."""

    attempt = models.ForeignKey(
        CaseAttempt, on_delete=models.CASCADE, related_name="suggestions"
    )
    article = models.ForeignKey(
        "portal.Article",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="suggestions",
    )
    topic = models.ForeignKey(
        "community.Topic",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        help_text="A solved community question.",
    )
    query = models.CharField(max_length=300, blank=True, default="")
    rank = models.PositiveSmallIntegerField(default=0)
    shown_at = models.DateTimeField()
    opened_at = models.DateTimeField(null=True, blank=True)
    helpful_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["attempt", "rank", "id"]
        constraints = [
            models.CheckConstraint(
                name="portal_suggestion_one_content",
                condition=models.Q(article__isnull=False, topic__isnull=True)
                | models.Q(article__isnull=True, topic__isnull=False),
            ),
            models.UniqueConstraint(
                fields=["attempt", "article"],
                condition=models.Q(article__isnull=False),
                name="portal_suggestion_article_once",
            ),
            models.UniqueConstraint(
                fields=["attempt", "topic"],
                condition=models.Q(topic__isnull=False),
                name="portal_suggestion_topic_once",
            ),
        ]

    def __str__(self) -> str:
        return f"Suggestion {self.pk} for attempt {self.attempt_id}"


class ContentGap(models.Model):
    """A question the content does not answer yet, grouped from case topics
    and searches that found no helpful answer, worked through by staff."""

    class Source(models.TextChoices):
        CASES = "cases", "Cases filed without a helpful answer"
        SEARCH = "search", "Searches with no results"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        IN_PROGRESS = "in_progress", "In progress"
        PUBLISHED = "published", "Published"
        DISMISSED = "dismissed", "Dismissed"

    key = models.CharField(
        max_length=200,
        unique=True,
        help_text="The normalised query or topic the gap groups, so a rerun "
        "of the grouping updates the gap instead of adding another.",
    )
    title = models.CharField(max_length=200)
    source = models.CharField(max_length=10, choices=Source.choices)
    topic = models.ForeignKey(
        "portal.CaseTopic",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="gaps",
    )
    sample_queries = models.JSONField(default=list, blank=True)
    occurrences = models.PositiveIntegerField(default=0)
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    status = models.CharField(
        max_length=15, choices=Status.choices, default=Status.OPEN
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="content_gaps",
        limit_choices_to={"is_staff": True},
    )
    due_on = models.DateField(null=True, blank=True)
    article = models.ForeignKey(
        "portal.Article",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="gaps_closed",
        help_text="The article published to close the gap.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["status", "-occurrences"]

    def __str__(self) -> str:
        return self.title
