from django import forms
from django.contrib import admin
from django.http import HttpRequest

from apps.advocacy.models import PointsEntry
from apps.advocacy.services import award_points


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
