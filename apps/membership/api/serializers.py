from collections.abc import Mapping

from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.settings import api_settings

from apps.membership.models import Account, AccountArr, Member


class AccountSerializer(serializers.ModelSerializer):
    member_count = serializers.IntegerField(
        read_only=True, help_text="Members attached to the account."
    )
    owner_email = serializers.EmailField(
        source="owner.email",
        read_only=True,
        allow_null=True,
        help_text="The email of the staff user who owns the account.",
    )
    parent_external_id = serializers.CharField(
        source="parent.external_id",
        read_only=True,
        allow_null=True,
        help_text="The parent account's CRM ID, null without a parent.",
    )

    class Meta:
        model = Account
        fields = [
            "id",
            "name",
            "external_id",
            "email_domains",
            "segment",
            "cs_tier",
            "arr",
            "contract_start",
            "renewal_date",
            "owner",
            "owner_email",
            "time_zone",
            "parent",
            "parent_external_id",
            "member_count",
        ]
        read_only_fields = fields


class AccountSummarySerializer(serializers.ModelSerializer):
    """What a member reads of their own account.

    ARR, contract and renewal dates, segment, CS tier and owner are the
    vendor's commercial data about the customer, so only staff read them.
    """

    member_count = serializers.IntegerField(
        read_only=True, help_text="Members attached to the account."
    )

    class Meta:
        model = Account
        fields = ["id", "name", "time_zone", "parent", "member_count"]
        read_only_fields = fields


class AccountArrSerializer(serializers.ModelSerializer):
    class Meta:
        model = AccountArr
        fields = ["effective_on", "arr", "source", "recorded_at"]
        read_only_fields = fields


class StrictSerializer(serializers.Serializer):
    """A serializer that rejects fields it does not know.

    An integration that misspells a field would otherwise see it dropped
    without notice and believe the value was stored.
    """

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            unknown = sorted(str(name) for name in data if name not in self.fields)
            if unknown:
                accepted = ", ".join(
                    name for name, field in self.fields.items() if not field.read_only
                )
                raise ValidationError(
                    {
                        api_settings.NON_FIELD_ERRORS_KEY: [
                            f"Unknown field(s): {', '.join(unknown)}. The accepted "
                            f"fields are {accepted}."
                        ]
                    }
                )
        return super().to_internal_value(data)


class AccountWriteSerializer(StrictSerializer):
    """The fields an integration sends to create or update an account.

    Only type checks happen here; the account services apply the rules.
    """

    name = serializers.CharField(max_length=200, required=False)
    email_domains = serializers.ListField(
        child=serializers.CharField(max_length=253),
        required=False,
        help_text="Email domains whose people join this account, such as "
        "acme.com. A domain belongs to one account only.",
    )
    segment = serializers.ChoiceField(choices=Account.Segment.choices, required=False)
    cs_tier = serializers.ChoiceField(choices=Account.CsTier.choices, required=False)
    arr = serializers.DecimalField(
        max_digits=14,
        decimal_places=2,
        required=False,
        help_text="Annual recurring revenue in USD, recorded in the ARR history "
        "as of arr_effective_on.",
    )
    arr_effective_on = serializers.DateField(
        required=False,
        help_text="The day the ARR took effect (YYYY-MM-DD), today in the "
        "account's time zone by default; not later than today.",
    )
    contract_start = serializers.DateField(required=False, allow_null=True)
    renewal_date = serializers.DateField(required=False, allow_null=True)
    owner_email = serializers.EmailField(
        required=False,
        allow_blank=True,
        allow_null=True,
        help_text="A staff user's email; empty or null removes the owner.",
    )
    time_zone = serializers.CharField(
        max_length=64, required=False, help_text="An IANA name such as Europe/Paris."
    )
    parent_external_id = serializers.CharField(
        max_length=100,
        required=False,
        allow_blank=True,
        allow_null=True,
        help_text="The parent account's CRM ID; empty or null removes the parent.",
    )

    def validate(self, attrs):
        if "arr_effective_on" in attrs and "arr" not in attrs:
            raise ValidationError(
                {"arr_effective_on": ["arr_effective_on needs an arr value to date."]}
            )
        return attrs


class AccountCreateSerializer(AccountWriteSerializer):
    external_id = serializers.CharField(
        max_length=100,
        required=False,
        allow_blank=True,
        help_text="The account's CRM ID, which must be new.",
    )


class MemberSerializer(serializers.ModelSerializer):
    email = serializers.EmailField(source="user.email", read_only=True)

    class Meta:
        model = Member
        fields = [
            "id",
            "email",
            "display_name",
            "account",
            "role",
            "lifecycle_stage",
            "time_zone",
            "external_id",
            "created_at",
        ]
        read_only_fields = fields


class MemberWriteSerializer(StrictSerializer):
    """The fields an integration sends to create or update a member."""

    email = serializers.EmailField(
        required=False,
        help_text="Needed to create a member; it cannot change an existing "
        "member's email.",
    )
    display_name = serializers.CharField(
        max_length=150, required=False, allow_blank=True
    )
    account_external_id = serializers.CharField(
        max_length=100,
        required=False,
        allow_blank=True,
        allow_null=True,
        help_text="The CRM ID of the member's primary account. Left out, a new "
        "member joins the account that owns their email domain; empty or null "
        "moves the member to the account review queue.",
    )
    role = serializers.ChoiceField(choices=Member.Role.choices, required=False)
    lifecycle_stage = serializers.ChoiceField(
        choices=Member.LifecycleStage.choices, required=False
    )
    time_zone = serializers.CharField(max_length=64, required=False)
