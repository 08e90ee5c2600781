"""Admin screens for support cases and their SLA set-up.

Cases, their messages, files and history are read-only here: staff change
cases on the staff case page, whose services keep the SLA clocks, history
and events right. Calendars, policies and topics are edited here.
"""

import zoneinfo

from django import forms
from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from apps.portal.models import (
    BusinessCalendar,
    BusinessHoliday,
    Case,
    CaseAttachment,
    CaseMessage,
    CaseStatusChange,
    CaseTopic,
    EscalationOffer,
    SlaPolicy,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class BusinessCalendarForm(forms.ModelForm):
    class Meta:
        model = BusinessCalendar
        fields = ["name", "time_zone", "weekdays", "opens_at", "closes_at"]

    def clean_time_zone(self) -> str:
        name = self.cleaned_data["time_zone"].strip()
        try:
            zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise forms.ValidationError(
                "%(name)s is not a known time zone. Use an IANA name such as "
                "Europe/Berlin or America/New_York.",
                params={"name": repr(name)},
            ) from None
        return name

    def clean_weekdays(self) -> list[int]:
        weekdays = sorted(set(self.cleaned_data["weekdays"] or []))
        if not weekdays:
            raise forms.ValidationError(
                "Pick at least one working day: 0 for Monday to 6 for Sunday, "
                "separated by commas."
            )
        if any(day < 0 or day > 6 for day in weekdays):
            raise forms.ValidationError(
                "Working days run from 0 (Monday) to 6 (Sunday)."
            )
        return weekdays


class BusinessHolidayInline(admin.TabularInline):
    model = BusinessHoliday
    extra = 1


@admin.register(BusinessCalendar)
class BusinessCalendarAdmin(admin.ModelAdmin):
    form = BusinessCalendarForm
    list_display = ["name", "time_zone", "weekdays", "opens_at", "closes_at"]
    search_fields = ["name"]
    inlines = [BusinessHolidayInline]


@admin.register(BusinessHoliday)
class BusinessHolidayAdmin(admin.ModelAdmin):
    list_display = ["date", "name", "calendar"]
    list_filter = ["calendar"]
    list_select_related = ["calendar"]
    search_fields = ["name", "calendar__name"]
    date_hierarchy = "date"


@admin.register(SlaPolicy)
class SlaPolicyAdmin(admin.ModelAdmin):
    list_display = [
        "priority",
        "first_response_minutes",
        "resolution_minutes",
        "calendar",
    ]
    list_select_related = ["calendar"]
    search_fields = ["priority", "calendar__name"]


@admin.register(CaseTopic)
class CaseTopicAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "is_active"]
    list_filter = ["is_active"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}


class CaseMessageInline(admin.TabularInline):
    model = CaseMessage
    fields = ["created_at", "visibility", "author", "body"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class CaseStatusChangeInline(admin.TabularInline):
    model = CaseStatusChange
    fields = ["changed_at", "from_status", "to_status", "changed_by"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Case)
class CaseAdmin(ReadOnlyAdmin):
    list_display = [
        "__str__",
        "status",
        "priority",
        "member",
        "account",
        "assignee",
        "created_at",
        "is_breached",
    ]
    list_filter = ["status", "priority", "topic"]
    list_select_related = ["member__user", "account", "assignee"]
    search_fields = ["subject", "member__user__email", "account__name"]
    date_hierarchy = "created_at"
    readonly_fields = ["staff_page"]
    inlines = [CaseMessageInline, CaseStatusChangeInline]

    @admin.display(description="Staff page")
    def staff_page(self, case: Case) -> str:
        url = reverse("portal:case_staff", kwargs={"pk": case.pk})
        return format_html('<a href="{}">Work on this case</a>', url)

    @admin.display(boolean=True, description="SLA breached")
    def is_breached(self, case: Case) -> bool:
        return bool(case.first_response_breached_at or case.resolution_breached_at)


@admin.register(CaseMessage)
class CaseMessageAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "visibility", "author", "created_at"]
    list_filter = ["visibility"]
    list_select_related = ["case", "author"]
    search_fields = ["body", "case__subject"]


@admin.register(CaseAttachment)
class CaseAttachmentAdmin(ReadOnlyAdmin):
    list_display = ["original_name", "case", "content_type", "size", "created_at"]
    list_select_related = ["case"]
    search_fields = ["original_name", "case__subject"]
    # The file field would link to MEDIA_URL, which serves nothing: files go
    # out only through the permission-checked download view.
    exclude = ["file"]


@admin.register(CaseStatusChange)
class CaseStatusChangeAdmin(ReadOnlyAdmin):
    list_display = ["case", "from_status", "to_status", "changed_by", "changed_at"]
    list_filter = ["to_status"]
    list_select_related = ["case", "changed_by"]
    search_fields = ["case__subject"]


@admin.register(EscalationOffer)
class EscalationOfferAdmin(ReadOnlyAdmin):
    list_display = ["topic", "member", "offered_at"]
    list_select_related = ["topic", "member__user"]
    search_fields = ["topic__title", "member__user__email"]
