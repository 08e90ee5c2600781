"""The staff backlog of content gaps."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from apps.portal.models import ContentGap
from apps.portal.selectors.gaps import list_content_gaps, list_gap_owners
from apps.portal.services.gaps import update_content_gap
from apps.portal.services.knowledge import draft_article_from_gap
from rm6.errors import DomainError

GAPS_PER_PAGE = 25


def _require_staff(request: HttpRequest) -> None:
    if not request.user.is_staff:
        raise PermissionDenied("The content-gap backlog is for staff only.")


class GapFilterForm(forms.Form):
    status = forms.ChoiceField(
        choices=[("", "Any status"), *ContentGap.Status.choices], required=False
    )
    owner = forms.ModelChoiceField(
        queryset=list_gap_owners(), required=False, empty_label="Any owner"
    )


class GapUpdateForm(forms.Form):
    status = forms.ChoiceField(choices=ContentGap.Status.choices)
    owner = forms.ModelChoiceField(
        queryset=list_gap_owners(), required=False, empty_label="No owner"
    )
    due_on = forms.DateField(
        required=False, widget=forms.DateInput(attrs={"type": "date"})
    )


@login_required
@require_GET
def gap_list(request: HttpRequest) -> HttpResponse:
    """List the backlog, filtered by status and owner."""
    _require_staff(request)
    filters = GapFilterForm(request.GET or None)
    status, owner_id = "", None
    if filters.is_valid():
        status = filters.cleaned_data["status"]
        owner = filters.cleaned_data["owner"]
        owner_id = owner.pk if owner else None
    paginator = Paginator(
        list_content_gaps(status=status, owner_id=owner_id), GAPS_PER_PAGE
    )
    page_obj = paginator.get_page(request.GET.get("page"))
    owners = list(list_gap_owners())
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "portal/gaps/gap_list.html",
        {
            "filters": filters,
            "page_obj": page_obj,
            "owners": owners,
            "statuses": ContentGap.Status.choices,
            "query_string": query.urlencode(),
        },
    )


@login_required
@require_POST
def gap_update(request: HttpRequest, pk: int) -> HttpResponse:
    """Set a gap's status, owner and due date."""
    _require_staff(request)
    gap = get_object_or_404(ContentGap, pk=pk)
    form = GapUpdateForm(request.POST)
    if not form.is_valid():
        errors = "; ".join(
            f"{name}: {' '.join(messages_)}" for name, messages_ in form.errors.items()
        )
        messages.error(request, f"The gap was not changed. {errors}")
        return redirect("portal:gaps")
    owner = form.cleaned_data["owner"]
    try:
        update_content_gap(
            gap_id=gap.pk,
            status=form.cleaned_data["status"],
            owner_id=owner.pk if owner else None,
            due_on=form.cleaned_data["due_on"],
        )
    except DomainError as error:
        messages.error(request, f"The gap was not changed. {error.message}")
    else:
        messages.success(request, f"Saved “{gap.title}”.")
    next_url = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(next_url)
    return redirect("portal:gaps")


@login_required
@require_POST
def gap_draft_article(request: HttpRequest, pk: int) -> HttpResponse:
    """Draft an unpublished article for the gap and open it for editing."""
    _require_staff(request)
    gap = get_object_or_404(ContentGap, pk=pk)
    article = draft_article_from_gap(gap_id=gap.pk, drafted_by=request.user)
    messages.success(
        request, "A draft article was created; publishing it closes the gap."
    )
    return redirect("portal:article_edit", slug=article.slug)
