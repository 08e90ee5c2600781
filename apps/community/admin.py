from zoneinfo import ZoneInfo

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from django.utils import timezone

from apps.community.models import (
    CommunityEvent,
    Reply,
    Rsvp,
    Space,
    SpaceMembership,
    Topic,
)
from apps.community.services.access import add_space_member, remove_space_member
from apps.community.services.events import (
    cancel_event,
    localize_wall_time,
    schedule_event,
)
from rm6.errors import DomainError


class SpaceForm(forms.ModelForm):
    class Meta:
        model = Space
        fields = ["name", "slug", "description", "visibility", "account", "position"]

    def clean(self):
        cleaned_data = super().clean()
        visibility = cleaned_data.get("visibility")
        account = cleaned_data.get("account")
        if visibility == Space.Visibility.ACCOUNT and account is None:
            self.add_error(
                "account",
                "A space visible to one account needs that account; choose it "
                "here or pick another visibility.",
            )
        elif visibility != Space.Visibility.ACCOUNT and account is not None:
            self.add_error(
                "account",
                "Only spaces visible to one account have an account; clear this "
                "field or set the visibility to “One account”.",
            )
        return cleaned_data


class SpaceMembershipInline(admin.TabularInline):
    """The members and moderators of a private group.

    SpaceAdmin.save_formset saves these rows through the access services,
    which also grant and revoke the object permissions that pages check.
    """

    model = SpaceMembership
    extra = 0
    fields = ["member", "role", "created_at"]
    readonly_fields = ["created_at"]
    raw_id_fields = ["member"]


@admin.register(Space)
class SpaceAdmin(admin.ModelAdmin):
    form = SpaceForm
    inlines = [SpaceMembershipInline]
    list_display = ["name", "slug", "visibility", "account", "position", "topic_count"]
    list_select_related = ["account"]
    list_filter = ["visibility"]
    search_fields = ["name", "slug", "account__name"]
    prepopulated_fields = {"slug": ["name"]}
    autocomplete_fields = ["account"]
    # post_topic keeps the counter, so an edit here would make it wrong.
    readonly_fields = ["topic_count", "created_at"]

    def save_formset(self, request, form, formset, change):
        if formset.model is not SpaceMembership:
            return super().save_formset(request, form, formset, change)
        memberships = formset.save(commit=False)
        space = form.instance
        try:
            for membership in formset.deleted_objects:
                remove_space_member(space=space, member=membership.member)
            for membership in memberships:
                add_space_member(
                    space=space, member=membership.member, role=membership.role
                )
        except DomainError as error:
            self.message_user(request, error.message, level="error")
        return None


class PostedContentAdmin(admin.ModelAdmin):
    """Topics and replies are posted by members through the community.

    Adding or deleting here would skip the activity event and the counters
    that posting keeps, so staff may only correct what was written.
    """

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Topic)
class TopicAdmin(PostedContentAdmin):
    list_display = [
        "title",
        "space",
        "kind",
        "author",
        "reply_count",
        "last_activity_at",
    ]
    list_select_related = ["space", "author__user"]
    list_filter = ["kind", "space", "created_at"]
    search_fields = ["title", "author__user__email", "author__display_name"]
    date_hierarchy = "created_at"
    fields = [
        "title",
        "kind",
        "body",
        "space",
        "author",
        "reply_count",
        "created_at",
        "last_activity_at",
    ]
    readonly_fields = [
        "space",
        "author",
        "reply_count",
        "created_at",
        "last_activity_at",
    ]


@admin.register(Reply)
class ReplyAdmin(PostedContentAdmin):
    list_display = ["__str__", "topic", "author", "created_at"]
    list_select_related = ["topic", "author__user"]
    list_filter = ["created_at"]
    search_fields = ["body", "author__user__email", "topic__title"]
    date_hierarchy = "created_at"
    fields = ["topic", "author", "body", "created_at"]
    readonly_fields = ["topic", "author", "created_at"]


