from django.contrib import admin

from apps.lifecycle import registry
from apps.lifecycle.admin_scoring import SCORE_REFRESH_FIELDS
from apps.lifecycle.models import ActivityEvent, HealthScore, HealthScoreSnapshot
from apps.membership.admin import ReadOnlyAdmin
from apps.membership.models import Account


class EventKindFilter(admin.SimpleListFilter):
    """Filter by registered kind, so listing the choices never scans the table.

    A family such as `product.*` matches every kind under its prefix.
    """

    title = "kind"
    parameter_name = "kind"

    def lookups(self, request, model_admin):
        return [(kind.name, kind.name) for kind in registry.list_kinds()]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        if value.endswith(".*"):
            return queryset.filter(kind__startswith=value[:-1])
        return queryset.filter(kind=value)


@admin.register(ActivityEvent)
class ActivityEventAdmin(ReadOnlyAdmin):
    list_display = [
        "kind",
        "member",
        "account",
        "occurred_at",
        "campaign_id",
        "play_id",
    ]
    list_select_related = ["member__user", "account"]
    list_filter = [EventKindFilter, "occurred_at"]
    search_fields = ["member__user__email", "campaign_id", "play_id"]
    # NOTE: the date hierarchy's first page reads the min and max occurred_at
    # of the whole table. No B-tree index starts with occurred_at (it has a
    # BRIN index), so PostgreSQL scans the table for them.
    date_hierarchy = "occurred_at"
    # The exact total would need a count over the whole event table.
    show_full_result_count = False


class MemberScoreAdmin(ReadOnlyAdmin):
    """Shared list settings for current scores and their daily snapshots."""

    list_select_related = ["member__user", "member__account"]
    list_filter = ["band"]
    search_fields = ["member__user__email", "member__display_name"]

    @admin.display(description="account", ordering="member__account__name")
    def account(self, score: HealthScore | HealthScoreSnapshot) -> Account | None:
        return score.member.account


@admin.register(HealthScore)
class HealthScoreAdmin(MemberScoreAdmin):
    list_display = ["member", "account", "score", "band", "computed_at"]
    # Lowest scores first: the members who need attention.
    ordering = ["score", "pk"]
    # No date hierarchy on computed_at: the column has no index (each refresh
    # changes it), so the hierarchy's date range would scan every score.
    readonly_fields = SCORE_REFRESH_FIELDS


@admin.register(HealthScoreSnapshot)
class HealthScoreSnapshotAdmin(MemberScoreAdmin):
    list_display = ["member", "account", "day", "score", "band"]
    date_hierarchy = "day"


import apps.lifecycle.admin_delivery  # noqa: E402, F401
from apps.lifecycle import (  # noqa: E402, F401
    admin_ingestion,
    admin_plays,
    admin_scoring,
)
