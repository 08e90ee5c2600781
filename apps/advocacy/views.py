"""Member pages: badges and points, and the advocacy asks to accept or decline."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from apps.advocacy.models import AdvocacyAsk
from apps.advocacy.selectors import (
    access_ask,
    get_points_balance,
    list_member_asks,
    list_member_badges,
)
from apps.advocacy.services import respond_to_ask
from apps.membership.selectors import get_member_for_user
from rm6.errors import DomainError


@login_required
@require_GET
def advocacy_home(request: HttpRequest) -> HttpResponse:
    """Show the member's badges and points balance."""
    member = get_member_for_user(request.user)
    context = {"member": member, "badges": [], "points_balance": 0}
    if member is not None:
        context["badges"] = list_member_badges(member=member)
        context["points_balance"] = get_points_balance(member=member)
    return render(request, "advocacy/home.html", context)


@login_required
@require_GET
def ask_list(request: HttpRequest) -> HttpResponse:
    """Show the member's advocacy asks, open ones first."""
    member = get_member_for_user(request.user)
    asks = list_member_asks(member=member) if member is not None else []
    return render(request, "advocacy/asks.html", {"member": member, "asks": asks})


def _respond(request: HttpRequest, pk: int, *, accept: bool) -> HttpResponse:
    member = get_member_for_user(request.user)
    if member is None:
        raise Http404("Advocacy ask not found.")
    try:
        ask = access_ask(member=member, ask_id=pk)
        ask = respond_to_ask(ask=ask, member=member, accept=accept)
    except AdvocacyAsk.DoesNotExist:
        raise Http404("Advocacy ask not found.") from None
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("advocacy:asks")

    kind = ask.get_kind_display().lower()
    if accept:
        messages.success(request, f"Thank you: you accepted the {kind} request.")
    else:
        messages.info(request, f"You declined the {kind} request.")
    return redirect("advocacy:asks")


@login_required
@require_POST
def ask_accept(request: HttpRequest, pk: int) -> HttpResponse:
    """Accept one of the member's open asks."""
    return _respond(request, pk, accept=True)


@login_required
@require_POST
def ask_decline(request: HttpRequest, pk: int) -> HttpResponse:
    """Decline one of the member's open asks."""
    return _respond(request, pk, accept=False)
