from django.contrib.postgres.fields import ArrayField
from django.db import models

from apps.membership.models import Account, Member


class HealthBand(models.TextChoices):
    RED = "red", "Red"
    YELLOW = "yellow", "Yellow"
    GREEN = "green", "Green"


class HealthScore(models.Model):
    """A member's current health score, 0 to 100, with its components."""

    member = models.OneToOneField(
        Member, on_delete=models.CASCADE, primary_key=True, related_name="health_score"
    )
    score = models.PositiveSmallIntegerField()
    band = models.CharField(max_length=10, choices=HealthBand.choices)
    components = models.JSONField(
        default=dict, help_text="Each measure's raw value and 0-100 score."
    )
    computed_at = models.DateTimeField()
    # Every event recorded before this time was read by the refresh that
    # computed the score; later ones make it stale. See apps.lifecycle.horizon.
    events_read_until = models.DateTimeField(null=True, blank=True, editable=False)
    # The score this one replaced, copied under the row lock of the update:
    # the refresh compares bands with it and, on a new day, stores it as the
    # earlier day's closing snapshot.
    previous_score = models.PositiveSmallIntegerField(
        null=True, blank=True, editable=False
    )
    previous_band = models.CharField(
        max_length=10, choices=HealthBand.choices, blank=True, editable=False
    )
    previous_computed_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(score__lte=100), name="healthscore_score_lte_100"
            ),
        ]
        # No index on computed_at or events_read_until, which every refresh
        # changes. An update that changes no indexed column is a heap-only
        # (HOT) update: it writes no index entry, and it stays on its page in
        # the free space the table keeps (fillfactor, set in migration 0009).
        indexes = [models.Index(fields=["band"])]

    def __str__(self) -> str:
        return f"{self.score} ({self.band})"


class HealthScoreSnapshot(models.Model):
    """A member's score as it stood at the end of one UTC day, for trends."""

    member = models.ForeignKey(
        Member, on_delete=models.CASCADE, related_name="health_snapshots"
    )
    day = models.DateField()
    score = models.PositiveSmallIntegerField()
    band = models.CharField(max_length=10, choices=HealthBand.choices)

    class Meta:
        ordering = ["-day"]
        constraints = [
            models.UniqueConstraint(
                fields=["member", "day"], name="healthscoresnapshot_member_day_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.day}: {self.score}"


class Scorecard(models.Model):
    """A weighted list of measures that scores members or accounts 0 to 100.

    At most one scorecard per level is active; workers score with it. Staff
    edit scorecards in admin by choosing measures from a fixed set, so no
    raw SQL ever comes from admin.
    """

    class Level(models.TextChoices):
        MEMBER = "member", "Member"
        ACCOUNT = "account", "Account"

    name = models.CharField(max_length=120)
    level = models.CharField(max_length=10, choices=Level.choices)
    description = models.TextField(blank=True, default="")
    is_active = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["level", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["level"],
                condition=models.Q(is_active=True),
                name="scorecard_one_active_per_level",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_level_display()})"


class ScorecardMeasure(models.Model):
    """One measure of a scorecard, with its weight and normalisation.

    The raw value maps linearly to 0-100 between `zero_at` (scores 0) and
    `full_at` (scores 100), clamped at both ends; `zero_at` may be larger
    than `full_at` for measures where less is better, such as days idle.
    """

    class Kind(models.TextChoices):
        EVENT_COUNT = "event_count", "Count of event kinds in the last N days"
        DAYS_SINCE_ACTIVITY = "days_since_activity", "Days since last activity"
        ONBOARDING_SHARE = "onboarding_share", "Share of onboarding done (%)"
        COURSE_COMPLETIONS = "course_completions", "Course completions"
        OPEN_CASES = "open_cases", "Open support cases"
        PRODUCT_USAGE = "product_usage", "Product usage events in the last N days"
        ACTIVE_MEMBER_SHARE = "active_member_share", "Share of active members (%)"

    scorecard = models.ForeignKey(
        Scorecard, on_delete=models.CASCADE, related_name="measures"
    )
    kind = models.CharField(max_length=30, choices=Kind.choices)
    label = models.CharField(max_length=120, blank=True, default="")
    event_kinds = ArrayField(
        models.CharField(max_length=100),
        blank=True,
        default=list,
        help_text="For event counts: the kinds counted; empty counts every "
        "kind that makes a member active.",
    )
    window_days = models.PositiveSmallIntegerField(default=30)
    weight = models.DecimalField(max_digits=5, decimal_places=2, default=1)
    zero_at = models.FloatField(help_text="Raw value that scores 0.")
    full_at = models.FloatField(help_text="Raw value that scores 100.")
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["scorecard", "position", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(weight__gt=0), name="scorecardmeasure_weight_gt_0"
            ),
            models.CheckConstraint(
                condition=~models.Q(zero_at=models.F("full_at")),
                name="scorecardmeasure_thresholds_differ",
            ),
            models.CheckConstraint(
                condition=models.Q(window_days__gte=1),
                name="scorecardmeasure_window_days_gte_1",
            ),
        ]

    def __str__(self) -> str:
        return self.label or self.get_kind_display()


class AccountHealthScore(models.Model):
    """An account's current health score, 0 to 100, with its components."""

    account = models.OneToOneField(
        Account, on_delete=models.CASCADE, primary_key=True, related_name="health_score"
    )
    score = models.PositiveSmallIntegerField()
    band = models.CharField(max_length=10, choices=HealthBand.choices)
    components = models.JSONField(default=dict)
    computed_at = models.DateTimeField()
    # As on HealthScore: the refresh read every event recorded before this,
    # and the previous_* fields hold the score this one replaced.
    events_read_until = models.DateTimeField(null=True, blank=True, editable=False)
    previous_score = models.PositiveSmallIntegerField(
        null=True, blank=True, editable=False
    )
    previous_band = models.CharField(
        max_length=10, choices=HealthBand.choices, blank=True, editable=False
    )
    previous_computed_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(score__lte=100),
                name="accounthealthscore_score_lte_100",
            ),
        ]
        indexes = [models.Index(fields=["band"])]

    def __str__(self) -> str:
        return f"{self.score} ({self.band})"


class AccountHealthScoreSnapshot(models.Model):
    """An account's score as it stood at the end of one UTC day."""

    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="health_snapshots"
    )
    day = models.DateField()
    score = models.PositiveSmallIntegerField()
    band = models.CharField(max_length=10, choices=HealthBand.choices)

    class Meta:
        ordering = ["-day"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "day"],
                name="accounthealthsnapshot_account_day_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.day}: {self.score}"
