from django.db import models

from apps.lifecycle.models import ActivityEvent
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
