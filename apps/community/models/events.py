from django.conf import settings
from django.db import models

from apps.community.models.spaces import Space
from apps.membership.models import Member, validate_time_zone


class CommunityEvent(models.Model):
    """An office hour or webinar members can RSVP to."""

    class Kind(models.TextChoices):
        OFFICE_HOURS = "office_hours", "Office hours"
        WEBINAR = "webinar", "Webinar"

    space = models.ForeignKey(
        Space, on_delete=models.CASCADE, null=True, blank=True, related_name="events"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    time_zone = models.CharField(
        max_length=64,
        default="UTC",
        validators=[validate_time_zone],
        help_text="The host's zone; members see times in their own.",
    )
    capacity = models.PositiveIntegerField(
        null=True, blank=True, help_text="Empty: no limit."
    )
    join_url = models.URLField(blank=True, default="")
    location = models.CharField(max_length=200, blank=True, default="")
    going_count = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    cancelled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["starts_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_at__gt=models.F("starts_at")),
                name="communityevent_ends_after_start",
            ),
            models.CheckConstraint(
                condition=models.Q(capacity__isnull=True)
                | models.Q(going_count__lte=models.F("capacity")),
                name="communityevent_going_within_capacity",
            ),
        ]
        indexes = [models.Index(fields=["starts_at"])]

    def __str__(self) -> str:
        return self.title


class Rsvp(models.Model):
    """A member's answer to an event: going, on the waitlist, or cancelled."""

    class Status(models.TextChoices):
        GOING = "going", "Going"
        WAITLISTED = "waitlisted", "Waitlisted"
        CANCELLED = "cancelled", "Cancelled"

    event = models.ForeignKey(
        CommunityEvent, on_delete=models.CASCADE, related_name="rsvps"
    )
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="rsvps")
    status = models.CharField(max_length=12, choices=Status.choices)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    attended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["event", "created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["event", "member"], name="rsvp_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.member_id} {self.status} for {self.event_id}"
