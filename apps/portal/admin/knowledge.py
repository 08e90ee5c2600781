"""Admin screens of the knowledge base, case deflection and content gaps.

Article saves go through the knowledge services, so an admin edit saves a
version and refreshes the search vector like the staff edit page does.
Deflection rows are records of what members did and are read-only here.
"""

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.portal.models import (
    Article,
    ArticleFeedback,
    ArticleReviewReminder,
    ArticleVersion,
    CaseAttempt,
    ContentGap,
    Suggestion,
)
from apps.portal.services.gaps import validate_gap_update
from apps.portal.services.knowledge import (
    ArticleInput,
    create_article,
    mark_article_reviewed,
    update_article,
)
from rm6.errors import DomainError


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class ArticleAdminForm(forms.ModelForm):
    class Meta:
        model = Article
        fields = [
            "title",
            "slug",
            "summary",
            "body",
            "audience",
            "owner",
            "review_interval_days",
            "is_published",
        ]

    def clean_review_interval_days(self) -> int:
        days = self.cleaned_data["review_interval_days"]
        if days < 1:
            raise forms.ValidationError(
                "A review interval of %(days)s days is not valid; use 1 or more.",
                params={"days": days},
            )
        return days


@admin.register(Article)
class ArticleAdmin(admin.ModelAdmin):
    form = ArticleAdminForm
    list_display = [
        "title",
        "audience",
        "is_published",
        "owner",
        "review_due_on",
        "helpful_count",
        "not_helpful_count",
    ]
    list_filter = ["is_published", "audience"]
    list_select_related = ["owner"]
    search_fields = ["title", "slug", "summary"]
    readonly_fields = [
        "reviewed_on",
        "review_due_on",
        "published_at",
        "helpful_count",
        "not_helpful_count",
        "view_count",
        "created_at",
        "updated_at",
    ]
    fields = [
        "title",
        "slug",
        "summary",
        "body",
        "audience",
        "owner",
        "review_interval_days",
        "is_published",
        *readonly_fields,
    ]
    prepopulated_fields = {"slug": ["title"]}
    actions = ["mark_reviewed"]

    def save_model(self, request: HttpRequest, obj: Article, form, change) -> None:
        data = ArticleInput(
            title=obj.title,
            summary=obj.summary,
            body=obj.body,
            audience=obj.audience,
            owner_id=obj.owner_id,
            review_interval_days=obj.review_interval_days,
            is_published=obj.is_published,
        )
        if change:
            saved = update_article(
                article_id=obj.pk, data=data, edited_by=request.user, note="Admin edit"
            )
            if form.initial.get("slug") != obj.slug:
                Article.objects.filter(pk=obj.pk).update(slug=obj.slug)
        else:
            saved = create_article(
                data=data, edited_by=request.user, slug=obj.slug, note="Created"
            )
        obj.pk = saved.pk
        obj.refresh_from_db()

    @admin.action(description="Mark reviewed today")
    def mark_reviewed(self, request: HttpRequest, queryset: QuerySet) -> None:
        for article_id in queryset.values_list("pk", flat=True):
            mark_article_reviewed(article_id=article_id, reviewed_by=request.user)
        self.message_user(request, "The selected articles are marked reviewed.")


@admin.register(ArticleVersion)
class ArticleVersionAdmin(ReadOnlyAdmin):
    list_display = ["article", "number", "edited_by", "note", "created_at"]
    list_select_related = ["article", "edited_by"]
    search_fields = ["article__title", "note"]


@admin.register(ArticleFeedback)
class ArticleFeedbackAdmin(ReadOnlyAdmin):
    list_display = ["article", "member", "helpful", "updated_at"]
    list_filter = ["helpful"]
    list_select_related = ["article", "member__user"]
    search_fields = ["article__title", "comment"]


@admin.register(ArticleReviewReminder)
class ArticleReviewReminderAdmin(ReadOnlyAdmin):
    list_display = ["owner", "sent_on", "article_count"]
    list_select_related = ["owner"]
    search_fields = ["owner__email"]


@admin.register(CaseAttempt)
class CaseAttemptAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "member",
        "started_at",
        "outcome",
        "topic",
        "segment",
        "campaign_id",
        "play_id",
    ]
    list_filter = ["outcome", "segment"]
    list_select_related = ["member__user", "topic"]
    search_fields = ["query", "campaign_id", "play_id"]
    date_hierarchy = "started_at"


@admin.register(Suggestion)
class SuggestionAdmin(ReadOnlyAdmin):
    list_display = [
        "attempt",
        "article",
        "topic",
        "rank",
        "shown_at",
        "opened_at",
        "helpful_at",
    ]
    list_select_related = ["attempt", "article", "topic"]
    search_fields = ["query", "article__title", "topic__title"]


class ContentGapAdminForm(forms.ModelForm):
    class Meta:
        model = ContentGap
        fields = ["title", "status", "owner", "due_on", "article"]

    def clean(self) -> dict:
        data = super().clean()
        gap = self.instance
        owner = data.get("owner")
        try:
            validate_gap_update(
                gap=gap,
                status=data.get("status", gap.status),
                owner_id=owner.pk if owner else None,
                due_on=data.get("due_on"),
            )
        except DomainError as error:
            self.add_error(
                error.field if error.field in self.fields else None, error.message
            )
        return data


@admin.register(ContentGap)
class ContentGapAdmin(admin.ModelAdmin):
    form = ContentGapAdminForm
    list_display = [
        "title",
        "source",
        "occurrences",
        "status",
        "owner",
        "due_on",
        "last_seen_at",
    ]
    list_filter = ["status", "source"]
    list_select_related = ["owner", "topic", "article"]
    search_fields = ["title", "key"]
    fields = [
        "title",
        "status",
        "owner",
        "due_on",
        "article",
        "key",
        "source",
        "topic",
        "sample_queries",
        "occurrences",
        "first_seen_at",
        "last_seen_at",
        "created_at",
        "updated_at",
    ]
    readonly_fields = [
        "key",
        "source",
        "topic",
        "sample_queries",
        "occurrences",
        "first_seen_at",
        "last_seen_at",
        "created_at",
        "updated_at",
    ]

    def has_add_permission(self, request, obj=None) -> bool:
        # Gaps come from the grouping task, keyed by what they group.
        return False
