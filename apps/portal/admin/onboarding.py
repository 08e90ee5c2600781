from django import forms
from django.contrib import admin

from apps.lifecycle import registry
from apps.portal.models import OnboardingStep


class OnboardingStepForm(forms.ModelForm):
    class Meta:
        model = OnboardingStep
        fields = [
            "path",
            "title",
            "description",
            "completion_kind",
            "url",
            "position",
            "is_published",
        ]

    def clean_completion_kind(self) -> str:
        kind = self.cleaned_data["completion_kind"].strip()
        if registry.get_kind(kind) is None:
            raise forms.ValidationError(
                "%(kind)s is not a registered activity event kind, so no event "
                "would ever complete this step. Use a registered kind such as "
                "community.question_posted or membership.signed_in, or a "
                "product.* kind such as product.report_exported.",
                code="unknown_kind",
                params={"kind": repr(kind)},
            )
        return kind


@admin.register(OnboardingStep)
class OnboardingStepAdmin(admin.ModelAdmin):
    form = OnboardingStepForm
    list_display = ["title", "path", "completion_kind", "position", "is_published"]
    list_display_links = ["title"]
    list_editable = ["position", "is_published"]
    list_filter = ["path", "is_published"]
    search_fields = ["title", "completion_kind"]
