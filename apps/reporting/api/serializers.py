"""Read-only shapes of the reporting API, filled from the selectors' dataclasses."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.membership.models import DataSourceRun


class ShareSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    total = serializers.IntegerField()
    percent = serializers.FloatField(
        allow_null=True,
        help_text="count / total in percent, one decimal; null when total is 0.",
    )


class SegmentRowSerializer(serializers.Serializer):
    label = serializers.CharField(help_text='A segment name, or "All segments".')
    segment = serializers.CharField(
        allow_null=True,
        help_text="The account segment value; null for the total and for the "
        'row "No account".',
    )


class TimeToValueSerializer(SegmentRowSerializer):
    cohort = serializers.IntegerField(
        help_text="Members whose first sign-in, or accounts whose contract "
        "start, falls in the window."
    )
    reached = serializers.IntegerField(
        help_text="Those of the cohort with a value moment."
    )
    not_reached = ShareSerializer(
        help_text="Those of the cohort without a value moment yet."
    )
    median_seconds = serializers.SerializerMethodField(
        help_text="Median time to the value moment in seconds, over those who "
        "reached it; null when none did."
    )

    @extend_schema_field(serializers.FloatField(allow_null=True))
    def get_median_seconds(self, row) -> float | None:
        if row.median is None:
            return None
        return row.median.total_seconds()


class TimeToValueBreakdownSerializer(serializers.Serializer):
    total = TimeToValueSerializer()
    segments = TimeToValueSerializer(many=True)


class TimeToValueReportSerializer(serializers.Serializer):
    kind = serializers.CharField(
        help_text="The event kind that counts as the value moment."
    )
    is_kind_registered = serializers.BooleanField(
        help_text="False when no app registered that kind, so no member can "
        "reach it; check the RM6_VALUE_MOMENT_KIND setting."
    )
    breakdown = TimeToValueBreakdownSerializer()


class CsatSerializer(SegmentRowSerializer):
    rated = serializers.IntegerField(
        help_text="Solved or closed cases rated in the window."
    )
    mean_score = serializers.FloatField(
        allow_null=True, help_text="Mean score from 1 to 5; null without ratings."
    )
    satisfied = serializers.IntegerField(help_text="Cases rated 4 or 5.")
    satisfied_share = ShareSerializer()


class CsatBreakdownSerializer(serializers.Serializer):
    total = CsatSerializer()
    segments = CsatSerializer(many=True)


class CourseCompletionSerializer(SegmentRowSerializer):
    started = serializers.IntegerField(help_text="Enrolments started in the window.")
    completed = serializers.IntegerField(
        help_text="Of those, the enrolments completed by now."
    )
    rate = ShareSerializer()


class CourseCompletionBreakdownSerializer(serializers.Serializer):
    total = CourseCompletionSerializer()
    segments = CourseCompletionSerializer(many=True)


class DeflectionSerializer(SegmentRowSerializer):
    attempts = serializers.IntegerField(help_text="Attempts started in the window.")
    deflected = serializers.IntegerField()
    not_deflected = serializers.IntegerField()
    pending = serializers.IntegerField(
        help_text="Attempts without an outcome yet; not in the rate."
    )
    rate = ShareSerializer(
        help_text="Deflected attempts out of deflected and not deflected ones."
    )


class DeflectionBreakdownSerializer(serializers.Serializer):
    total = DeflectionSerializer()
    segments = DeflectionSerializer(many=True)


class ContentFreshnessSerializer(serializers.Serializer):
    today = serializers.DateField(help_text="The UTC date the figure is for.")
    published = serializers.IntegerField()
    fresh = serializers.IntegerField(
        help_text="Published articles whose last review plus their review "
        "interval is today or later."
    )
    overdue = serializers.IntegerField()
    never_reviewed = serializers.IntegerField()
    rate = ShareSerializer()


class PortalKpisSerializer(serializers.Serializer):
    start = serializers.DateField(help_text="First day of the window, included.")
    end = serializers.DateField(help_text="Day after the window, excluded.")
    member_time_to_value = TimeToValueReportSerializer()
    account_time_to_value = TimeToValueReportSerializer()
    csat = CsatBreakdownSerializer()
    course_completion = CourseCompletionBreakdownSerializer()
    deflection = DeflectionBreakdownSerializer()
    content_freshness = ContentFreshnessSerializer()


class DataFreshnessSerializer(serializers.Serializer):
    source = serializers.ChoiceField(
        choices=DataSourceRun.Source.choices,
        help_text="The data source: CRM sync, usage ingestion or score computation.",
    )
    origin = serializers.CharField(
        help_text="Where usage ingestion ran: event_batch_api, or segment_source: "
        "and the Segment source's ID. Usage ingestion has one row per origin, "
        "and the other sources have one row each with an empty origin."
    )
    label = serializers.CharField(
        help_text="The source's display name. For usage ingestion it names the "
        "origin too, as in “Usage ingestion: event batch API”."
    )
    last_success_at = serializers.DateTimeField(
        allow_null=True, help_text="The last successful run; null when none."
    )
    age_seconds = serializers.SerializerMethodField(
        help_text="Seconds since the last successful run; null when none."
    )
    sla_seconds = serializers.SerializerMethodField(
        help_text="The age under which the source is fresh, from "
        "RM6_DATA_FRESHNESS_SLA_HOURS."
    )
    is_fresh = serializers.BooleanField(
        allow_null=True,
        help_text="Whether the age is under the SLA; null (no data) when the "
        "source never succeeded.",
    )
    last_failure_at = serializers.DateTimeField(
        allow_null=True, help_text="The last failed run; null when none."
    )
    last_error = serializers.CharField(
        help_text="What the last failed run failed on, without personal data."
    )
    is_failing = serializers.BooleanField(
        help_text="Whether the last failure is newer than the last success."
    )

    @extend_schema_field(serializers.FloatField(allow_null=True))
    def get_age_seconds(self, row) -> float | None:
        if row.age is None:
            return None
        return row.age.total_seconds()

    @extend_schema_field(serializers.FloatField())
    def get_sla_seconds(self, row) -> float:
        return row.sla.total_seconds()


class KpisSerializer(PortalKpisSerializer):
    data_freshness = DataFreshnessSerializer(
        many=True,
        help_text="Each data source origin's freshness now, whatever the window.",
    )
