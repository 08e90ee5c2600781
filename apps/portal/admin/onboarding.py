"""Admin for onboarding paths and steps, progress (read only) and use-case hubs."""

from django import forms
from django.contrib import admin
from django.contrib.contenttypes.models import ContentType
from django.db.models import Count, Q, QuerySet

from apps.lifecycle import registry
from apps.portal.models import (
    HubItem,
    OnboardingPath,
    OnboardingProgress,
    OnboardingStep,
    PathCompletion,
    UseCaseHub,
)
from apps.portal.selectors.hubs import HUB_CONTENT_KINDS
from apps.portal.services.onboarding import schedule_step_backfill

# The content a visit step may point at, by "app_label.model": each records
# an event with the content as subject when a member opens it.
VISIT_TARGET_KINDS = (
    "portal.article",
    "portal.course",
    "portal.lesson",
    "portal.usecasehub",
    "community.topic",
    "community.communityevent",
)
# Path slugs that the onboarding URLs use for other pages.
RESERVED_PATH_SLUGS = ("accounts", "steps")


def _content_type_choices(labels) -> QuerySet[ContentType]:
    query = Q(pk__in=[])
    for label in labels:
        app_label, model = label.split(".")
        query |= Q(app_label=app_label, model=model)
    return ContentType.objects.filter(query).order_by("app_label", "model")


def _check_target_exists(
    form: forms.ModelForm, *, type_field: str, id_field: str, allowed
) -> None:
    content_type = form.cleaned_data.get(type_field)
    object_id = form.cleaned_data.get(id_field)
    if content_type is None or object_id is None:
        return
    label = f"{content_type.app_label}.{content_type.model}"
    if label not in allowed:
        form.add_error(
            type_field,
            f"{label} cannot be used here; choose one of {', '.join(allowed)}.",
        )
        return
    model = content_type.model_class()
    if model is None or not model.objects.filter(pk=object_id).exists():
        form.add_error(
            id_field,
            f"No {content_type.name} with id {object_id} exists; enter the id of an "
            "existing one, as shown in its admin page address.",
        )


class OnboardingStepForm(forms.ModelForm):
    """A step whose completion settings match its mode.

    Event steps need a registered kind, visit steps an existing article,
    course, lesson, hub, topic or event, and manual steps neither.
    """

    completion = forms.ChoiceField(
        choices=OnboardingStep.Completion.choices,
        required=False,
        initial=OnboardingStep.Completion.EVENT,
        help_text="How the step gets done; empty means by an event.",
    )

    class Meta:
        model = OnboardingStep
        fields = [
            "path",
            "title",
            "description",
            "completion",
            "completion_kind",
            "target_type",
            "target_id",
            "url",
            "position",
            "is_published",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "target_type" in self.fields:
            self.fields["target_type"].queryset = _content_type_choices(
                VISIT_TARGET_KINDS
            )

    def clean_completion(self) -> str:
        return self.cleaned_data.get("completion") or OnboardingStep.Completion.EVENT

    def clean_completion_kind(self) -> str:
        return self.cleaned_data["completion_kind"].strip()

    def clean(self):
        cleaned = super().clean()
        completion = cleaned.get("completion")
        kind = cleaned.get("completion_kind", "")
        if completion == OnboardingStep.Completion.EVENT:
            if registry.get_kind(kind) is None:
                self.add_error(
                    "completion_kind",
                    forms.ValidationError(
                        "%(kind)s is not a registered activity event kind, so no "
                        "event would ever complete this step. Use a registered kind "
                        "such as community.question_posted or membership.signed_in, "
                        "or a product.* kind such as product.report_exported.",
                        code="unknown_kind",
                        params={"kind": repr(kind)},
                    ),
                )
            cleaned["target_type"] = None
            cleaned["target_id"] = None
        elif completion == OnboardingStep.Completion.VISIT:
            if not cleaned.get("target_type") or cleaned.get("target_id") is None:
                self.add_error(
                    "target_id",
                    "A step done by visiting content needs the content: choose "
                    "its type and enter its id.",
                )
            _check_target_exists(
                self,
                type_field="target_type",
                id_field="target_id",
                allowed=VISIT_TARGET_KINDS,
            )
            cleaned["completion_kind"] = ""
        else:
            cleaned["completion_kind"] = ""
            cleaned["target_type"] = None
            cleaned["target_id"] = None
        return cleaned


class OnboardingPathForm(forms.ModelForm):
    class Meta:
        model = OnboardingPath
        fields = [
            "title",
            "slug",
            "description",
            "roles",
            "segments",
            "accounts",
            "is_published",
            "position",
        ]

    def clean_slug(self) -> str:
        slug = self.cleaned_data["slug"]
        if slug in RESERVED_PATH_SLUGS:
            raise forms.ValidationError(
                "%(slug)s is used by another onboarding page address; choose "
                "another slug.",
                params={"slug": repr(slug)},
            )
        return slug


class OnboardingStepInline(admin.StackedInline):
    model = OnboardingStep
    form = OnboardingStepForm
    extra = 0
    ordering = ["position", "id"]
    autocomplete_fields = []


def _backfill_changed_steps(steps) -> None:
    """Count past events for steps that were added, published or retargeted."""
    schedule_step_backfill(step_ids=[step.pk for step in steps if step.is_published])


@admin.register(OnboardingPath)
class OnboardingPathAdmin(admin.ModelAdmin):
    form = OnboardingPathForm
    inlines = [OnboardingStepInline]
    list_display = [
        "title",
        "slug",
        "is_published",
        "position",
        "step_count",
        "completion_count",
    ]
    list_editable = ["is_published", "position"]
    list_filter = ["is_published"]
    search_fields = ["title", "slug"]
    prepopulated_fields = {"slug": ["title"]}
    filter_horizontal = ["accounts"]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                published_steps=Count(
                    "steps", filter=Q(steps__is_published=True), distinct=True
                ),
                completions_count=Count("completions", distinct=True),
            )
        )

    @admin.display(description="Published steps", ordering="published_steps")
    def step_count(self, path: OnboardingPath) -> int:
        return path.published_steps

    @admin.display(description="Completions", ordering="completions_count")
    def completion_count(self, path: OnboardingPath) -> int:
        return path.completions_count

    def save_formset(self, request, form, formset, change):
        super().save_formset(request, form, formset, change)
        if formset.model is OnboardingStep:
            changed = [f.instance for f in formset.forms if f.has_changed()]
            _backfill_changed_steps([s for s in changed if s.pk])

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change and form.has_changed():
            # Filters or publication changed: members newly assigned the path
            # get their past events counted.
            _backfill_changed_steps(obj.steps.all())


