import django_filters
from django.db.models import Count
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import filters, viewsets
from rest_framework.pagination import CursorPagination

from apps.membership.api.serializers import AccountSerializer, MemberSerializer
from apps.membership.models import Account, Member
from apps.membership.selectors import list_visible_accounts, list_visible_members


class IdCursorPagination(CursorPagination):
    """Cursor pagination in id order, which is unique and never changes."""

    ordering = "id"


@extend_schema_field(OpenApiTypes.INT)
class IdFilter(django_filters.NumberFilter):
    """A filter on a foreign key's id, documented as an integer."""


class AccountNameSearchFilter(filters.SearchFilter):
    search_description = "Only accounts whose name contains this text, ignoring case."


class AccountFilter(django_filters.FilterSet):
    renewal_after = django_filters.DateFilter(
        field_name="renewal_date",
        lookup_expr="gte",
        help_text="Only accounts renewing on or after this date (YYYY-MM-DD).",
    )
    renewal_before = django_filters.DateFilter(
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


class AccountViewSet(viewsets.ReadOnlyModelViewSet):
    """Customer accounts. Staff read every account and a member only their own."""

    serializer_class = AccountSerializer
    pagination_class = IdCursorPagination
    filter_backends = [DjangoFilterBackend, AccountNameSearchFilter]
    filterset_class = AccountFilter
    search_fields = ["name"]

    def get_queryset(self):
        accounts = list_visible_accounts(user=self.request.user)
        return accounts.annotate(member_count=Count("members"))


class MemberViewSet(viewsets.ReadOnlyModelViewSet):
    """Members that the user may read.

    Staff read every member, an account admin the members of their own
    account, and any other member only their own record.
    """

    serializer_class = MemberSerializer
    pagination_class = IdCursorPagination
    filterset_class = MemberFilter

    def get_queryset(self):
        return list_visible_members(user=self.request.user)
