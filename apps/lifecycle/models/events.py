from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.contrib.postgres.indexes import BrinIndex
from django.db import models

from apps.membership.models import Account, Member


class ActivityEvent(models.Model):
    """One meaningful action by a member: a post, a sign-in, a product use.

    Rows are written by `record_activity` and `ingest_events` only. A retried
    ingestion with the same idempotency key never adds a second row.
    """

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="events")
    account = models.ForeignKey(
        Account, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    kind = models.CharField(max_length=100)
    subject_type = models.ForeignKey(
        ContentType, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    subject_id = models.CharField(max_length=64, blank=True, default="")
    subject = GenericForeignKey("subject_type", "subject_id")
    occurred_at = models.DateTimeField()
    recorded_at = models.DateTimeField(auto_now_add=True)
    campaign_id = models.CharField(max_length=100, blank=True, default="")
    play_id = models.CharField(max_length=100, blank=True, default="")
    utm_source = models.CharField(max_length=100, blank=True, default="")
    utm_medium = models.CharField(max_length=100, blank=True, default="")
    utm_campaign = models.CharField(max_length=100, blank=True, default="")
    utm_term = models.CharField(max_length=100, blank=True, default="")
    utm_content = models.CharField(max_length=100, blank=True, default="")
    properties = models.JSONField(default=dict, blank=True)
    # NULL, not "", for events without a key: the unique constraint ignores NULLs.
    idempotency_key = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001

    class Meta:
        ordering = ["-occurred_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["idempotency_key"], name="activityevent_idempotency_key_unique"
            ),
        ]
        indexes = [
            models.Index(fields=["member", "occurred_at"]),
            models.Index(fields=["kind", "occurred_at"]),
            models.Index(fields=["account", "occurred_at"]),
            BrinIndex(fields=["occurred_at"], name="activityevent_occurred_brin"),
        ]

    def __str__(self) -> str:
        when = f"{self.occurred_at:%Y-%m-%d %H:%M}"
        return f"{self.kind} by member {self.member_id} at {when}"
