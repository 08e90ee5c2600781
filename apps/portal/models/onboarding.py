"""Onboarding paths: ordered steps assigned by role, segment or account."""

from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone

from apps.membership.models import Account, Member


class OnboardingPath(models.Model):
    """An ordered list of steps that takes a member to their first value.

    A path applies to a member when each of its filters that is set matches:
    the member's role, their account's segment, and the account itself.
    An empty filter matches everyone.
    """

    title = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    description = models.TextField(blank=True, default="")
    roles = ArrayField(
        models.CharField(max_length=20, choices=Member.Role.choices),
        blank=True,
        default=list,
        help_text="Member roles the path is for; empty means every role.",
    )
    segments = ArrayField(
        models.CharField(max_length=20, choices=Account.Segment.choices),
        blank=True,
        default=list,
        help_text="Account segments the path is for; empty means every segment.",
    )
    accounts = models.ManyToManyField(
        Account,
        blank=True,
        related_name="onboarding_paths",
        help_text="Accounts the path is for; none means every account.",
    )
    is_published = models.BooleanField(default=False)
    position = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.title


class OnboardingStep(models.Model):
    """One step of an onboarding path.

    A step is done by hand (the member ticks it), automatically when an
    activity event of `completion_kind` arrives, or by visiting the content
    that `target` points at (an article, course, lesson, topic or hub).
    """

    class Completion(models.TextChoices):
        MANUAL = "manual", "Done by hand"
        EVENT = "event", "Done when an event arrives"
        VISIT = "visit", "Done by visiting content"

    path = models.ForeignKey(
        OnboardingPath, on_delete=models.CASCADE, related_name="steps"
    )
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    completion = models.CharField(
        max_length=10, choices=Completion.choices, default=Completion.EVENT
    )
    completion_kind = models.CharField(
        max_length=100,
        blank=True,
        default="",
        help_text="For steps done by an event: the activity event kind that "
        "completes the step, for example community.question_posted.",
    )
    target_type = models.ForeignKey(
        ContentType,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        help_text="For steps done by visiting content: the kind of content.",
    )
    target_id = models.PositiveBigIntegerField(null=True, blank=True)
    target = GenericForeignKey("target_type", "target_id")
    url = models.CharField(
        max_length=300, blank=True, default="", help_text="Where the member does it."
    )
    position = models.PositiveSmallIntegerField(default=0)
    is_published = models.BooleanField(default=True)

    class Meta:
        ordering = ["path", "position", "id"]
        indexes = [
            models.Index(fields=["completion_kind"], name="portal_step_kind_idx"),
            models.Index(
                fields=["target_type", "target_id"], name="portal_step_target_idx"
            ),
        ]
        constraints = [
            models.CheckConstraint(
                name="portal_step_event_has_kind",
                condition=~models.Q(completion="event") | ~models.Q(completion_kind=""),
            ),
            models.CheckConstraint(
                name="portal_step_visit_has_target",
                condition=~models.Q(completion="visit")
                | models.Q(target_type__isnull=False, target_id__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return self.title


class OnboardingProgress(models.Model):
    """A step a member has done; one row per (member, step).

    `completed_at` is when the member did it: the tick, or the time of the
    event that completed it, which can be older than the step itself.
    `recorded_at` is when the row was written, which the periodic completion
    pass reads to find members whose progress changed.
    """

    member = models.ForeignKey(
        Member, on_delete=models.CASCADE, related_name="onboarding_progress"
    )
    step = models.ForeignKey(
        OnboardingStep, on_delete=models.CASCADE, related_name="progress"
    )
    completed_at = models.DateTimeField()
    how = models.CharField(max_length=10, choices=OnboardingStep.Completion.choices)
    recorded_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["completed_at"]
        verbose_name_plural = "onboarding progress"
        constraints = [
            models.UniqueConstraint(
                fields=["member", "step"], name="portal_progress_once_per_step"
            )
        ]
        indexes = [
            models.Index(fields=["recorded_at"], name="portal_progress_recorded_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.member} did {self.step}"


class PathCompletion(models.Model):
    """A member finished every published step of a path: their value moment."""

    member = models.ForeignKey(
        Member, on_delete=models.CASCADE, related_name="path_completions"
    )
    path = models.ForeignKey(
        OnboardingPath, on_delete=models.CASCADE, related_name="completions"
    )
    completed_at = models.DateTimeField()

    class Meta:
        ordering = ["-completed_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["member", "path"], name="portal_path_completed_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.member} completed {self.path}"
