from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.contrib.postgres.fields import ArrayField
from django.db import models

from apps.lifecycle.models.plays import Play, StepRun
from apps.membership.models import Account, Member


class Notification(models.Model):
    """An in-app notification shown in a member's notification centre."""

    member = models.ForeignKey(
        Member, on_delete=models.CASCADE, related_name="notifications"
    )
    kind = models.CharField(
        max_length=50,
        blank=True,
        default="",
        help_text="What caused it, for example play or community.mention.",
    )
    subject_type = models.ForeignKey(
        ContentType, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    subject_id = models.CharField(
        max_length=64,
        blank=True,
        default="",
        help_text="The content it is about; lists re-check that the member may "
        "still see it.",
    )
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True, default="")
    url = models.CharField(max_length=500, blank=True, default="")
    play = models.ForeignKey(
        Play, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    step_run = models.OneToOneField(
        StepRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["member", "read_at", "-created_at"])]

    def __str__(self) -> str:
        return self.title


class CsmTask(models.Model):
    """A task for a customer success manager, usually created by a play."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        DONE = "done", "Done"
        DISMISSED = "dismissed", "Dismissed"

    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="csm_tasks"
    )
    member = models.ForeignKey(
        Member, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="csm_tasks",
    )
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    due_on = models.DateField(null=True, blank=True)
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.OPEN
    )
    play = models.ForeignKey(
        Play, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    step_run = models.OneToOneField(
        StepRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["status", "due_on", "-created_at"]
        verbose_name = "CSM task"
        indexes = [models.Index(fields=["owner", "status", "due_on"])]

    def __str__(self) -> str:
        return self.title


class WebhookEndpoint(models.Model):
    """An outside URL that receives signed event deliveries."""

    name = models.CharField(max_length=120)
    url = models.URLField("URL", max_length=500)
    secret = models.CharField(
        max_length=200, help_text="Shared secret for the HMAC-SHA256 signature."
    )
    event_kinds = ArrayField(
        models.CharField(max_length=100),
        blank=True,
        default=list,
        help_text="Event kinds sent to this endpoint as they are recorded, such "
        "as community.reply_posted, or prefixes such as community.*. Leave empty "
        "to receive only the webhooks of play steps.",
    )
    is_active = models.BooleanField(default=True)
    # From PostgreSQL's clock, as events' recorded_at, because the event
    # sweep sends only the events recorded after the endpoint was created.
    created_at = models.DateTimeField(
        db_default=models.Func(
            function="clock_timestamp", output_field=models.DateTimeField()
        ),
        editable=False,
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class WebhookDelivery(models.Model):
    """One payload to one endpoint, retried with back-off until delivered."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed (gave up)"

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    delivery_key = models.CharField(
        max_length=200,
        unique=True,
        help_text="Stable id sent as a header so receivers can drop repeats.",
    )
    step_run = models.ForeignKey(
        StepRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    event_kind = models.CharField(max_length=100)
    payload = models.JSONField()
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "webhook deliveries"
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(status="pending"),
                name="webhookdelivery_due_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_kind} to {self.endpoint}"
