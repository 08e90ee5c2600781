from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.advocacy.models import AdvocacyAsk, Badge, MemberBadge, PointsEntry
from apps.advocacy.services import (
    award_badge,
    award_points,
    complete_ask,
    create_advocacy_ask,
)
from rm6.errors import DomainError


class PointsEntryForm(forms.ModelForm):
    class Meta:
        model = PointsEntry
        fields = ["member", "points", "reason", "event", "note"]

    def clean_points(self) -> int:
        points = self.cleaned_data["points"]
        if points == 0:
            raise forms.ValidationError(
                "An entry of 0 points changes nothing. Enter a positive number "
                "to award points, or a negative one to correct an earlier entry."
            )
        return points

    def clean(self):
        cleaned_data = super().clean()
        event = cleaned_data.get("event")
        reason = cleaned_data.get("reason")
        if (
            event
            and reason
            and PointsEntry.objects.filter(event=event, reason=reason).exists()
        ):
            self.add_error(
                "event",
                f"Event {event.pk} already earned points for {reason!r}; an event "
                "earns points once per reason. Clear the event or use another "
                "reason.",
            )
        return cleaned_data


@admin.register(PointsEntry)
class PointsEntryAdmin(admin.ModelAdmin):
    """The append-only points ledger: staff add entries, never edit or delete.

    A correction is a new entry with negative points. A database trigger
    rejects UPDATE and DELETE on the table as well.
    """

    form = PointsEntryForm
    list_display = ["member", "points", "reason", "event", "note", "created_at"]
    list_select_related = ["member__user", "event"]
    list_filter = ["reason", "created_at"]
    search_fields = ["member__user__email", "member__display_name", "reason", "note"]
    date_hierarchy = "created_at"
    autocomplete_fields = ["member"]
    raw_id_fields = ["event"]

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def save_model(self, request, obj: PointsEntry, form, change: bool) -> None:
        entry = award_points(
            member=obj.member,
            points=obj.points,
            reason=obj.reason,
            event=obj.event,
            note=obj.note,
        )
        # The admin's log entry and redirect read the saved object's fields.
        obj.pk = entry.pk
        obj.created_at = entry.created_at


@admin.register(Badge)
class BadgeAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "is_active", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}


class MemberBadgeForm(forms.ModelForm):
    class Meta:
        model = MemberBadge
        fields = ["member", "badge", "reason"]

    def clean(self):
        cleaned_data = super().clean()
        member = cleaned_data.get("member")
        badge = cleaned_data.get("badge")
        if badge is not None and not badge.is_active:
            self.add_error("badge", "This badge is inactive; activate it first.")
        elif (
            member is not None
            and badge is not None
            and MemberBadge.objects.filter(member=member, badge=badge).exists()
        ):
            self.add_error("badge", f"{member} already has the {badge} badge.")
        return cleaned_data


@admin.register(MemberBadge)
class MemberBadgeAdmin(admin.ModelAdmin):
    """Badges members earned: staff award them here, and never edit or delete."""

    form = MemberBadgeForm
    list_display = ["member", "badge", "reason", "awarded_at", "step_run"]
    list_select_related = ["member__user", "badge"]
    list_filter = ["badge"]
    search_fields = ["member__user__email", "member__display_name", "badge__name"]
    date_hierarchy = "awarded_at"
    autocomplete_fields = ["member"]

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def save_model(self, request, obj: MemberBadge, form, change: bool) -> None:
        award, _ = award_badge(member=obj.member, badge=obj.badge, reason=obj.reason)
        # The admin's log entry and redirect read the saved object's fields.
        obj.pk = award.pk
        obj.awarded_at = award.awarded_at


@admin.register(AdvocacyAsk)
class AdvocacyAskAdmin(admin.ModelAdmin):
    """Advocacy asks: staff send them here or through plays, and mark them done.

    Members accept or decline on their asks page. Staff record the work done
    with the "Mark completed" action, and nothing else changes an ask here.
    """

    list_display = ["member", "kind", "status", "play", "created_at", "due_on"]
    list_select_related = ["member__user", "play"]
    list_filter = ["status", "kind", "play"]
    search_fields = ["member__user__email", "member__display_name", "message"]
    date_hierarchy = "created_at"
    autocomplete_fields = ["member"]
    fields = [
        "member",
        "kind",
        "message",
        "due_on",
        "status",
        "play",
        "step_run",
        "created_at",
        "responded_at",
        "completed_at",
        "completed_by",
    ]
    actions = ["mark_completed"]

    def get_readonly_fields(self, request: HttpRequest, obj=None) -> list[str]:
        if obj is None:
            return self.fields[4:]
        return self.fields

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        # The changelist action needs change permission with no object given.
        return obj is None and super().has_change_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def save_model(self, request, obj: AdvocacyAsk, form, change: bool) -> None:
        ask, _ = create_advocacy_ask(
            member=obj.member, kind=obj.kind, message=obj.message, due_on=obj.due_on
        )
        obj.pk = ask.pk
        obj.created_at = ask.created_at

    @admin.action(description="Mark completed", permissions=["change"])
    def mark_completed(self, request: HttpRequest, queryset: QuerySet) -> None:
        completed = 0
        for ask in queryset:
            if ask.status == AdvocacyAsk.Status.COMPLETED:
                continue
            try:
                complete_ask(ask=ask, staff_user=request.user)
            except DomainError as exc:
                self.message_user(request, exc.message, messages.WARNING)
            else:
                completed += 1
        self.message_user(
            request,
            f"Marked {completed} ask{'s' if completed != 1 else ''} completed.",
            messages.SUCCESS,
        )
