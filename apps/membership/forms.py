from django import forms

from apps.membership.models import Member
from apps.membership.services.profiles import (
    TEXT_LIMITS,
    VISIBILITY_FIELDS,
    list_locale_choices,
)
from rm6.errors import DomainError


def add_domain_error(form: forms.Form, error: DomainError) -> None:
    """Attach a service's error to the field it names, else to the whole form."""
    field = error.field if error.field in form.fields else None
    form.add_error(field, error.message)


class ProfileForm(forms.Form):
    display_name = forms.CharField(
        max_length=TEXT_LIMITS["display_name"],
        required=False,
        help_text="Shown on your posts and profile. Left empty, the part of "
        "your email address before the @ is shown.",
    )
    headline = forms.CharField(
        max_length=TEXT_LIMITS["headline"],
        required=False,
        help_text="For example your job title.",
    )
    bio = forms.CharField(
        max_length=TEXT_LIMITS["bio"],
        required=False,
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text=f"Plain text, up to {TEXT_LIMITS['bio']:,} characters.",
    )
    time_zone = forms.CharField(
        max_length=64,
        widget=forms.TextInput(attrs={"list": "time-zones", "autocomplete": "off"}),
        help_text="Your time zone, as an IANA name such as Europe/Paris or "
        "America/New_York.",
    )
    locale = forms.ChoiceField(label="Language", choices=list_locale_choices)
    email_notifications = forms.ChoiceField(
        label="Email notifications",
        choices=Member.EmailNotifications.choices,
        widget=forms.RadioSelect,
    )
    in_app_notifications = forms.BooleanField(
        label="Show notifications in the hub", required=False
    )
    show_headline = forms.BooleanField(label="Show my headline", required=False)
    show_bio = forms.BooleanField(label="Show my bio", required=False)
    show_account = forms.BooleanField(label="Show my company's name", required=False)
    show_activity = forms.BooleanField(
        label="Show a link to my recent posts", required=False
    )

    PROFILE_FIELDS = ("display_name", "headline", "bio")
    SETTINGS_FIELDS = (
        "time_zone",
        "locale",
        "email_notifications",
        "in_app_notifications",
    )

    @classmethod
    def initial_for(cls, member: Member) -> dict:
        names = [*cls.PROFILE_FIELDS, *cls.SETTINGS_FIELDS, *VISIBILITY_FIELDS]
        return {name: getattr(member, name) for name in names}

    def profile_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.PROFILE_FIELDS]

    def settings_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.SETTINGS_FIELDS]

    def visibility_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in VISIBILITY_FIELDS]


class DeleteAccountForm(forms.Form):
    email = forms.CharField(
        label="Your email address",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )

    def __init__(self, *args, expected_email: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.expected_email = expected_email

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip()
        if email.casefold() != self.expected_email.casefold():
            raise forms.ValidationError(
                "That is not the email address of your account; type "
                f"{self.expected_email} to confirm."
            )
        return email
