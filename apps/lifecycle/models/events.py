from datetime import UTC, datetime, timedelta

from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.contrib.postgres.indexes import BrinIndex
from django.db import models

from apps.membership.models import Account, Member

# Events may arrive a little ahead of the server clock; further ahead is a
# bug. Ingestion rejects later times, and scoring counts events up to this far
# ahead of its own clock, so that none it marks as read goes uncounted.
MAX_CLOCK_SKEW = timedelta(minutes=5)
# No product this hub serves recorded activity before this; earlier times are
# a client's zero value or a unit mistake (seconds read as milliseconds).
EARLIEST_OCCURRED_AT = datetime(2000, 1, 1, tzinfo=UTC)


class ActivityEvent(models.Model):
    """One meaningful action by a member: a post, a sign-in, a product use.

    Rows are written by `record_activity` and `ingest_events` only. A retried
    ingestion with the same idempotency key never adds a second row.
    """

    # The member and account foreign keys get no index of their own, because
    # the covering indexes below start with their columns.
    member = models.ForeignKey(
        Member, on_delete=models.CASCADE, related_name="events", db_index=False
    )
    account = models.ForeignKey(
        Account,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    kind = models.CharField(max_length=100)
    # Most events have no subject: the partial index below covers the others
    # and spares every event without one an index entry.
    subject_type = models.ForeignKey(
        ContentType,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    subject_id = models.CharField(max_length=64, blank=True, default="")
    subject = GenericForeignKey("subject_type", "subject_id")
    occurred_at = models.DateTimeField()
    # Set by PostgreSQL's clock when the row is inserted, so it is never
    # earlier than the start of the inserting transaction: the commit horizon
    # (apps.lifecycle.horizon) relies on it to find late commits.
    recorded_at = models.DateTimeField(
        db_default=models.Func(
            function="clock_timestamp", output_field=models.DateTimeField()
        ),
        editable=False,
    )
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
            # Partial, like the subject index: events without a key, most of
            # them, cost no entry in it. ON CONFLICT DO NOTHING still uses it.
            models.UniqueConstraint(
                fields=["idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="activityevent_idempotency_key_uniq",
            ),
        ]
        # Scoring reads member or account, occurred_at and kind only, so the
        # covering indexes let it use index-only scans. The incremental
        # rescore finds the newest events through the BRIN index on
        # recorded_at. See the Scoring section of docs/benchmarks.md.
        indexes = [
            models.Index(
                fields=["member", "occurred_at"],
                include=["kind"],
                name="activityevent_member_cover",
            ),
            models.Index(fields=["kind", "occurred_at"]),
            models.Index(
                fields=["account", "occurred_at"],
                include=["kind"],
                name="activityevent_account_cover",
            ),
            BrinIndex(fields=["occurred_at"], name="activityevent_occurred_brin"),
            # Readers of new events scan every page of the ranges that BRIN
            # has not summarized yet. autosummarize has autovacuum summarize
            # each range soon after it fills, where otherwise ranges wait for
            # the next VACUUM of this large table, and the reads grow with
            # every event recorded since. Smaller ranges make the partly
            # filled last range, which every read scans, shorter.
            BrinIndex(
                fields=["recorded_at"],
                name="activityevent_recorded_brin",
                autosummarize=True,
                pages_per_range=32,
            ),
            models.Index(
                fields=["subject_type"],
                condition=models.Q(subject_type__isnull=False),
                name="activityevent_subject_type",
            ),
        ]

    def __str__(self) -> str:
        when = f"{self.occurred_at:%Y-%m-%d %H:%M}"
        return f"{self.kind} by member {self.member_id} at {when}"
