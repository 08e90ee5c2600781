from collections.abc import Mapping

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.settings import api_settings

from apps.lifecycle.models import (
    AccountHealthScore,
    AccountHealthScoreSnapshot,
    ActivityEvent,
    HealthScore,
    HealthScoreSnapshot,
)
from apps.lifecycle.selectors import list_account_score_trend, list_score_trend
from apps.lifecycle.services import IngestError

MAX_BATCH_SIZE = 1000
TREND_DAYS = 30
MEMBER_REFERENCE_FIELDS = ("member_id", "member_email", "member_external_id")


class ActivityEventSerializer(serializers.ModelSerializer):
    subject_type = serializers.SerializerMethodField(
        help_text="The subject's model as app_label.model, or null without one."
    )

    class Meta:
        model = ActivityEvent
        fields = [
            "id",
            "member",
            "account",
            "kind",
            "subject_type",
            "subject_id",
            "occurred_at",
            "recorded_at",
            "campaign_id",
            "play_id",
            "utm_source",
            "utm_medium",
            "utm_campaign",
            "utm_term",
            "utm_content",
            "properties",
            "idempotency_key",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_subject_type(self, event: ActivityEvent) -> str | None:
        if event.subject_type is None:
            return None
        return f"{event.subject_type.app_label}.{event.subject_type.model}"


class AwareDateTimeField(serializers.DateTimeField):
    """An ISO 8601 datetime that must carry a UTC offset.

    DRF reads a naive datetime in the server's time zone, which would shift
    events sent from other zones without any error, so naive input is rejected.
    """

    default_error_messages = {
        "naive": (
            "Datetime {value!r} has no UTC offset. Add one, for example "
            "2025-03-01T09:30:00+01:00 or 2025-03-01T08:30:00Z."
        ),
        "out_of_range": (
            "Datetime {value!r} is out of range. Send the time the action "
            "happened, for example 2025-03-01T08:30:00Z."
        ),
    }

    def to_internal_value(self, value):
        if isinstance(value, str):
            try:
                parsed = parse_datetime(value.strip())
            except ValueError:
                # The parent reports a well-formed, out-of-range value as invalid.
                parsed = None
            if parsed is not None and timezone.is_naive(parsed):
                self.fail("naive", value=value)
        try:
            return super().to_internal_value(value)
        except serializers.ValidationError as error:
            # DRF's own message for a time that overflows when converted to
            # the server's time zone does not show the value.
            if error.get_codes() == ["overflow"]:
                self.fail("out_of_range", value=value)
            raise


class EventRowSerializer(serializers.Serializer):
    """One event of a batch, checked for shape only.

    Whether the member exists and the kind is registered is checked by
    `ingest_events`, which reports those errors by row index too.
    """

    member_id = serializers.IntegerField(required=False, min_value=1)
    member_email = serializers.EmailField(required=False)
    member_external_id = serializers.CharField(required=False, max_length=100)
    kind = serializers.CharField(
        max_length=100,
        help_text="A kind under product., for example product.report_exported. "
        "Kinds the hub records itself are rejected.",
    )
    occurred_at = AwareDateTimeField(
        help_text="When the action happened: ISO 8601 with a UTC offset or Z."
    )
    properties = serializers.DictField(required=False, default=dict)
    campaign_id = serializers.CharField(
        required=False, allow_blank=True, max_length=100
    )
    play_id = serializers.CharField(required=False, allow_blank=True, max_length=100)
    utm_source = serializers.CharField(required=False, allow_blank=True, max_length=100)
    utm_medium = serializers.CharField(required=False, allow_blank=True, max_length=100)
    utm_campaign = serializers.CharField(
        required=False, allow_blank=True, max_length=100
    )
    utm_term = serializers.CharField(required=False, allow_blank=True, max_length=100)
    utm_content = serializers.CharField(
        required=False, allow_blank=True, max_length=100
    )
    idempotency_key = serializers.CharField(
        required=False,
        allow_blank=True,
        allow_null=True,
        max_length=200,
        help_text="A key unique to this event. A row whose key was already "
        "recorded counts as a duplicate and changes nothing.",
    )

    def to_internal_value(self, data):
        # Unknown fields are rejected rather than dropped, so that a misspelt
        # attribution field fails loudly instead of vanishing from reports.
        unknown = []
        if isinstance(data, Mapping):
            unknown = sorted(str(name) for name in data if name not in self.fields)
        try:
            values = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if unknown:
                exc.detail[api_settings.NON_FIELD_ERRORS_KEY] = [
                    _unknown_fields_message(unknown)
                ]
            raise
        if unknown:
            raise serializers.ValidationError(_unknown_fields_message(unknown))
        return values

    def validate(self, attrs):
        references = [name for name in MEMBER_REFERENCE_FIELDS if attrs.get(name)]
        if not references:
            raise serializers.ValidationError(
                "The row names no member. Give member_id, member_email or "
                "member_external_id."
            )
        if len(references) > 1:
            raise serializers.ValidationError(
                "Give only one of member_id, member_email or member_external_id. "
                f"This row has {', '.join(references)}."
            )
        return attrs


def _unknown_fields_message(names: list[str]) -> str:
    return f"Unknown field(s): {', '.join(names)}. Remove or rename them."


class EventBatchSerializer(serializers.Serializer):
    events = EventRowSerializer(
        many=True,
        allow_empty=False,
        max_length=MAX_BATCH_SIZE,
        error_messages={
            "max_length": (
                "A batch may contain at most {max_length} events. Split the "
                "events into smaller batches."
            ),
        },
    )


class IngestResultSerializer(serializers.Serializer):
    created = serializers.IntegerField(help_text="Events recorded by this request.")
    duplicates = serializers.IntegerField(
        help_text="Rows skipped because their idempotency key was already recorded."
    )


class BatchErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    row_errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Error messages keyed by the index of the row, from 0.",
    )


