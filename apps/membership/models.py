import zoneinfo

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.db import models


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
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
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
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
