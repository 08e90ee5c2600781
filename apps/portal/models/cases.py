"""Support cases with SLA targets, messages, attachments and CSAT."""

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVectorField
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from apps.membership.models import Account, Member


class BusinessCalendar(models.Model):
    """Working hours in a time zone; SLA clocks run only inside them."""

    name = models.CharField(max_length=100, unique=True)
    time_zone = models.CharField(max_length=64, default="UTC")
    weekdays = ArrayField(
        models.PositiveSmallIntegerField(
            validators=[MinValueValidator(0), MaxValueValidator(6)]
        ),
        default=list,
        help_text="Working days, 0 for Monday to 6 for Sunday.",
    )
    opens_at = models.TimeField(help_text="Local time the working day starts.")
    closes_at = models.TimeField(help_text="Local time the working day ends.")

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                name="portal_calendar_opens_before_close",
                condition=models.Q(opens_at__lt=models.F("closes_at")),
            )
        ]

    def __str__(self) -> str:
        return self.name


class BusinessHoliday(models.Model):
    calendar = models.ForeignKey(
        BusinessCalendar, on_delete=models.CASCADE, related_name="holidays"
    )
    date = models.DateField()
    name = models.CharField(max_length=100, blank=True, default="")

    class Meta:
        ordering = ["calendar", "date"]
        constraints = [
            models.UniqueConstraint(
                fields=["calendar", "date"], name="portal_holiday_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.calendar}: {self.date}"


class Priority(models.TextChoices):
    LOW = "low", "Low"
    NORMAL = "normal", "Normal"
    HIGH = "high", "High"
    URGENT = "urgent", "Urgent"


class SlaPolicy(models.Model):
    """First-response and resolution targets for one priority.

    Without a calendar the targets run on the clock, around the clock.
    """

    priority = models.CharField(max_length=10, choices=Priority.choices, unique=True)
    first_response_minutes = models.PositiveIntegerField()
    resolution_minutes = models.PositiveIntegerField()
    calendar = models.ForeignKey(
        BusinessCalendar,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="policies",
        help_text="Count only working hours; empty for around the clock.",
    )

    class Meta:
        verbose_name = "SLA policy"
        verbose_name_plural = "SLA policies"
        ordering = ["priority"]

    def __str__(self) -> str:
        return f"SLA for {self.get_priority_display()}"


class CaseTopic(models.Model):
    """The product area a case is about; deflection and gaps are reported by it."""

    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=80, unique=True)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Case(models.Model):
    """A member's support case.

    The member who filed it sees it, and so do their account's admins and
    staff; `apps.portal.selectors.cases.visible_cases` is the one place that
    rule lives. `account` is the filer's account when it was filed.
    """

    class Status(models.TextChoices):
        NEW = "new", "New"
        OPEN = "open", "Open"
        WAITING = "waiting", "Waiting on member"
        SOLVED = "solved", "Solved"
        CLOSED = "closed", "Closed"

    Priority = Priority

    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="cases")
    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, null=True, blank=True, related_name="cases"
    )
    topic = models.ForeignKey(
        CaseTopic,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="cases",
    )
    subject = models.CharField(max_length=200)
    body = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.NEW)
    priority = models.CharField(
        max_length=10, choices=Priority.choices, default=Priority.NORMAL
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="assigned_cases",
        limit_choices_to={"is_staff": True},
    )
    source_topic = models.ForeignKey(
        "community.Topic",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The community question this case was escalated from.",
    )
    attempt = models.OneToOneField(
        "portal.CaseAttempt",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="case",
        help_text="The case-form visit that filed it, for deflection.",
    )
    first_response_due_at = models.DateTimeField(null=True, blank=True)
    resolution_due_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Empty while the case waits on the member: the clock is paused.",
    )
    resolution_minutes_left = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Resolution minutes left when the clock was paused, counted in "
        "the policy's working hours.",
    )
    first_responded_at = models.DateTimeField(null=True, blank=True)
    first_response_breached_at = models.DateTimeField(null=True, blank=True)
    resolution_breached_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    solved_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    csat_score = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(5)],
    )
    csat_comment = models.CharField(max_length=1000, blank=True, default="")
    csat_rated_at = models.DateTimeField(null=True, blank=True)
    search_vector = SearchVectorField(null=True, editable=False)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(
                fields=["member", "-created_at"], name="portal_case_member_idx"
            ),
            models.Index(
                fields=["account", "-created_at"], name="portal_case_account_idx"
            ),
            models.Index(
                fields=["status", "resolution_due_at"], name="portal_case_due_idx"
            ),
            GinIndex(fields=["search_vector"], name="portal_case_search_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                name="portal_case_csat_range",
                condition=models.Q(csat_score__isnull=True)
                | models.Q(csat_score__gte=1, csat_score__lte=5),
            ),
            # A community question escalates to one case at most.
            models.UniqueConstraint(
                fields=["source_topic"],
                condition=models.Q(source_topic__isnull=False),
                name="portal_case_one_per_topic",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.subject}"


class CaseMessage(models.Model):
    """A public reply (the member sees it) or an internal note (staff only)."""

    class Visibility(models.TextChoices):
        PUBLIC = "public", "Public reply"
        INTERNAL = "internal", "Internal note"

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="messages")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    visibility = models.CharField(
        max_length=10, choices=Visibility.choices, default=Visibility.PUBLIC
    )
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["case", "created_at", "id"]

    def __str__(self) -> str:
        return f"{self.get_visibility_display()} on {self.case}"


class CaseAttachment(models.Model):
    """A file added to a case, within the type and size limits in settings."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="attachments")
    message = models.ForeignKey(
        CaseMessage,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="attachments",
    )
    file = models.FileField(upload_to="cases/%Y/%m/")
    original_name = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100)
    size = models.PositiveBigIntegerField()
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["case", "created_at", "id"]

    def __str__(self) -> str:
        return self.original_name


class CaseStatusChange(models.Model):
    """The case's history: every status change, who made it and when."""

    case = models.ForeignKey(
        Case, on_delete=models.CASCADE, related_name="status_changes"
    )
    from_status = models.CharField(
        max_length=10, choices=Case.Status.choices, blank=True
    )
    to_status = models.CharField(max_length=10, choices=Case.Status.choices)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    changed_at = models.DateTimeField()

    class Meta:
        ordering = ["case", "changed_at", "id"]

    def __str__(self) -> str:
        return f"{self.case}: {self.from_status or '-'} to {self.to_status}"


class EscalationOffer(models.Model):
    """The one notification that offered a question's author a support case.

    The unique topic makes the offer once-only even when two beat runs meet.
    """

    topic = models.OneToOneField(
        "community.Topic", on_delete=models.CASCADE, related_name="+"
    )
    member = models.ForeignKey(
        Member, on_delete=models.CASCADE, related_name="escalation_offers"
    )
    offered_at = models.DateTimeField()

    class Meta:
        ordering = ["-offered_at"]

    def __str__(self) -> str:
        return f"Support offered for topic {self.topic_id}"
