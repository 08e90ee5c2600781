"""Admin for Segment sources and for the usage messages held for review."""

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.widgets import AutocompleteSelect
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.text import Truncator

from apps.lifecycle.ingestion.held import discard_held_events, match_held_events
from apps.lifecycle.ingestion.selectors import annotate_held_count
from apps.lifecycle.ingestion.sources import (
    check_event_prefix,
    create_segment_source,
    rotate_segment_write_key,
    update_segment_source,
)
from apps.lifecycle.models import HeldUsageEvent, SegmentIdentity, SegmentSource
from apps.membership.models import Member
from rm6.errors import DomainError


class SegmentSourceForm(forms.ModelForm):
    class Meta:
        model = SegmentSource
        fields = ["name", "event_prefix", "links_identities", "is_active"]

    def clean_event_prefix(self) -> str:
        event_prefix = self.cleaned_data["event_prefix"]
        try:
            check_event_prefix(event_prefix)
        except DomainError as error:
            raise forms.ValidationError(error.message, code=error.code) from None
        return event_prefix


@admin.register(SegmentSource)
class SegmentSourceAdmin(admin.ModelAdmin):
    form = SegmentSourceForm
    list_display = [
        "name",
        "write_key_prefix",
        "event_prefix",
        "links_identities",
        "is_active",
        "last_received_at",
        "held_messages",
        "created_at",
    ]
    list_filter = ["is_active"]
    search_fields = ["name", "write_key_prefix"]
    readonly_fields = [
        "write_key_prefix",
        "last_received_at",
        "held_messages",
        "created_at",
    ]
    actions = ["rotate_write_key"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[SegmentSource]:
        return annotate_held_count(super().get_queryset(request))

    @admin.display(description="held messages", ordering="held_count")
    def held_messages(self, source: SegmentSource) -> str:
        """Show the source's held messages against RM6_SEGMENT_MAX_HELD_MESSAGES."""
        # The add form shows an unsaved source, which has no count.
        held_count = getattr(source, "held_count", 0)
        limit = settings.RM6_SEGMENT_MAX_HELD_MESSAGES
        if limit <= 0:
            return f"{held_count:,} (no limit)"
        text = f"{held_count:,} of {limit:,}"
        if held_count >= limit:
            text += ": limit reached, new unmatched messages are dropped"
        return text

    def save_model(self, request, obj: SegmentSource, form, change: bool) -> None:
        if change:
            update_segment_source(
                source=obj,
                name=obj.name,
                event_prefix=obj.event_prefix,
                is_active=obj.is_active,
                links_identities=obj.links_identities,
            )
            return
        source, write_key = create_segment_source(
            name=obj.name,
            event_prefix=obj.event_prefix,
            is_active=obj.is_active,
            links_identities=obj.links_identities,
        )
        # The admin goes on with `obj` for its log entry and redirect.
        obj.pk = source.pk
        obj.refresh_from_db()
        _show_write_key(request, source, write_key)

    @admin.action(description="Generate a new write key", permissions=["change"])
    def rotate_write_key(self, request: HttpRequest, queryset: QuerySet[SegmentSource]):
        sources = list(queryset[:2])
        if len(sources) != 1:
            self.message_user(
                request,
                "Select exactly one source: each new write key is shown once, "
                "so keys are generated one source at a time.",
                messages.ERROR,
            )
            return
        write_key = rotate_segment_write_key(source=sources[0])
        _show_write_key(request, sources[0], write_key)


def _show_write_key(request: HttpRequest, source: SegmentSource, write_key: str):
    messages.warning(
        request,
        f"Write key for “{source.name}”: {write_key} — copy it now. Only its "
        "digest is stored, so it cannot be shown again. Configure the Segment "
        f"client with this write key and host {settings.SITE_URL}.",
    )


class HeldUsageEventActionForm(admin.helpers.ActionForm):
    """The changelist action bar, with a member box for "Match to member"."""

    member = forms.ModelChoiceField(
        queryset=Member.objects.all(),
        required=False,
        widget=AutocompleteSelect(HeldUsageEvent._meta.get_field("member"), admin.site),
        help_text="For the action “Match to member”.",
    )


@admin.register(HeldUsageEvent)
class HeldUsageEventAdmin(admin.ModelAdmin):
    list_display = [
        "received_at",
        "source",
        "status",
        "message_type",
        "event",
        "user_id",
        "email",
        "member",
    ]
    list_select_related = ["source", "member__user"]
    list_filter = ["status", "source"]
    search_fields = ["user_id", "email", "anonymous_id"]
    date_hierarchy = "received_at"
    action_form = HeldUsageEventActionForm
    actions = ["match_to_member", "discard"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        # Discarding keeps the row, so a retry of the message is not held again.
        return False

    def get_readonly_fields(self, request: HttpRequest, obj=None) -> list[str]:
        # Rows change only through the actions, which record the events.
        return [field.name for field in self.model._meta.fields]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "show_save": False,
            "show_save_and_continue": False,
            "show_save_and_add_another": False,
        }
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description="type")
    def message_type(self, held: HeldUsageEvent) -> str:
        return str(held.message.get("type", ""))

    @admin.display(description="event")
    def event(self, held: HeldUsageEvent) -> str:
        return str(held.message.get("event") or held.message.get("name") or "")

    @admin.action(description="Match to member", permissions=["change"])
    def match_to_member(self, request: HttpRequest, queryset: QuerySet):
        member_id = request.POST.get("member")
        member = Member.objects.filter(pk=member_id).first() if member_id else None
        if member is None:
            self.message_user(
                request,
                "No member selected: choose one in the Member box next to the "
                "action, then run “Match to member” again.",
                messages.ERROR,
            )
            return
        if member.anonymised_at is not None or member.deactivated_at is not None:
            # Usage recorded for them would be personal data of someone who
            # left, and a tied ID would keep attaching new usage to them.
            self.message_user(
                request,
                f"{member} is deactivated or deleted, so no usage is recorded for "
                "them. Choose an active member, or discard the messages.",
                messages.ERROR,
            )
            return

        result = match_held_events(
            held_event_ids=list(queryset.values_list("pk", flat=True)),
            member=member,
            actor=request.user,
        )

        text = f"Recorded {result.recorded} held message(s) as events of {member}."
        linked = result.linked_external_id
        if linked and member.external_id == linked:
            text += (
                f" The member's external ID is now {linked}, so that user's "
                "later messages match by themselves."
            )
        elif linked:
            sources = ", ".join(
                sorted({held.source.name for held in queryset.select_related("source")})
            )
            beside = (
                f", next to the external ID {member.external_id}"
                if member.external_id
                else ""
            )
            text += (
                f" {sources} now ties {linked} to the member{beside}, so that "
                "user's later messages from it match by themselves."
            )
        if result.released:
            text += (
                f" {result.released} more held message(s) of the member were "
                "recorded too."
            )
        if result.duplicates:
            text += (
                f" {result.duplicates} held message(s) had been recorded already, "
                "when the client sent them again, so no second event was created."
            )
        self.message_user(request, text, messages.SUCCESS)

    @admin.action(description="Discard", permissions=["change"])
    def discard(self, request: HttpRequest, queryset: QuerySet):
        discarded = discard_held_events(
            held_event_ids=list(queryset.values_list("pk", flat=True))
        )
        self.message_user(
            request, f"Discarded {discarded} held message(s).", messages.SUCCESS
        )


@admin.register(SegmentIdentity)
class SegmentIdentityAdmin(admin.ModelAdmin):
    """User IDs that sources tied to members whose external ID is another.

    Deleting one unties it: the source's later messages with that user ID are
    held for review again.
    """

    list_display = ["short_user_id", "source", "member", "created_at"]
    list_filter = ["source"]
    list_select_related = ["source", "member__user"]
    search_fields = ["user_id", "member__user__email"]
    readonly_fields = ["source", "user_id", "member", "created_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Identify and alias messages tie IDs, with the checks that keep one
        # from reaching the wrong member; staff match held messages instead.
        return False

    @admin.display(description="user ID", ordering="user_id")
    def short_user_id(self, identity: SegmentIdentity) -> str:
        return Truncator(identity.user_id).chars(40)
