from rest_framework import serializers

from apps.membership.models import Account, Member


class AccountSerializer(serializers.ModelSerializer):
    member_count = serializers.IntegerField(
        read_only=True, help_text="Members attached to the account."
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
            "time_zone",
            "member_count",
        ]
        read_only_fields = fields


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