@admin.register(OnboardingStep)
class OnboardingStepAdmin(admin.ModelAdmin):
    form = OnboardingStepForm
    list_display = [
        "title",
        "path",
        "completion",
        "completion_kind",
        "position",
        "is_published",
    ]
    list_display_links = ["title"]
    list_editable = ["position", "is_published"]
    list_filter = ["path", "completion", "is_published"]
    list_select_related = ["path"]
    search_fields = ["title", "completion_kind"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        _backfill_changed_steps([obj])


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written by the progress services only; staff read them here."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(OnboardingProgress)
class OnboardingProgressAdmin(ReadOnlyAdmin):
    list_display = ["member", "step", "path", "how", "completed_at", "recorded_at"]
    list_filter = ["how", "step__path"]
    list_select_related = ["member__user", "step__path"]
    search_fields = ["member__user__email", "step__title"]
    date_hierarchy = "completed_at"

    @admin.display(description="Path", ordering="step__path__title")
    def path(self, progress: OnboardingProgress) -> OnboardingPath:
        return progress.step.path


@admin.register(PathCompletion)
class PathCompletionAdmin(ReadOnlyAdmin):
    list_display = ["member", "path", "completed_at"]
    list_filter = ["path"]
    list_select_related = ["member__user", "path"]
    search_fields = ["member__user__email", "path__title"]
    date_hierarchy = "completed_at"


# Use-case hubs ----------------------------------------------------------------


class HubItemForm(forms.ModelForm):
    class Meta:
        model = HubItem
        fields = ["content_type", "object_id", "note", "position"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["content_type"].queryset = _content_type_choices(HUB_CONTENT_KINDS)

    def clean(self):
        cleaned = super().clean()
        _check_target_exists(
            self,
            type_field="content_type",
            id_field="object_id",
            allowed=tuple(HUB_CONTENT_KINDS),
        )
        return cleaned


class HubItemInline(admin.TabularInline):
    model = HubItem
    form = HubItemForm
    extra = 1
    ordering = ["position", "id"]


@admin.register(UseCaseHub)
class UseCaseHubAdmin(admin.ModelAdmin):
    inlines = [HubItemInline]
    list_display = ["title", "slug", "is_published", "position", "item_count"]
    list_editable = ["is_published", "position"]
    list_filter = ["is_published"]
    search_fields = ["title", "slug", "summary"]
    prepopulated_fields = {"slug": ["title"]}

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(items_count=Count("items"))

    @admin.display(description="Items", ordering="items_count")
    def item_count(self, hub: UseCaseHub) -> int:
        return hub.items_count


@admin.register(HubItem)
class HubItemAdmin(admin.ModelAdmin):
    form = HubItemForm
    list_display = ["hub", "content_type", "object_id", "position"]
    list_filter = ["hub", "content_type"]
    list_select_related = ["hub", "content_type"]
    search_fields = ["hub__title", "note"]

    def get_fields(self, request, obj=None):
        return ["hub", *HubItemForm.Meta.fields]
