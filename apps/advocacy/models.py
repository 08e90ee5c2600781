from django.conf import settings
from django.db import models

from apps.lifecycle.models import ActivityEvent, Play, StepRun
from apps.membership.models import Member


class PointsEntry(models.Model):
    """One line of the append-only points ledger.

    A member's balance is the sum of their entries. Corrections are new
    entries with negative points; a database trigger rejects UPDATE and
    DELETE on this table.
    """

    member = models.ForeignKey(
        Member, on_delete=models.CASCADE, related_name="points_entries"
    )
    points = models.IntegerField()
    reason = models.CharField(max_length=100, help_text="For example reply_posted.")
    event = models.ForeignKey(
        ActivityEvent,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="The activity that earned the points, if any.",
    )
    note = models.CharField(max_length=300, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "points entries"
        constraints = [
            models.UniqueConstraint(
                fields=["event", "reason"],
                condition=models.Q(event__isnull=False),
                name="pointsentry_one_award_per_event_reason",
            ),
        ]
        indexes = [models.Index(fields=["member", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.points:+d} {self.reason}"


class Badge(models.Model):
    """A recognition staff define, which members earn once each."""

    name = models.CharField(max_length=100)
    slug = models.SlugField(
        max_length=80,
        unique=True,
        help_text='Names the badge in play step configs: {"badge": "first-answer"}.',
    )
    description = models.TextField(
        blank=True, default="", help_text="What a member did to earn it."
    )
    is_active = models.BooleanField(
        default=True, help_text="Inactive badges can no longer be awarded."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class MemberBadge(models.Model):
    """A badge a member earned. Each member earns each badge at most once."""

    member = models.ForeignKey(
        Member, on_delete=models.CASCADE, related_name="member_badges"
    )
    badge = models.ForeignKey(Badge, on_delete=models.PROTECT, related_name="awards")
    awarded_at = models.DateTimeField()
    reason = models.CharField(
        max_length=200,
        help_text=(
            "play: and the play ID when a play awarded it, for example "
            "play:renewal-advocates; otherwise the staff note."
        ),
    )
    step_run = models.OneToOneField(
        StepRun,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="member_badge",
        help_text="The play step run that awarded the badge, if any.",
    )

    class Meta:
        ordering = ["-awarded_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["member", "badge"], name="memberbadge_once_per_member"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.badge} for member {self.member_id}"


class AdvocacyAsk(models.Model):
    """A request to a member to advocate: a review, a reference call, a story."""

    class Kind(models.TextChoices):
        REVIEW = "review", "Review"
        REFERENCE_CALL = "reference_call", "Reference call"
        STORY = "story", "Customer story"
        REFERRAL = "referral", "Referral"
        SPEAKING = "speaking", "Speaking"
        CASE_STUDY = "case_study", "Case study"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ACCEPTED = "accepted", "Accepted"
        DECLINED = "declined", "Declined"
        COMPLETED = "completed", "Completed"
        EXPIRED = "expired", "Expired"

    member = models.ForeignKey(
        Member, on_delete=models.CASCADE, related_name="advocacy_asks"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    message = models.TextField(help_text="Shown to the member with the ask.")
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.OPEN
    )
    play = models.ForeignKey(
        Play,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="advocacy_asks",
    )
    step_run = models.OneToOneField(
        StepRun,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="advocacy_ask",
        help_text="The play step run that sent the ask, if any.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    responded_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    completed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The staff user who marked the ask completed.",
    )
    # The hourly task advocacy.expire_overdue_asks expires an open ask the
    # day after its due date.
    due_on = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status="completed", completed_at__isnull=False)
                | (~models.Q(status="completed") & models.Q(completed_at__isnull=True)),
                name="advocacyask_completed_at_iff_completed",
            ),
        ]
        indexes = [models.Index(fields=["member", "status"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ask to member {self.member_id}"
