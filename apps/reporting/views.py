from datetime import UTC, date, datetime, timedelta

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render
from django.views.decorators.http import require_GET

from apps.reporting.selectors import (
    MAU_DAYS,
    count_active_members,
    get_mean_dau_mau,
    list_active_members_by_segment,
    list_daily_activity,
)
from apps.reporting.selectors.freshness import list_data_freshness
from apps.reporting.selectors.portal import get_portal_kpis
from rm6.errors import DomainError

DEFAULT_WINDOW_DAYS = 30
# Bounds the daily series, which has one row per day of the window.
MAX_WINDOW_DAYS = 366


def _parse_date(params: QueryDict, name: str) -> date | None:
    raw = params.get(name, "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise DomainError(
            f"Invalid {name} date {raw!r}: use the form YYYY-MM-DD, "
            "for example 2025-01-31.",
            field=name,
        ) from None


def parse_window(params: QueryDict, *, today: date) -> tuple[date, date]:
    """Return the `[start, end)` dates from GET parameters, with defaults.

    Without parameters the window is the DEFAULT_WINDOW_DAYS full UTC days
    before today. With only one of the two dates, the other is that many
    days away from it.
    """
    start = _parse_date(params, "start")
    end = _parse_date(params, "end")
    if start is None and end is None:
        end = today
    if start is None:
        start = end - timedelta(days=DEFAULT_WINDOW_DAYS)
    if end is None:
        end = start + timedelta(days=DEFAULT_WINDOW_DAYS)

    if start >= end:
        raise DomainError(
            f"The start date {start} is not before the end date {end}. "
            "The end date is excluded from the window, so choose a later end.",
            field="end",
        )
    length = (end - start).days
    if length > MAX_WINDOW_DAYS:
        raise DomainError(
            f"The window from {start} to {end} is {length} days long; "
            f"the maximum is {MAX_WINDOW_DAYS} days.",
            field="start",
        )
    return start, end


@login_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    """Show activity and the portal KPIs for a window, and data freshness now."""
    if not request.user.is_staff:
        raise PermissionDenied("Reporting is for staff only.")

    now = datetime.now(UTC)
    today = now.date()
    try:
        start, end = parse_window(request.GET, today=today)
    except DomainError as error:
        context = {
            "error": error,
            "start_value": request.GET.get("start", ""),
            "end_value": request.GET.get("end", ""),
        }
        return render(request, "reporting/dashboard.html", context, status=400)

    daily = list_daily_activity(start=start, end=end)
    mean_dau_mau = get_mean_dau_mau(daily)
    segments = list_active_members_by_segment(start=start, end=end)
    data_freshness = list_data_freshness(now=now)
    context = {
        "start": start,
        "end": end,
        "last_day": end - timedelta(days=1),
        "start_value": start.isoformat(),
        "end_value": end.isoformat(),
        "active_members": count_active_members(start=start, end=end),
        "daily": daily,
        "max_daily_active": max(d.active_members for d in daily),
        "latest": daily[-1],
        "mean_dau_mau_percent": (
            None if mean_dau_mau is None else round(mean_dau_mau * 100, 1)
        ),
        "segments": segments,
        "mau_days": MAU_DAYS,
        "kpis": get_portal_kpis(start=start, end=end, today=today),
        "data_freshness": data_freshness,
        "stale_sources": [row for row in data_freshness if row.is_stale],
    }
    return render(request, "reporting/dashboard.html", context)