def flatten_errors(detail, prefix: str = "") -> list[str]:
    """Flatten DRF error details into messages, each prefixed with its field path."""
    if isinstance(detail, Mapping):
        messages = []
        for key, value in detail.items():
            name = "" if key == api_settings.NON_FIELD_ERRORS_KEY else str(key)
            path = ".".join(part for part in (prefix, name) if part)
            messages.extend(flatten_errors(value, path))
        return messages
    if isinstance(detail, list):
        return [message for item in detail for message in flatten_errors(item, prefix)]
    return [f"{prefix}: {detail}" if prefix else str(detail)]


def format_batch_errors(errors: Mapping) -> dict:
    """Convert a batch serializer's errors to the batch endpoint's error body.

    Per-row errors arrive from the list serializer keyed by the integer row
    index and get the same body as the row errors of `ingest_events`. Any
    other error, such as a missing or oversized `events` list, becomes a
    single `detail` message.
    """
    rows = errors.get("events")
    if (
        len(errors) == 1
        and isinstance(rows, Mapping)
        and rows
        and all(isinstance(index, int) for index in rows)
    ):
        row_errors = {index: flatten_errors(detail) for index, detail in rows.items()}
        return format_ingest_error(IngestError(row_errors))
    return {"detail": " ".join(flatten_errors(errors))}


def format_ingest_error(error: IngestError) -> dict:
    """Return the error body for a batch with invalid rows."""
    return {
        "detail": error.message,
        "row_errors": {
            str(index): messages for index, messages in error.row_errors.items()
        },
    }


class HealthScoreSnapshotSerializer(serializers.ModelSerializer):
    class Meta:
        model = HealthScoreSnapshot
        fields = ["day", "score", "band"]
        read_only_fields = fields


class HealthScoreSerializer(serializers.ModelSerializer):
    class Meta:
        model = HealthScore
        fields = ["member", "score", "band", "components", "computed_at"]
        read_only_fields = fields


class HealthScoreDetailSerializer(HealthScoreSerializer):
    trend = serializers.SerializerMethodField(
        help_text=f"The last {TREND_DAYS} daily scores, newest first: the "
        "current score, then the closing score of each earlier day."
    )

    class Meta(HealthScoreSerializer.Meta):
        fields = [*HealthScoreSerializer.Meta.fields, "trend"]
        read_only_fields = fields

    @extend_schema_field(HealthScoreSnapshotSerializer(many=True))
    def get_trend(self, score: HealthScore) -> list:
        snapshots = list_score_trend(
            member=score.member, current=score, days=TREND_DAYS
        )
        return HealthScoreSnapshotSerializer(snapshots, many=True).data


class AccountHealthScoreSnapshotSerializer(serializers.ModelSerializer):
    class Meta:
        model = AccountHealthScoreSnapshot
        fields = ["day", "score", "band"]
        read_only_fields = fields


class AccountHealthScoreSerializer(serializers.ModelSerializer):
    class Meta:
        model = AccountHealthScore
        fields = ["account", "score", "band", "components", "computed_at"]
        read_only_fields = fields


class AccountHealthScoreDetailSerializer(AccountHealthScoreSerializer):
    trend = serializers.SerializerMethodField(
        help_text=f"The last {TREND_DAYS} daily scores, newest first: the "
        "current score, then the closing score of each earlier day."
    )

    class Meta(AccountHealthScoreSerializer.Meta):
        fields = [*AccountHealthScoreSerializer.Meta.fields, "trend"]
        read_only_fields = fields

    @extend_schema_field(AccountHealthScoreSnapshotSerializer(many=True))
    def get_trend(self, score: AccountHealthScore) -> list:
        snapshots = list_account_score_trend(
            account=score.account, current=score, days=TREND_DAYS
        )
        return AccountHealthScoreSnapshotSerializer(snapshots, many=True).data
