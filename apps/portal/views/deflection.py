"""Suggestions on the case form, their links and buttons, and the staff
deflection report."""

from datetime import UTC, date, datetime, timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from apps.community.search import SearchFilters, log_search_without_results
from apps.membership.selectors import get_member_for_user
from apps.portal.selectors.deflection import get_deflection_report
from apps.portal.selectors.suggestions import (
    MIN_PREFIX_LENGTH,
    list_case_suggestions,
)
from apps.portal.services.deflection import (
    access_attempt,
    access_suggestion,
    mark_suggestion_solved,
    open_suggestion,
    record_suggestions_shown,
)
from rm6.errors import DomainError

MAX_QUERY_LENGTH = 300
DEFAULT_WINDOW_DAYS = 30
MAX_WINDOW_DAYS = 366
# The window needs a day before the start and after the end (defaults and
# the last-day label), so dates outside these bounds cannot build one.
EARLIEST_DAY = date(1900, 1, 1)
LATEST_DAY = date.max - timedelta(days=1)


@login_required
@require_GET
def case_suggestions(request: HttpRequest) -> HttpResponse:
    """Return the suggestions partial for the text typed on the case form.

    Only the member whose attempt the `attempt` parameter names may use it;
    every answer shown is recorded against that attempt.
    """
    if not request.GET.get("attempt", "").strip():
        return HttpResponseBadRequest(
            "The attempt parameter is missing: the new-case page sends it with "
            "each request for suggestions."
        )
    attempt = access_attempt(attempt_id=request.GET.get("attempt"), user=request.user)
    if attempt is None:
        raise PermissionDenied(
            "This case form session is not yours or has expired; reload the "
            "new-case page to start again."
        )
    query = " ".join(request.GET.get("q", "").split())[:MAX_QUERY_LENGTH]

    member = attempt.member
    answers = list_case_suggestions(member=member, text=query)
    items = record_suggestions_shown(attempt=attempt, query=query, answers=answers)
    if not answers and len(query) >= MIN_PREFIX_LENGTH:
        # NOTE: while the member types, each unmatched prefix may be logged
        # once a minute; the gap grouping keeps them as separate queries.
        log_search_without_results(query=query, member=member, filters=SearchFilters())
    return render(
        request,
        "portal/cases/_suggestions.html",
        {"query": query, "items": items},
    )


@login_required
@require_GET
def suggestion_open(request: HttpRequest, pk: int) -> HttpResponse:
    """Stamp the suggestion opened and send the member to the answer."""
    member = get_member_for_user(request.user)
    suggestion = access_suggestion(suggestion_id=pk, member=member)
    if suggestion is None:
        raise PermissionDenied("This suggestion was not shown to you.")
    open_suggestion(suggestion=suggestion)
    if suggestion.article_id:
        return redirect("portal:article", slug=suggestion.article.slug)
    return redirect(suggestion.topic.get_absolute_url())


@login_required
@require_POST
def suggestion_solved(request: HttpRequest, pk: int) -> HttpResponse:
    """Record that the suggestion solved the problem; no case is needed."""
    member = get_member_for_user(request.user)
    suggestion = access_suggestion(suggestion_id=pk, member=member)
    if suggestion is None:
        raise PermissionDenied("This suggestion was not shown to you.")
    mark_suggestion_solved(suggestion=suggestion)
    if request.headers.get("HX-Request"):
        return render(
            request, "portal/cases/_suggestion_solved.html", {"suggestion": suggestion}
        )
    messages.success(request, "Glad that solved it. No case was filed.")
    return redirect("portal:home")


def _parse_day(request: HttpRequest, name: str) -> date | None:
    raw = request.GET.get(name, "").strip()
    if not raw:
        return None
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise DomainError(
            f"Invalid {name} date {raw!r}: use the form YYYY-MM-DD, for example "
            "2026-01-31.",
            field=name,
        ) from None
    if not EARLIEST_DAY <= day <= LATEST_DAY:
        raise DomainError(
            f"The {name} date {raw} is out of range: choose a date from "
            f"{EARLIEST_DAY} to {LATEST_DAY}.",
            field=name,
        )
    return day


def _parse_window(request: HttpRequest) -> tuple[date, date]:
    today = timezone.now().astimezone(UTC).date() + timedelta(days=1)
    start = _parse_day(request, "start")
    end = _parse_day(request, "end") or today
    start = start or end - timedelta(days=DEFAULT_WINDOW_DAYS)
    if start >= end:
        raise DomainError(
            f"The start date {start} is not before the end date {end}; the end "
            "date is excluded, so choose a later end.",
            field="end",
        )
    if (end - start).days > MAX_WINDOW_DAYS:
        raise DomainError(
            f"The window from {start} to {end} is longer than {MAX_WINDOW_DAYS} "
            "days; choose a shorter one.",
            field="start",
        )
    return start, end


def _day_start(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), tzinfo=UTC)


@login_required
@require_GET
def deflection_report(request: HttpRequest) -> HttpResponse:
    """Show deflection % overall and by content, case topic, segment and
    campaign, for attempts started in a window of UTC days."""
    if not request.user.is_staff:
        raise PermissionDenied("The deflection report is for staff only.")
    context = {
        "campaign_id": request.GET.get("campaign", "").strip(),
        "play_id": request.GET.get("play", "").strip(),
        "report_url": reverse("portal:deflection_report"),
    }
    try:
        start, end = _parse_window(request)
    except DomainError as error:
        context["error"] = error.message
        return render(request, "portal/deflection/report.html", context, status=400)
    context.update(
        start=start,
        end=end,
        last_day=end - timedelta(days=1),
        report=get_deflection_report(
            start=_day_start(start),
            end=_day_start(end),
            campaign_id=context["campaign_id"],
            play_id=context["play_id"],
        ),
    )
    return render(request, "portal/deflection/report.html", context)
