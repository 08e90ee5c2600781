import functools
import zoneinfo

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.db import models

# "localtime" names the host's zone, which Python and PostgreSQL may read
# differently, and "Factory" is a placeholder zone: neither is a place.
NON_PLACE_TIME_ZONES = frozenset({"localtime", "Factory"})


@functools.cache
def list_time_zone_names() -> frozenset[str]:
    """Return the IANA time zone names a member, account or event may use."""
    # available_timezones() reads the time zone database from disk each call.
    return frozenset(zoneinfo.available_timezones()) - NON_PLACE_TIME_ZONES


def validate_time_zone(value: str) -> None:
    if value not in list_time_zone_names():
        raise ValidationError(
            "%(value)s is not a known IANA time zone; use a name such as "
            "Europe/Paris or America/New_York.",
            params={"value": value},
        )


class Account(models.Model):
    """A customer company whose people are members."""

    class Segment(models.TextChoices):
        SMB = "smb", "SMB"
        MID_MARKET = "mid_market", "Mid-market"
        ENTERPRISE = "enterprise", "Enterprise"

    class CsTier(models.TextChoices):
        TECH_TOUCH = "tech_touch", "Tech touch"
        POOLED = "pooled", "Pooled"
        HIGH_TOUCH = "high_touch", "High touch"

    name = models.CharField(max_length=200)
    external_id = models.CharField(
        "CRM ID",
        max_length=100,
        blank=True,
        default="",
        help_text="The account's ID in the CRM; integrations upsert by it.",
    )
    email_domains = ArrayField(
        models.CharField(max_length=253),
        blank=True,
        default=list,
        help_text="Lower-case email domains whose people join this account.",
    )
    segment = models.CharField(max_length=20, choices=Segment.choices)
    cs_tier = models.CharField("CS tier", max_length=20, choices=CsTier.choices)
    arr = models.DecimalField(
        "ARR", max_digits=14, decimal_places=2, default=0, help_text="In USD."
    )
    contract_start = models.DateField(null=True, blank=True)
    renewal_date = models.DateField(null=True, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="owned_accounts",
        limit_choices_to={"is_staff": True},
        help_text="The customer success manager for this account.",
    )
    time_zone = models.CharField(
        max_length=64, default="UTC", validators=[validate_time_zone]
    )
    parent = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="subsidiaries",
        help_text="The parent company; a subsidiary's figures roll up to it.",
    )
    is_sso_required = models.BooleanField(
        "SSO required",
        default=False,
        help_text="Members of this account sign in only through its SSO "
        "providers; password sign-in is refused.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(parent=models.F("pk")),
                name="account_parent_not_self",
            ),
            models.UniqueConstraint(
                fields=["external_id"],
                condition=~models.Q(external_id=""),
                name="account_external_id_unique",
            ),
            models.CheckConstraint(
                condition=models.Q(arr__gte=0), name="account_arr_gte_0"
            ),
        ]
        indexes = [models.Index(fields=["renewal_date"])]

    def __str__(self) -> str:
        return self.name


