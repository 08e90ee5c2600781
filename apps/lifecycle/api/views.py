import logging
from typing import NoReturn

import django_filters
from django.db.models import QuerySet
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ParseError, ValidationError
from rest_framework.parsers import JSONParser
from rest_framework.response import Response

from apps.lifecycle.api.serializers import (
    AccountHealthScoreDetailSerializer,
    AccountHealthScoreSerializer,
    ActivityEventSerializer,
    BatchErrorSerializer,
    EventBatchSerializer,
    HealthScoreDetailSerializer,
    HealthScoreSerializer,
    IngestResultSerializer,
    format_batch_errors,
    format_ingest_error,
)
from apps.lifecycle.models import AccountHealthScore, ActivityEvent, HealthScore
from apps.lifecycle.scoring.refresh import MAX_ID
from apps.lifecycle.selectors import (
    list_accounts_with_visible_health,
    list_members_with_visible_score,
    list_visible_account_health_scores,
    list_visible_events,
    list_visible_health_scores,
)
from apps.lifecycle.services import IngestError, ingest_events
from apps.membership.api.views import IdFilter
from apps.membership.services.data_sources import (
    EVENT_BATCH_API_ORIGIN,
    record_source_failure,
    record_source_run,
)
from apps.membership.services.data_sources import Source as DataSource
from rm6.api import IsStaffUser
from rm6.filters import IsoDateTimeFilter
from rm6.pagination import CursorPagination

logger = logging.getLogger(__name__)


class EventCursorPagination(CursorPagination):
    """Newest events first, with the id breaking ties between equal times."""

    ordering = ("-occurred_at", "-id")


class MemberCursorPagination(CursorPagination):
    """Cursor pagination in member id order, for models keyed by their member."""

    ordering = "member_id"


class AccountCursorPagination(CursorPagination):
    """Cursor pagination in account id order, for models keyed by their account."""

    ordering = "account_id"


class EventFilter(django_filters.FilterSet):
    # Plain numbers, not model choices, so that filtering by a member or
    # account the user may not read returns an empty page instead of revealing
    # whether it exists.
    member = IdFilter(
        field_name="member_id", help_text="Only events of this member id."
    )
    account = IdFilter(
        field_name="account_id", help_text="Only events of this account id."
    )
    kind_prefix = django_filters.CharFilter(
        field_name="kind",
        lookup_expr="startswith",
        help_text="Only kinds starting with this text, for example product.",
    )
    occurred_after = IsoDateTimeFilter(
        field_name="occurred_at",
        lookup_expr="gte",
        help_text="Only events at or after this ISO 8601 datetime.",
    )
    occurred_before = IsoDateTimeFilter(
        field_name="occurred_at",
        lookup_expr="lt",
        help_text="Only events strictly before this ISO 8601 datetime.",
    )

    class Meta:
        model = ActivityEvent
        fields = ["member", "account", "kind"]


class HealthScoreFilter(django_filters.FilterSet):
    account = IdFilter(
        field_name="member__account_id",
        help_text="Only scores of members of this account id.",
    )

    class Meta:
        model = HealthScore
        fields = ["band", "account"]


