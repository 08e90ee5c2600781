"""The privacy page, where members give and withdraw their consents."""

import hashlib
import logging
import zoneinfo

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import dateformat, timezone
from django.views.decorators.http import require_http_methods
from django_htmx.http import HttpResponseClientRefresh

from apps.membership.models import ConsentGrant, ConsentPurpose, Member
from apps.membership.selectors import get_member_for_user
from apps.membership.selectors.consent import list_consent_history, list_consent_status
from apps.membership.services.consent import (
    get_member_time_zone,
    grant_consent,
    revoke_consent,
)
from rm6.errors import DomainError

logger = logging.getLogger(__name__)

PAGE_TEMPLATE = "membership/privacy.html"
UPDATE_TEMPLATE = "membership/_consent_update.html"
SOURCE = ConsentGrant.Source.PRIVACY_PAGE


def hash_purpose_text(purpose: ConsentPurpose) -> str:
    """Return the SHA-256 hex digest of a purpose's name and description."""
    text = f"{purpose.name}\n{purpose.description}"
    return hashlib.sha256(text.encode()).hexdigest()


def build_evidence(purpose: ConsentPurpose) -> str:
    """Return the evidence text stored for a grant made on the privacy page."""
    return (
        "Consent given on the privacy page to the text shown: "
        f'"{purpose.name}: {purpose.description}"'
    )


class ConsentForm(forms.Form):
    """One purpose's grant or revoke form on the privacy page."""

    GRANT = "grant"
    REVOKE = "revoke"

    purpose = forms.SlugField(max_length=50)
    action = forms.ChoiceField(choices=[(GRANT, "Grant"), (REVOKE, "Revoke")])
    expires_on = forms.DateField(required=False, label="Valid until (optional)")
    shown_text_sha256 = forms.CharField(required=False, max_length=64)

    def __init__(self, *args, purposes: dict[str, ConsentPurpose], **kwargs):
        super().__init__(*args, **kwargs)
        self.purposes = purposes
        self.selected_purpose: ConsentPurpose | None = None

    def clean(self):
        cleaned_data = super().clean()
        key = cleaned_data.get("purpose")
        if key is None:
            return cleaned_data
        purpose = self.purposes.get(key)
        if purpose is None:
            raise forms.ValidationError(
                f"The purpose {key!r} is not on this page. "
                "Reload the page to see the current purposes."
            )
        self.selected_purpose = purpose

        shown_hash = cleaned_data.get("shown_text_sha256")
        is_grant = cleaned_data.get("action") == self.GRANT
        if is_grant and shown_hash != hash_purpose_text(purpose):
            # The grant's evidence must be the text the member read, so text
            # edited in admin after the page loaded is shown to them first.
            raise forms.ValidationError(
                f"The text of the purpose {purpose.name} changed after this page "
                "loaded. Read the current text and give consent again."
            )
        return cleaned_data


def _get_display_time_zone(member: Member) -> zoneinfo.ZoneInfo:
    try:
        return get_member_time_zone(member)
    except DomainError:
        return zoneinfo.ZoneInfo("UTC")


def _add_domain_error(form: forms.Form, error: DomainError) -> None:
    field = error.field if error.field in form.fields else None
    form.add_error(field, error.message)


def _save_consent(
    request: HttpRequest, *, member: Member, form: ConsentForm
) -> str | None:
    """Grant or revoke the form's purpose and return the message to show.

    Return None, with errors attached to the form, when nothing changed.
    """
    if not form.is_valid():
        return None
    purpose = form.selected_purpose
    assert purpose is not None  # set by a successful clean()

    try:
        if form.cleaned_data["action"] == ConsentForm.REVOKE:
            grant = revoke_consent(
                member=member,
                purpose_key=purpose.key,
                source=SOURCE,
                recorded_by=request.user,
            )
        else:
            grant = grant_consent(
                member=member,
                purpose_key=purpose.key,
                source=SOURCE,
                evidence=build_evidence(purpose),
                expires_on=form.cleaned_data["expires_on"],
                recorded_by=request.user,
            )
    except DomainError as error:
        logger.info(
            "privacy page consent change rejected: member %s, purpose %s, code %s",
            member.pk,
            purpose.key,
            error.code,
        )
        _add_domain_error(form, error)
        return None

    if form.cleaned_data["action"] == ConsentForm.REVOKE:
        if grant is None:
            return f"You had not given consent for {purpose.name}, so nothing changed."
        return f"You withdrew your consent for {purpose.name}."
    if grant.expires_on is None:
        return f"You gave consent for {purpose.name}."
    expires_on = dateformat.format(grant.expires_on, "j F Y")
    return f"You gave consent for {purpose.name} until the end of {expires_on}."


def _render(
    request: HttpRequest,
    template: str,
    *,
    member: Member,
    purpose_key: str | None = None,
    form: ConsentForm | None = None,
    notice: str | None = None,
) -> HttpResponse:
    """Render the page or one purpose's update, with `form` on `purpose_key`."""
    zone = _get_display_time_zone(member)
    rows = [
        {
            "status": consent_status,
            "form": form if consent_status.purpose.key == purpose_key else None,
            "text_sha256": hash_purpose_text(consent_status.purpose),
        }
        for consent_status in list_consent_status(member)
    ]
    context = {
        "member": member,
        "zone": zone,
        "today": timezone.localdate(timezone.now(), zone),
        "rows": rows,
        "history": list_consent_history(member),
        "notice": notice,
    }
    row = next((row for row in rows if row["status"].purpose.key == purpose_key), None)
    context["row"] = row
    if form is not None and row is None:
        # A purpose that is not on the page gets its errors above the list.
        context["page_errors"] = [
            error for field_errors in form.errors.values() for error in field_errors
        ]
    return render(request, template, context)


@login_required
@require_http_methods(["GET", "POST"])
def privacy(request: HttpRequest) -> HttpResponse:
    """Show the member's consents and history, and grant or revoke on POST.

    Without JavaScript, a successful POST redirects back to the page. An htmx
    POST gets the changed purpose back, with the history swapped out of band.
    """
    member = get_member_for_user(request.user)
    if member is None:
        status = 403 if request.method == "POST" else 200
        return render(request, PAGE_TEMPLATE, {"member": None}, status=status)
    if request.method == "GET":
        return _render(request, PAGE_TEMPLATE, member=member)

    purposes = {
        consent_status.purpose.key: consent_status.purpose
        for consent_status in list_consent_status(member)
    }
    form = ConsentForm(request.POST, purposes=purposes)
    notice = _save_consent(request, member=member, form=form)
    if not request.htmx:
        if notice is None:
            purpose_key = form.data.get("purpose")
            return _render(
                request,
                PAGE_TEMPLATE,
                member=member,
                purpose_key=purpose_key,
                form=form,
            )
        messages.success(request, notice)
        return redirect("membership:privacy")

    if form.selected_purpose is None:
        # No purpose on the page matches the request, so the page reloads
        # with the current purposes and the error as a message.
        errors = [error for field in form.errors.values() for error in field]
        messages.error(request, " ".join(errors))
        return HttpResponseClientRefresh()
    return _render(
        request,
        UPDATE_TEMPLATE,
        member=member,
        purpose_key=form.selected_purpose.key,
        # After a change, the row shows an empty form for the new state.
        form=form if notice is None else None,
        notice=notice,
    )
