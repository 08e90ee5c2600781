import logging

import django_filters
from django.db.models import Count
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import filters, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ParseError, PermissionDenied, ValidationError
from rest_framework.permissions import SAFE_METHODS, BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from apps.membership.api.serializers import (
    AccountArrSerializer,
    AccountCreateSerializer,
    AccountSerializer,
    AccountSummarySerializer,
    AccountWriteSerializer,
    MemberSerializer,
    MemberWriteSerializer,
)
from apps.membership.models import Account, Member
from apps.membership.selectors import list_visible_accounts, list_visible_members
from apps.membership.selectors.accounts import list_account_arr_history
from apps.membership.services.accounts import create_account, upsert_account
from apps.membership.services.data_sources import (
    Source,
    record_source_failure,
    record_source_run,
)
from apps.membership.services.members import upsert_member
from rm6.errors import DomainError
from rm6.filters import DateFilter
from rm6.pagination import CursorPagination

logger = logging.getLogger(__name__)

# The external ID is a path segment, so anything but a slash may appear.
EXTERNAL_ID_PATH = r"by-external-id/(?P<external_id>[^/]+)"
EXTERNAL_ID_PARAMETER = OpenApiParameter(
    "external_id",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description="The CRM or product ID the integration knows the record by.",
)
WRITE_ERRORS = {
    400: OpenApiResponse(
        description="Nothing was written. The body maps the invalid field to "
        "messages that name the value and the fix."
    ),
    403: OpenApiResponse(description="Only staff users may write."),
    409: OpenApiResponse(
        description="Nothing was written: the value belongs to another record, "
        "such as an email domain of another account or the email of a member "
        "with another external ID."
    ),
}


def _validated_crm_body(request: Request, serializer_class, *, action: str) -> dict:
    """Return the validated body of an upsert by external ID.

    Such an upsert is how the CRM integration syncs accounts and members, so
    a body that does not parse or validate records a failed CRM sync run
    before the 400 response. `action` names the upsert in the stored error.
    """
    try:
        data = request.data
    except ParseError:
        record_source_failure(
            source=Source.CRM_SYNC, error=f"{action} failed: invalid JSON"
        )
        raise
    serializer = serializer_class(data=data)
    if not serializer.is_valid():
        fields = sorted(set(serializer.errors) - {"non_field_errors"})
        record_source_failure(
            source=Source.CRM_SYNC,
            error=f"{action} failed: invalid "
            + (", ".join(fields) if fields else "body"),
        )
        raise ValidationError(serializer.errors)
    return serializer.validated_data


class IdCursorPagination(CursorPagination):
    """Cursor pagination in id order, which is unique and never changes."""

    ordering = "id"


class ArrHistoryPagination(CursorPagination):
    """Cursor pagination over one account's ARR values, latest first."""

    ordering = "-effective_on"


class IsStaffOrReadOnly(BasePermission):
    """Anyone signed in may read what the selectors show them; staff may write."""

    message = "Only staff users may create or change records."

    def has_permission(self, request, view) -> bool:
        return request.method in SAFE_METHODS or request.user.is_staff


@extend_schema_field(OpenApiTypes.INT)
class IdFilter(django_filters.NumberFilter):
    """A filter on a foreign key's id, documented as an integer."""


class AccountNameSearchFilter(filters.SearchFilter):
    search_description = "Only accounts whose name contains this text, ignoring case."


class AccountFilter(django_filters.FilterSet):
    renewal_after = DateFilter(
        field_name="renewal_date",
        lookup_expr="gte",
        help_text="Only accounts renewing on or after this date (YYYY-MM-DD).",
    )
    renewal_before = DateFilter(
        field_name="renewal_date",
        lookup_expr="lte",
        help_text="Only accounts renewing on or before this date (YYYY-MM-DD).",
    )

    class Meta:
        model = Account
        fields = ["segment", "cs_tier"]


class MemberFilter(django_filters.FilterSet):
    # A plain number, not a model choice, so that filtering by an account the
    # user may not read returns an empty page instead of revealing whether
    # the account exists.
    account = IdFilter(
        field_name="account_id", help_text="Only members of this account id."
    )

    class Meta:
        model = Member
        fields = ["account", "role", "lifecycle_stage"]


def _error_response(error: DomainError) -> Response:
    # A conflict with another record gives 409, and any other broken rule
    # gives 400 through the API's exception handler.
    if error.code != "conflict":
        raise error
    logger.info("api write rejected as a conflict on field %s", error.field)
    key = error.field or "detail"
    return Response(
        {key: [error.message], "code": error.code}, status=status.HTTP_409_CONFLICT
    )


