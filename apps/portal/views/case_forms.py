"""Forms of the case pages; the rules they feed live in the case services."""

from django import forms

from apps.portal.models import Case, CaseMessage, CaseTopic
from apps.portal.selectors.cases import CaseFilters
from apps.portal.services.case_files import clean_original_name
from apps.portal.services.cases import (
    BODY_MAX_LENGTH,
    CSAT_COMMENT_MAX_LENGTH,
    SUBJECT_MAX_LENGTH,
)


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """A file input that takes several files; size and type checks are the
    service's, so that the API applies the same ones."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        kwargs.setdefault("required", False)
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        if isinstance(data, list | tuple):
            return [self._clean_one(d, initial) for d in data]
        return [self._clean_one(data, initial)] if data else []

    def _clean_one(self, data, initial):
        try:
            return super().clean(data, initial)
        except forms.ValidationError as error:
            # Django's "The submitted file is empty." names no file, so name it
            # here, with the same message as the service gives the API.
            if getattr(error, "code", None) == "empty" and getattr(data, "name", ""):
                raise forms.ValidationError(
                    f"{clean_original_name(data.name)} is empty. Attach a file "
                    "with content.",
                    code="empty",
                ) from None
            raise


class CaseForm(forms.Form):
    subject = forms.CharField(
        max_length=SUBJECT_MAX_LENGTH,
        help_text="One line about the problem; answers that may help show below.",
    )
    body = forms.CharField(
        label="Description",
        max_length=BODY_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 8}),
        help_text="What you did, what you expected and what happened instead.",
    )
    topic = forms.ModelChoiceField(
        queryset=CaseTopic.objects.filter(is_active=True),
        required=False,
        empty_label="Not sure",
    )
    priority = forms.ChoiceField(initial=Case.Priority.NORMAL)
    attachments = MultipleFileField(
        help_text="Screenshots, logs or exports: PDF, images (PNG, JPEG, GIF, "
        "WebP), ZIP, Word (.docx), Excel (.xlsx), .txt, .csv or .log."
    )
    attempt = forms.IntegerField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, priorities: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["priority"].choices = [
            (value, label)
            for value, label in Case.Priority.choices
            if value in priorities
        ]


class ReplyForm(forms.Form):
    body = forms.CharField(
        label="Your reply",
        max_length=BODY_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 5}),
    )
    attachments = MultipleFileField()


class StaffReplyForm(ReplyForm):
    body = forms.CharField(
        label="Message",
        max_length=BODY_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 5}),
    )
    visibility = forms.ChoiceField(
        choices=CaseMessage.Visibility.choices,
        initial=CaseMessage.Visibility.PUBLIC,
        widget=forms.RadioSelect,
        help_text="Internal notes are for staff only; the member never sees them.",
    )


class RatingForm(forms.Form):
    score = forms.TypedChoiceField(
        label="How satisfied are you with the support on this case?",
        choices=[(n, str(n)) for n in range(5, 0, -1)],
        coerce=int,
        widget=forms.RadioSelect,
        help_text="5 is very satisfied, 1 is very unsatisfied.",
    )
    comment = forms.CharField(
        required=False,
        max_length=CSAT_COMMENT_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
    )


class CaseUpdateForm(forms.Form):
    """Staff's changes to a case; fields left empty change nothing."""

    status = forms.ChoiceField(
        choices=[("", "Keep"), *Case.Status.choices], required=False
    )
    priority = forms.ChoiceField(
        choices=[("", "Keep"), *Case.Priority.choices], required=False
    )
    assignee = forms.ChoiceField(required=False)

    def __init__(self, *args, assignees, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assignee"].choices = [
            ("", "Keep"),
            ("none", "Nobody"),
            *[(str(user.pk), user.get_full_name() or user.email) for user in assignees],
        ]


class CaseFilterForm(forms.Form):
    """List filters from the query string; invalid values are ignored."""

    q = forms.CharField(
        required=False, label="Search", max_length=200, widget=forms.SearchInput
    )
    status = forms.ChoiceField(
        choices=[("", "Any"), *Case.Status.choices], required=False
    )
    priority = forms.ChoiceField(
        choices=[("", "Any"), *Case.Priority.choices], required=False
    )

    def to_filters(self, **extra) -> CaseFilters:
        data = self.cleaned_data if self.is_valid() else {}
        return CaseFilters(
            status=data.get("status", ""),
            priority=data.get("priority", ""),
            query=data.get("q", ""),
            **extra,
        )


class QueueFilterForm(CaseFilterForm):
    topic = forms.ModelChoiceField(
        queryset=CaseTopic.objects.all(), required=False, empty_label="Any"
    )
    assignee = forms.ChoiceField(required=False)
    breached = forms.ChoiceField(
        choices=[("", "Any"), ("yes", "Breached"), ("no", "Not breached")],
        required=False,
        label="SLA",
    )
    sort = forms.ChoiceField(
        choices=[("due", "Due first"), ("newest", "Newest first")], required=False
    )

    def __init__(self, *args, assignees, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assignee"].choices = [
            ("", "Anyone"),
            ("me", "Me"),
            ("none", "Nobody"),
            *[(str(user.pk), user.get_full_name() or user.email) for user in assignees],
        ]

    def to_filters(self, **extra) -> CaseFilters:
        data = self.cleaned_data if self.is_valid() else {}
        breached = {"yes": True, "no": False}.get(data.get("breached", ""))
        topic = data.get("topic")
        return super().to_filters(
            topic_id=topic.pk if topic else None,
            assignee=data.get("assignee", ""),
            is_breached=breached,
            sort=data.get("sort") or "due",
            **extra,
        )