class CommunityEventForm(forms.ModelForm):
    """Start and end are typed as wall-clock times in the event's time zone."""

    class Meta:
        model = CommunityEvent
        fields = [
            "kind",
            "title",
            "description",
            "space",
            "time_zone",
            "starts_at",
            "ends_at",
            "capacity",
            "join_url",
            "location",
        ]
        help_texts = {
            "starts_at": "Wall-clock time in the event's time zone.",
            "ends_at": "Wall-clock time in the event's time zone.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Show stored UTC instants as the host's wall-clock times.
        if self.instance.pk:
            zone = ZoneInfo(self.instance.time_zone)
            for name in ("starts_at", "ends_at"):
                local = getattr(self.instance, name).astimezone(zone)
                self.initial[name] = local.replace(tzinfo=None)

    def clean(self):
        cleaned_data = super().clean()
        time_zone = cleaned_data.get("time_zone")
        if time_zone:
            for name in ("starts_at", "ends_at"):
                value = cleaned_data.get(name)
                if value is not None:
                    # The form read the value in the server's zone; keep the
                    # wall-clock time and place it in the event's zone.
                    wall_time = timezone.make_naive(value)
                    cleaned_data[name] = localize_wall_time(
                        wall_time, time_zone=time_zone
                    )
        capacity = cleaned_data.get("capacity")
        if capacity is not None and capacity < self.instance.going_count:
            self.add_error(
                "capacity",
                f"{self.instance.going_count} members are already going; set a "
                "capacity at least that high, or leave it empty for no limit.",
            )
        return cleaned_data


class RsvpInline(admin.TabularInline):
    model = Rsvp
    fields = ["member", "status", "created_at", "attended_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        # RSVPs change through the event page, which keeps the seat count.
        return False


@admin.register(CommunityEvent)
class CommunityEventAdmin(admin.ModelAdmin):
    form = CommunityEventForm
    list_display = ["title", "kind", "starts_at", "time_zone", "going_count", "space"]
    list_select_related = ["space"]
    list_filter = ["kind", "space"]
    search_fields = ["title"]
    date_hierarchy = "starts_at"
    inlines = [RsvpInline]
    actions = ["cancel_events"]

    def save_model(self, request: HttpRequest, obj, form, change: bool) -> None:
        if change:
            obj.save()
            return
        data = {name: form.cleaned_data[name] for name in form.Meta.fields}
        created = schedule_event(created_by=request.user, **data)
        obj.pk = created.pk
        obj.created_by = created.created_by

    @admin.action(description="Cancel selected events and notify their RSVPs")
    def cancel_events(self, request: HttpRequest, queryset) -> None:
        notified = sum(
            cancel_event(event=event, cancelled_by=request.user) for event in queryset
        )
        self.message_user(request, f"Cancelled; {notified} members notified.")


# Moderation: flags, the audit log and suspensions. Moderators act through the
# community pages, whose services write the audit rows, so these pages only
# show the records, lift suspensions and recount counters.

from apps.community.models import (  # noqa: E402
    DigestSent,
    Flag,
    ModerationAction,
    Suspension,
)
from apps.community.services.moderation import (  # noqa: E402
    recount_member_stats,
    recount_space,
    recount_topic,
    unsuspend_member,
)
from apps.membership.models import Member  # noqa: E402


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Flag)
class FlagAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "reason", "status", "reporter", "topic", "created_at"]
    list_select_related = ["reporter__user", "topic"]
    list_filter = ["status", "reason", "created_at"]
    search_fields = ["note", "reporter__user__email", "topic__title"]
    raw_id_fields = ["reporter", "topic", "reply", "resolved_by"]


@admin.register(ModerationAction)
class ModerationActionAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "action", "actor", "topic", "reply", "member"]
    list_select_related = ["actor", "topic", "reply", "member__user"]
    list_filter = ["action", "created_at"]
    search_fields = ["reason", "actor__email", "topic__title"]
    date_hierarchy = "created_at"


@admin.register(Suspension)
class SuspensionAdmin(ReadOnlyAdmin):
    list_display = ["member", "starts_at", "ends_at", "lifted_at", "created_by"]
    list_select_related = ["member__user", "created_by"]
    list_filter = ["starts_at", "lifted_at"]
    search_fields = ["member__user__email", "reason"]
    actions = ["lift_suspensions"]

    @admin.action(description="Lift the suspensions of the selected members")
    def lift_suspensions(self, request: HttpRequest, queryset) -> None:
        lifted = 0
        for member_id in set(queryset.values_list("member_id", flat=True)):
            member = Member.objects.get(pk=member_id)
            try:
                lifted += unsuspend_member(member=member, actor_user=request.user)
            except DomainError as error:
                self.message_user(request, error.message, level="error")
                return
        self.message_user(request, f"Lifted {lifted} suspensions.")


@admin.action(description="Recount topics, replies and solutions")
def recount_counters(modeladmin, request: HttpRequest, queryset) -> None:
    """Compare the stored counters with the rows and store the counted values.

    Covers the selected spaces, their topics and the authors posting in them.
    """
    fixed = []
    for space in queryset:
        if recount_space(space, fix=True):
            fixed.append(f"space {space.slug}")
        for topic in Topic.objects.filter(space=space).only("pk"):
            if recount_topic(topic, fix=True):
                fixed.append(f"topic {topic.pk}")
        author_ids = set(
            Topic.objects.filter(space=space).values_list("author_id", flat=True)
        ) | set(
            Reply.objects.filter(topic__space=space).values_list("author_id", flat=True)
        )
        for member in Member.objects.filter(pk__in=author_ids - {None}):
            if recount_member_stats(member, fix=True):
                fixed.append(f"member {member.pk}")
    if fixed:
        modeladmin.message_user(
            request,
            f"Fixed the counters of {len(fixed)} rows: {', '.join(fixed[:20])}.",
        )
    else:
        modeladmin.message_user(request, "Every counter was right.")


SpaceAdmin.actions = [*(SpaceAdmin.actions or []), recount_counters]


@admin.register(DigestSent)
class DigestSentAdmin(ReadOnlyAdmin):
    list_display = ["day", "member", "topic_count", "reply_count", "sent_at"]
    list_select_related = ["member__user"]
    list_filter = ["day"]
    search_fields = ["member__user__email"]
    raw_id_fields = ["member"]

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        # Deleting a row lets the next beat run send that day's digest again.
        return super(ReadOnlyAdmin, self).has_delete_permission(request, obj)