class Member(models.Model):
    """A person from a customer account who uses the hub."""

    class Role(models.TextChoices):
        MEMBER = "member", "Member"
        CONTRIBUTOR = "contributor", "Contributor"
        CHAMPION = "champion", "Champion"
        ADMIN = "admin", "Account admin"

    class EmailNotifications(models.TextChoices):
        INSTANT = "instant", "As they happen"
        DAILY = "daily", "Daily digest"
        OFF = "off", "Off"

    class LifecycleStage(models.TextChoices):
        ONBOARDING = "onboarding", "Onboarding"
        ADOPTING = "adopting", "Adopting"
        ESTABLISHED = "established", "Established"
        AT_RISK = "at_risk", "At risk"
        CHURNED = "churned", "Churned"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="member"
    )
    account = models.ForeignKey(
        Account,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="members",
        help_text="Empty while the member waits in the account review queue.",
    )
    display_name = models.CharField(max_length=150, blank=True, default="")
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.MEMBER)
    lifecycle_stage = models.CharField(
        max_length=20, choices=LifecycleStage.choices, default=LifecycleStage.ONBOARDING
    )
    time_zone = models.CharField(
        max_length=64, default="UTC", validators=[validate_time_zone]
    )
    external_id = models.CharField(
        max_length=100,
        blank=True,
        default="",
        help_text="The person's ID in the product or CRM; usage events match by it.",
    )
    locale = models.CharField(max_length=10, default="en")
    email_notifications = models.CharField(
        max_length=10,
        choices=EmailNotifications.choices,
        default=EmailNotifications.DAILY,
    )
    in_app_notifications = models.BooleanField(default=True)
    headline = models.CharField(
        max_length=150, blank=True, default="", help_text="For example a job title."
    )
    bio = models.TextField(blank=True, default="", max_length=2000)
    show_headline = models.BooleanField(default=True)
    show_bio = models.BooleanField(default=True)
    show_account = models.BooleanField(
        default=False, help_text="Show the company name on the public profile."
    )
    show_activity = models.BooleanField(
        default=True, help_text="Show recent posts on the public profile."
    )
    first_signed_in_at = models.DateTimeField(null=True, blank=True)
    last_signed_in_at = models.DateTimeField(null=True, blank=True)
    deactivated_at = models.DateTimeField(null=True, blank=True)
    deactivation_reason = models.CharField(max_length=300, blank=True, default="")
    anonymised_at = models.DateTimeField(
        null=True, blank=True, help_text="Set when the member deleted their account."
    )
    merged_into = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="merged_members",
        help_text="The member this duplicate was merged into; it is kept, "
        "deactivated, so that the append-only points ledger stays intact.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["user__email"]
        constraints = [
            models.UniqueConstraint(
                fields=["external_id"],
                condition=~models.Q(external_id=""),
                name="member_external_id_unique",
            ),
        ]
        indexes = [models.Index(fields=["account", "role"])]

    def __str__(self) -> str:
        return self.name

    @property
    def name(self) -> str:
        return self.display_name or self.user.email.split("@")[0]

    @property
    def email(self) -> str:
        return self.user.email

    @property
    def is_deactivated(self) -> bool:
        return self.deactivated_at is not None


class AccountAffiliation(models.Model):
    """A member's tie to an account other than their primary one.

    Partners and consultants serve several customers; each extra account
    they work with gets one affiliation.
    """

    class Relationship(models.TextChoices):
        PARTNER = "partner", "Partner"
        CONSULTANT = "consultant", "Consultant"
        SUBSIDIARY = "subsidiary", "Subsidiary staff"
        OTHER = "other", "Other"

    member = models.ForeignKey(
        Member, on_delete=models.CASCADE, related_name="affiliations"
    )
    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="affiliations"
    )
    relationship = models.CharField(max_length=20, choices=Relationship.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["member", "account"], name="accountaffiliation_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.member} ({self.relationship}) at {self.account}"


class AccountArr(models.Model):
    """One dated ARR value of an account; the history NRR is computed from."""

    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="arr_history"
    )
    effective_on = models.DateField()
    arr = models.DecimalField("ARR", max_digits=14, decimal_places=2)
    source = models.CharField(max_length=30, default="manual")
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["account", "-effective_on"]
        verbose_name = "ARR value"
        constraints = [
            models.UniqueConstraint(
                fields=["account", "effective_on"], name="accountarr_account_day_unique"
            ),
            models.CheckConstraint(
                condition=models.Q(arr__gte=0), name="accountarr_arr_gte_0"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account}: {self.arr} from {self.effective_on}"


class AccountIdentityProvider(models.Model):
    """An SSO provider (an allauth social app) that signs in one account's people."""

    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="identity_providers"
    )
    social_app = models.OneToOneField(
        "socialaccount.SocialApp",
        on_delete=models.CASCADE,
        related_name="account_link",
        help_text="An OpenID Connect or SAML app configured under Social applications.",
    )

    class Meta:
        verbose_name = "account SSO provider"

    def __str__(self) -> str:
        return f"{self.social_app} for {self.account}"