class AccountViewSet(
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Customer accounts. Staff read every account and a member only their own.

    A member reads only the summary of their account (AccountSummarySerializer):
    ARR, dates, segment, tier and owner are for staff. Staff may also create
    accounts and upsert them by external ID.
    """

    serializer_class = AccountSerializer
    pagination_class = IdCursorPagination
    permission_classes = [IsAuthenticated, IsStaffOrReadOnly]
    filter_backends = [DjangoFilterBackend, AccountNameSearchFilter]
    filterset_class = AccountFilter
    search_fields = ["name"]

    def get_serializer_class(self):
        if self.request.user.is_staff:
            return AccountSerializer
        return AccountSummarySerializer

    def get_queryset(self):
        accounts = list_visible_accounts(user=self.request.user)
        return accounts.select_related("parent").annotate(member_count=Count("members"))

    def _respond_with(self, account: Account, status_code: int) -> Response:
        account = self.get_queryset().get(pk=account.pk)
        return Response(AccountSerializer(account).data, status=status_code)

    @extend_schema(
        request=AccountCreateSerializer,
        responses={201: AccountSerializer, **WRITE_ERRORS},
    )
    def create(self, request: Request, *args, **kwargs) -> Response:
        """Create an account, which needs a name, a segment and a CS tier."""
        serializer = AccountCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)

        try:
            account = create_account(
                actor=request.user, source="api", **serializer.validated_data
            )
        except DomainError as error:
            return _error_response(error)
        return self._respond_with(account, status.HTTP_201_CREATED)

    @extend_schema(
        methods=["PUT", "PATCH"],
        parameters=[EXTERNAL_ID_PARAMETER],
        request=AccountWriteSerializer,
        responses={200: AccountSerializer, 201: AccountSerializer, **WRITE_ERRORS},
        description="Create the account with this external ID (201) or update "
        "it (200). PUT and PATCH behave the same: a field left out keeps its "
        "value. A new account needs a name, a segment and a CS tier.",
    )
    @action(detail=False, methods=["put", "patch"], url_path=EXTERNAL_ID_PATH)
    def by_external_id(self, request: Request, external_id: str) -> Response:
        data = _validated_crm_body(
            request, AccountWriteSerializer, action="account upsert"
        )
        try:
            with record_source_run(source=Source.CRM_SYNC, action="account upsert"):
                account, created = upsert_account(
                    external_id=external_id,
                    actor=request.user,
                    source="api",
                    **data,
                )
        except DomainError as error:
            return _error_response(error)
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return self._respond_with(account, code)

    @extend_schema(responses=AccountArrSerializer(many=True))
    @action(
        detail=True,
        methods=["get"],
        url_path="arr-history",
        pagination_class=ArrHistoryPagination,
        filter_backends=[],
    )
    def arr_history(self, request: Request, pk=None) -> Response:
        """List the account's dated ARR values, latest first. Staff only."""
        account = self.get_object()
        if not request.user.is_staff:
            raise PermissionDenied("An account's ARR history is visible to staff only.")
        page = self.paginate_queryset(list_account_arr_history(account))
        serializer = AccountArrSerializer(page, many=True)
        return self.get_paginated_response(serializer.data)


class MemberViewSet(viewsets.ReadOnlyModelViewSet):
    """Members that the user may read.

    Staff read every member, an account admin the members of their own
    account, and any other member only their own record. Staff may also
    upsert members by external ID.
    """

    serializer_class = MemberSerializer
    pagination_class = IdCursorPagination
    permission_classes = [IsAuthenticated, IsStaffOrReadOnly]
    filterset_class = MemberFilter

    def get_queryset(self):
        return list_visible_members(user=self.request.user)

    @extend_schema(
        methods=["PUT", "PATCH"],
        parameters=[EXTERNAL_ID_PARAMETER],
        request=MemberWriteSerializer,
        responses={200: MemberSerializer, 201: MemberSerializer, **WRITE_ERRORS},
        description="Create the member with this external ID (201) or update it "
        "(200). PUT and PATCH behave the same: a field left out keeps its value. "
        "A new external ID needs an email; when a member without an external ID "
        "has that email, it gets this one. An email that belongs to a member "
        "with another external ID gives 409. A new person gets a user without a "
        "password, who signs in through SSO or a password reset.",
    )
    @action(detail=False, methods=["put", "patch"], url_path=EXTERNAL_ID_PATH)
    def by_external_id(self, request: Request, external_id: str) -> Response:
        data = _validated_crm_body(
            request, MemberWriteSerializer, action="member upsert"
        )
        try:
            with record_source_run(source=Source.CRM_SYNC, action="member upsert"):
                member, created = upsert_member(
                    external_id=external_id, actor=request.user, **data
                )
        except DomainError as error:
            return _error_response(error)
        member = self.get_queryset().get(pk=member.pk)
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return Response(MemberSerializer(member).data, status=code)