class ActivityEventViewSet(viewsets.ReadOnlyModelViewSet):
    """Activity events of the members the user may read, newest first."""

    serializer_class = ActivityEventSerializer
    pagination_class = EventCursorPagination
    filterset_class = EventFilter

    def get_queryset(self):
        return list_visible_events(user=self.request.user)

    @extend_schema(
        request=EventBatchSerializer,
        responses={
            201: IngestResultSerializer,
            400: OpenApiResponse(
                BatchErrorSerializer,
                description="Nothing was recorded. Errors of single rows are "
                "in row_errors, keyed by row index.",
            ),
        },
    )
    @action(
        detail=False,
        methods=["post"],
        permission_classes=[IsStaffUser],
        parser_classes=[JSONParser],
        filter_backends=[],
        pagination_class=None,
    )
    def batch(self, request):
        """Record up to 1000 events from an integration, all or nothing.

        Rows whose idempotency key was already recorded count as duplicates,
        so a retried batch records nothing twice. Unknown members and kinds are
        reported only once every row has a valid shape. Only staff may call it,
        so integrations authenticate with a staff user's token.
        """
        # Django's DATA_UPLOAD_MAX_MEMORY_SIZE caps the body before parsing;
        # rm6.api.exception_handler turns that into a JSON 413.
        try:
            data = request.data
        except ParseError:
            record_source_failure(
                source=DataSource.USAGE_INGESTION,
                origin=EVENT_BATCH_API_ORIGIN,
                error="event batch failed: invalid JSON",
            )
            raise
        serializer = EventBatchSerializer(data=data)
        if not serializer.is_valid():
            logger.info("event batch rejected: invalid shape, user %s", request.user.pk)
            record_source_failure(
                source=DataSource.USAGE_INGESTION,
                origin=EVENT_BATCH_API_ORIGIN,
                error="event batch failed: invalid shape",
            )
            raise ValidationError(format_batch_errors(serializer.errors))

        try:
            with record_source_run(
                source=DataSource.USAGE_INGESTION,
                origin=EVENT_BATCH_API_ORIGIN,
                action="event batch",
            ):
                result = ingest_events(
                    rows=serializer.validated_data["events"], from_integration=True
                )
        except IngestError as exc:
            logger.info(
                "event batch rejected: %d invalid row(s), user %s",
                len(exc.row_errors),
                request.user.pk,
            )
            raise ValidationError(format_ingest_error(exc)) from exc

        return Response(
            IngestResultSerializer(result).data, status=status.HTTP_201_CREATED
        )


def _raise_score_not_found(
    subject: str, subject_id: str, visible: QuerySet
) -> NoReturn:
    """Raise NotFound, saying whether a subject in `visible` has no score yet.

    A subject the user may not read gets the same message as one that does
    not exist.
    """
    is_whole = subject_id.isascii() and subject_id.isdigit()
    if (
        is_whole
        and int(subject_id) <= MAX_ID
        and visible.filter(pk=subject_id).exists()
    ):
        raise NotFound(
            f"{subject.capitalize()} {subject_id} has no health score yet. "
            f"New {subject}s are scored within minutes and every {subject} "
            "every night, so try again later."
        )
    raise NotFound(f"No health score found for {subject} {subject_id}.")


@extend_schema_view(
    retrieve=extend_schema(
        parameters=[
            OpenApiParameter(
                "member_id",
                OpenApiTypes.INT,
                OpenApiParameter.PATH,
                description="The id of the member whose score to return.",
            )
        ]
    )
)
class HealthScoreViewSet(viewsets.ReadOnlyModelViewSet):
    """Current health scores of the members the user may read, by member id."""

    pagination_class = MemberCursorPagination
    filterset_class = HealthScoreFilter
    lookup_url_kwarg = "member_id"

    def get_queryset(self):
        return list_visible_health_scores(user=self.request.user)

    def get_object(self):
        try:
            return super().get_object()
        except Http404:
            _raise_score_not_found(
                "member",
                self.kwargs[self.lookup_url_kwarg],
                list_members_with_visible_score(user=self.request.user),
            )

    def get_serializer_class(self):
        if self.action == "retrieve":
            return HealthScoreDetailSerializer
        return HealthScoreSerializer


class AccountHealthScoreFilter(django_filters.FilterSet):
    class Meta:
        model = AccountHealthScore
        fields = ["band"]


@extend_schema_view(
    retrieve=extend_schema(
        parameters=[
            OpenApiParameter(
                "account_id",
                OpenApiTypes.INT,
                OpenApiParameter.PATH,
                description="The id of the account whose score to return.",
            )
        ]
    )
)
class AccountHealthScoreViewSet(viewsets.ReadOnlyModelViewSet):
    """Current health scores of accounts, by account id.

    Staff read every account's score and an account admin their own
    account's. Other members read none and get an empty list.
    """

    pagination_class = AccountCursorPagination
    filterset_class = AccountHealthScoreFilter
    lookup_url_kwarg = "account_id"

    def get_queryset(self):
        return list_visible_account_health_scores(user=self.request.user)

    def get_object(self):
        try:
            return super().get_object()
        except Http404:
            _raise_score_not_found(
                "account",
                self.kwargs[self.lookup_url_kwarg],
                list_accounts_with_visible_health(user=self.request.user),
            )

    def get_serializer_class(self):
        if self.action == "retrieve":
            return AccountHealthScoreDetailSerializer
        return AccountHealthScoreSerializer
