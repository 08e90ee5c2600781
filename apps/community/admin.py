from django import forms
from django.contrib import admin
from django.http import HttpRequest

from apps.community.models import Reply, Space, Topic


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


@admin.register(Space)
class SpaceAdmin(admin.ModelAdmin):
    form = SpaceForm
    list_display = ["name", "slug", "visibility", "account", "position", "topic_count"]
    list_select_related = ["account"]
    list_filter = ["visibility"]
    search_fields = ["name", "slug", "account__name"]
    prepopulated_fields = {"slug": ["name"]}
    autocomplete_fields = ["account"]
    # post_topic keeps the counter, so an edit here would make it wrong.
    readonly_fields = ["topic_count", "created_at"]


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
