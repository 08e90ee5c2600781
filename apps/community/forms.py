from django import forms

from apps.community.models import Topic
from apps.community.services import MAX_BODY_LENGTH, MAX_TITLE_LENGTH
from apps.membership.models import Member
from rm6.errors import DomainError

# Every member may start these kinds; the other kinds are for account admins.
MEMBER_TOPIC_KINDS = (Topic.Kind.QUESTION, Topic.Kind.DISCUSSION, Topic.Kind.IDEA)


def add_domain_error(form: forms.Form, error: DomainError) -> None:
    """Attach a service's error to the field it names, else to the whole form."""
    field = error.field if error.field in form.fields else None
    form.add_error(field, error.message)


class TopicForm(forms.Form):
    title = forms.CharField(max_length=MAX_TITLE_LENGTH)
    body = forms.CharField(
        max_length=MAX_BODY_LENGTH,
        widget=forms.Textarea(attrs={"rows": 8}),
        help_text="Plain text; blank lines start new paragraphs.",
    )
    kind = forms.ChoiceField(choices=Topic.Kind.choices, initial=Topic.Kind.QUESTION)

    def __init__(self, *args, member: Member | None, **kwargs):
        super().__init__(*args, **kwargs)
        if member is None or member.role != Member.Role.ADMIN:
            self.fields["kind"].choices = [
                (value, label)
                for value, label in Topic.Kind.choices
                if value in MEMBER_TOPIC_KINDS
            ]


class ReplyForm(forms.Form):
    body = forms.CharField(
        label="Your reply",
        max_length=MAX_BODY_LENGTH,
        widget=forms.Textarea(attrs={"rows": 5}),
    )
    # Named unlike the service argument, so a service error about the quoted
    # reply shows above the form instead of on this hidden input.
    quote = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)


class TopicEditForm(forms.Form):
    title = forms.CharField(max_length=MAX_TITLE_LENGTH)
    body = forms.CharField(
        max_length=MAX_BODY_LENGTH,
        widget=forms.Textarea(attrs={"rows": 10}),
        help_text="Markdown: **bold**, *italic*, lists, `code` and links.",
    )


class ReplyEditForm(forms.Form):
    body = forms.CharField(
        max_length=MAX_BODY_LENGTH,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text="Markdown: **bold**, *italic*, lists, `code` and links.",
    )


class TopicTagsForm(forms.Form):
    tags = forms.CharField(
        required=False,
        max_length=300,
        help_text="Up to 5 tag names, separated by commas.",
    )

    def clean_tags(self) -> list[str]:
        return [name.strip() for name in self.cleaned_data["tags"].split(",")]