class ConsentPurpose(models.Model):
    """Something the company may do with a member only with their consent."""

    key = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=120)
    description = models.TextField(
        help_text="Shown to the member on the privacy page, in plain words."
    )
    is_active = models.BooleanField(default=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "key"]

    def __str__(self) -> str:
        return self.name


class ConsentGrant(models.Model):
    """One consent given by a member for one purpose, with its evidence.

    Grants are never edited: revoking sets `revoked_at`, and a new grant for
    the same purpose revokes the previous one. `expires_at` is the instant
    the consent lapses, computed from the expiry date in the member's time
    zone when the grant was made.
    """

    class Source(models.TextChoices):
        PRIVACY_PAGE = "privacy_page", "Privacy page"
        SIGN_UP = "sign_up", "Sign-up form"
        EMAIL_LINK = "email_link", "Email link"
        API = "api", "API"
        IMPORT = "import", "Import"
        ADMIN = "admin", "Staff in admin"

    member = models.ForeignKey(
        Member, on_delete=models.CASCADE, related_name="consents"
    )
    purpose = models.ForeignKey(
        ConsentPurpose, on_delete=models.PROTECT, related_name="grants"
    )
    source = models.CharField(max_length=20, choices=Source.choices)
    evidence = models.TextField(
        help_text="What the member saw and did, for example the form text."
    )
    granted_at = models.DateTimeField()
    expires_on = models.DateField(
        null=True, blank=True, help_text="Last day of validity, in the member's zone."
    )
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_source = models.CharField(
        max_length=20, choices=Source.choices, blank=True, default=""
    )
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        ordering = ["-granted_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["member", "purpose"],
                condition=models.Q(revoked_at__isnull=True),
                name="consentgrant_one_unrevoked_per_purpose",
            ),
        ]
        indexes = [models.Index(fields=["purpose", "revoked_at", "expires_at"])]

    def __str__(self) -> str:
        return f"{self.purpose} for {self.member}"


class AuditEntry(models.Model):
    """A record of a change staff need to see later: merges, imports, roles."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    action = models.CharField(max_length=50)
    member = models.ForeignKey(
        Member, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    account = models.ForeignKey(
        Account, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "audit entries"
        indexes = [models.Index(fields=["action", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.action} at {self.created_at:%Y-%m-%d %H:%M}"


class DataSourceRun(models.Model):
    """The last successful and the last failed run of one data source origin.

    Usage ingestion has one row per origin: the event batch API, and each
    Segment source by its primary key. The other sources have one row each,
    with an empty origin. Only the services in
    `apps.membership.services.data_sources` write these rows. Reporting reads
    them for the data freshness KPI.
    """

    class Source(models.TextChoices):
        CRM_SYNC = "crm_sync", "CRM sync"
        USAGE_INGESTION = "usage_ingestion", "Usage ingestion"
        SCORE_COMPUTATION = "score_computation", "Score computation"

    # The origins of usage ingestion. A Segment source's origin is the prefix
    # and its primary key, such as "segment_source:12".
    EVENT_BATCH_API_ORIGIN = "event_batch_api"
    SEGMENT_SOURCE_ORIGIN_PREFIX = "segment_source:"

    source = models.CharField(max_length=30, choices=Source.choices)
    origin = models.CharField(
        max_length=50,
        blank=True,
        default="",
        help_text="Where usage ingestion ran: event_batch_api, or "
        "segment_source: and the Segment source's ID. Empty for the other "
        "sources.",
    )
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    # What failed, in words without personal data: an error code, a field
    # name or an exception class, never the rejected values.
    last_error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["source", "origin"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "origin"], name="datasourcerun_source_origin_unique"
            ),
            # Usage ingestion rows name their origin, and no other row does,
            # so no shared usage row can hide a failing origin.
            models.CheckConstraint(
                condition=(
                    models.Q(source="usage_ingestion")
                    & models.Q(
                        origin__regex=r"^(event_batch_api|segment_source:[1-9][0-9]*)$"
                    )
                )
                | (~models.Q(source="usage_ingestion") & models.Q(origin="")),
                name="datasourcerun_origin_valid",
            ),
        ]

    def __str__(self) -> str:
        if self.origin:
            return f"{self.get_source_display()} ({self.origin})"
        return self.get_source_display()
