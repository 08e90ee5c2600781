from django.contrib.postgres.fields import ArrayField
from django.core.validators import MaxValueValidator
from django.db import models

from apps.lifecycle.actions import get_action
from apps.membership.models import Account, Member


class Play(models.Model):
    """An admin-defined reaction to a trigger: ordered steps for an audience.

    Each subject (member or account) is enrolled at most once per occurrence
    of the trigger, enforced by the unique constraint on Enrolment.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        ACTIVE = "active", "Active"
        PAUSED = "paused", "Paused"

    class Trigger(models.TextChoices):
        EVENT = "event", "An event of a kind"
        FIRST_SIGN_IN = "first_sign_in", "First sign-in"
        FEATURE_FIRST_USE = "feature_first_use", "First use of a feature"
        UNANSWERED_QUESTION = "unanswered_question", "Question unanswered after N hours"
        ACCEPTED_SOLUTION = "accepted_solution", "Accepted solution"
        COURSE_COMPLETED = "course_completed", "Course completed"
        STAGNANT_ACCOUNT = "stagnant_account", "Account stagnant for N days"
        RENEWAL_WINDOW = "renewal_window", "N days before the renewal date"
        HEALTH_BAND_CHANGE = "health_band_change", "Health band change"

    class SubjectLevel(models.TextChoices):
        MEMBER = "member", "Member"
        ACCOUNT = "account", "Account"

    name = models.CharField(max_length=150)
    play_id = models.SlugField(
        "play ID",
        max_length=80,
        unique=True,
        help_text="Carried by every link and event the play causes.",
    )
    campaign_id = models.CharField(
        "campaign ID", max_length=100, blank=True, default=""
    )
    description = models.TextField(blank=True, default="")
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.DRAFT
    )
    subject_level = models.CharField(
        max_length=10, choices=SubjectLevel.choices, default=SubjectLevel.MEMBER
    )
    trigger = models.CharField(max_length=30, choices=Trigger.choices)
    trigger_event_kind = models.CharField(
        max_length=100,
        blank=True,
        default="",
        help_text="For event and first-use triggers: the event kind.",
    )
    trigger_band = models.CharField(
        max_length=10,
        blank=True,
        default="",
        help_text="For band-change triggers: the band entered; empty for any.",
    )
    trigger_hours = models.PositiveIntegerField(
        null=True, blank=True, help_text="For unanswered questions: N hours."
    )
    trigger_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="For stagnant accounts and renewal windows: N days.",
    )
    audience_segments = ArrayField(
        models.CharField(max_length=20), blank=True, default=list
    )
    audience_cs_tiers = ArrayField(
        models.CharField(max_length=20), blank=True, default=list
    )
    audience_roles = ArrayField(
        models.CharField(max_length=20), blank=True, default=list
    )
    audience_lifecycle_stages = ArrayField(
        models.CharField(max_length=20), blank=True, default=list
    )
    audience_bands = ArrayField(
        models.CharField(max_length=10), blank=True, default=list
    )
    holdout_percent = models.PositiveSmallIntegerField(
        default=0,
        validators=[MaxValueValidator(90)],
        help_text="Share of the audience kept as an untouched control group.",
    )
    activated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(holdout_percent__lte=90),
                name="play_holdout_percent_lte_90",
            ),
        ]
        indexes = [models.Index(fields=["status", "trigger"])]

    def __str__(self) -> str:
        return self.name


class PlayStep(models.Model):
    """One ordered step of a play: a wait or an action.

    Built-in actions are wait, email, in-app notification, CSM task and
    webhook; other apps register more (points, badge, advocacy ask). A step
    with a consent purpose is skipped for members without that consent.
    """

    play = models.ForeignKey(Play, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField()
    action = models.CharField(max_length=50)
    config = models.JSONField(
        default=dict,
        blank=True,
        help_text=(
            "Action settings, for example subject and body for an email. The "
            "texts of emails, notifications, CSM tasks and advocacy asks are "
            "Django templates that can use {{ member_name }} and "
            "{{ account_name }}, and in emails also {{ url }}, {{ links.NAME }} "
            "and {{ unsubscribe_url }}. A webhook's data is sent as written."
        ),
    )
    wait_hours = models.PositiveIntegerField(
        null=True, blank=True, help_text="For wait steps: how long to wait."
    )
    consent_purpose = models.CharField(
        max_length=50,
        blank=True,
        default="",
        help_text="Key of the consent purpose this step needs, if any.",
    )

    class Meta:
        ordering = ["play", "position"]
        constraints = [
            # Checked at commit, so that admin can swap two steps' positions:
            # it saves the steps one by one, and the first save alone would
            # repeat a position.
            models.UniqueConstraint(
                fields=["play", "position"],
                name="playstep_play_position_unique",
                deferrable=models.Deferrable.DEFERRED,
            ),
        ]

    def __str__(self) -> str:
        action = get_action(self.action)
        return f"{self.position}. {action.label if action else self.action}"


class Enrolment(models.Model):
    """A subject's run through a play for one occurrence of its trigger."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        WAITING = "waiting", "Waiting"
        COMPLETED = "completed", "Completed"
        HELD_OUT = "held_out", "Held out (control group)"
        FAILED = "failed", "Failed"
        EXITED = "exited", "Exited"

    play = models.ForeignKey(Play, on_delete=models.CASCADE, related_name="enrolments")
    member = models.ForeignKey(
        Member,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="enrolments",
    )
    account = models.ForeignKey(
        Account,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="enrolments",
    )
    subject_key = models.CharField(
        max_length=40,
        help_text="member: or account: and the id, for example member:42.",
    )
    occurrence_key = models.CharField(
        max_length=200,
        help_text="Identifies one occurrence of the trigger, for example the "
        "event id or the renewal date.",
    )
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.ACTIVE
    )
    is_holdout = models.BooleanField(default=False)
    next_position = models.PositiveSmallIntegerField(default=1)
    next_run_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the next step is due; waits are kept here, not in the broker.",
    )
    enrolled_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-enrolled_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["play", "subject_key", "occurrence_key"],
                name="enrolment_once_per_occurrence",
            ),
            models.CheckConstraint(
                condition=models.Q(member__isnull=False)
                | models.Q(account__isnull=False),
                name="enrolment_has_subject",
            ),
        ]
        indexes = [
            models.Index(
                fields=["next_run_at"],
                condition=models.Q(status__in=["active", "waiting"]),
                name="enrolment_due_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.play} for {self.subject_key}"


class StepRun(models.Model):
    """The outcome of one step for one enrolment; at most one per pair."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        SKIPPED = "skipped", "Skipped"
        FAILED = "failed", "Failed"

    enrolment = models.ForeignKey(
        Enrolment, on_delete=models.CASCADE, related_name="step_runs"
    )
    # A step that has run keeps its runs, the play's history, so it cannot be
    # deleted on its own. Deleting the whole play deletes both.
    step = models.ForeignKey(PlayStep, on_delete=models.RESTRICT, related_name="runs")
    status = models.CharField(max_length=10, choices=Status.choices)
    outcome = models.CharField(max_length=300, blank=True, default="")
    error = models.TextField(blank=True, default="")
    attempts = models.PositiveSmallIntegerField(default=0)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["enrolment", "step__position"]
        constraints = [
            models.UniqueConstraint(
                fields=["enrolment", "step"], name="steprun_once_per_step"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.step} for enrolment {self.enrolment_id}: {self.status}"


class Touch(models.Model):
    """One outbound touch of a member, counted against the fatigue caps.

    Written under a row lock on the member together with the cap check, so
    two workers can never both pass a cap.
    """

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="touches")
    channel = models.CharField(max_length=30)
    play = models.ForeignKey(
        Play, on_delete=models.SET_NULL, null=True, blank=True, related_name="touches"
    )
    step_run = models.OneToOneField(
        StepRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="touch"
    )
    touched_at = models.DateTimeField()

    class Meta:
        ordering = ["-touched_at"]
        verbose_name_plural = "touches"
        indexes = [models.Index(fields=["member", "channel", "-touched_at"])]

    def __str__(self) -> str:
        return f"{self.channel} to member {self.member_id}"


class FatigueCap(models.Model):
    """At most `max_touches` touches per member on a channel in `period_days`."""

    channel = models.CharField(max_length=30, unique=True)
    max_touches = models.PositiveSmallIntegerField()
    period_days = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["channel"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(period_days__gte=1), name="fatiguecap_period_gte_1"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel}: {self.max_touches} per {self.period}"

    @property
    def period(self) -> str:
        """Return the period in words: "day" for one day, else "N days"."""
        return "day" if self.period_days == 1 else f"{self.period_days} days"
