from django.db import models

from apps.membership.models import Member


class SegmentSource(models.Model):
    """A product sending usage through the Segment-compatible endpoint.

    Only a SHA-256 digest of the write key is stored; the key itself is
    shown once, when staff create the source.
    """

    name = models.CharField(max_length=120)
    write_key_digest = models.CharField(max_length=64, unique=True)
    write_key_prefix = models.CharField(
        max_length=8, help_text="The key's first characters, to recognise it."
    )
    event_prefix = models.CharField(
        max_length=50,
        default="product",
        help_text=(
            "Tracked events become the prefix, a dot and the event name in snake "
            "case: with product, Report Exported becomes product.report_exported."
        ),
    )
    links_identities = models.BooleanField(
        default=False,
        help_text=(
            "Let this source's identify and alias calls tie a user ID to a "
            "member: as the external ID of the member with the traits' email "
            "when it has none, otherwise as the member's ID at this source. Turn "
            "it on only for a source whose write key stays on your servers. A "
            "browser or mobile app exposes its key, and anyone who has it could "
            "tie their user ID to any member."
        ),
    )
    is_active = models.BooleanField(default=True)
    last_received_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the source last sent messages, to the minute: busy "
        "sources update it at most once a minute.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class SegmentIdentity(models.Model):
    """A source's user ID tied to a member whose external ID is another one.

    A member has one external ID, often the product's own. A second source
    that identifies the person by another ID ties it here, per source, so
    that its later messages match without staff.
    """

    source = models.ForeignKey(
        SegmentSource, on_delete=models.CASCADE, related_name="identities"
    )
    user_id = models.CharField(max_length=200)
    member = models.ForeignKey(
        Member, on_delete=models.CASCADE, related_name="segment_identities"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "segment identities"
        constraints = [
            models.UniqueConstraint(
                fields=["source", "user_id"], name="segmentidentity_source_user_unique"
            ),
        ]
        indexes = [models.Index(fields=["member"])]

    def __str__(self) -> str:
        return f"{self.user_id} at {self.source}"


class HeldUsageEvent(models.Model):
    """A usage message whose person matched no member, kept for review.

    Staff match it to a member (or drop it); matching records the event.
    A later `identify` that names the person releases their held messages.
    """

    class Status(models.TextChoices):
        HELD = "held", "Held"
        RECORDED = "recorded", "Recorded"
        DISCARDED = "discarded", "Discarded"

    source = models.ForeignKey(
        SegmentSource, on_delete=models.CASCADE, related_name="held_events"
    )
    message_id = models.CharField(max_length=200)
    user_id = models.CharField(max_length=200, blank=True, default="")
    anonymous_id = models.CharField(max_length=200, blank=True, default="")
    email = models.CharField(max_length=254, blank=True, default="")
    message = models.JSONField()
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.HELD
    )
    member = models.ForeignKey(
        Member, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    received_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "message_id"], name="heldusageevent_message_unique"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "user_id"]),
            models.Index(fields=["status", "email"]),
            # For the daily purge, and the changelist's newest-first order.
            models.Index(fields=["received_at"]),
            # For counting a source's held messages against its limit.
            models.Index(
                fields=["source"],
                condition=models.Q(status="held"),
                name="heldusageevent_held_source",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.message_id} ({self.status})"
