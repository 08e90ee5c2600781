"""The community search page and the "similar questions" fragment."""

from datetime import date

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from apps.community.models import Topic
from apps.community.search import (
    SearchFilters,
    list_similar_questions,
    log_search_without_results,
    search_posts,
)
from apps.community.selectors.access import get_viewer, list_visible_spaces

SOLVED_CHOICES = {"yes": True, "no": False}


def _parse_date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _parse_page(value: str | None) -> int:
    try:
        return max(int(value or 1), 1)
    except ValueError:
        return 1


def _read_filters(request: HttpRequest) -> SearchFilters:
    kind = request.GET.get("kind", "")
    return SearchFilters(
        space=request.GET.get("space", "").strip(),
        kind=kind if kind in Topic.Kind.values else "",
        is_solved=SOLVED_CHOICES.get(request.GET.get("solved", "")),
        tag=request.GET.get("tag", "").strip(),
        date_from=_parse_date(request.GET.get("from")),
        date_to=_parse_date(request.GET.get("to")),
    )


@require_GET
def search(request: HttpRequest) -> HttpResponse:
    """Search the topics and replies the viewer may read."""
    member, is_staff = get_viewer(request.user)
    filters = _read_filters(request)
    page = search_posts(
        query=request.GET.get("q", ""),
        member=member,
        is_staff=is_staff,
        filters=filters,
        page=_parse_page(request.GET.get("page")),
    )
    if page.query and page.page == 1 and not page.results:
        log_search_without_results(query=page.query, member=member, filters=filters)

    query_without_page = request.GET.copy()
    query_without_page.pop("page", None)
    context = {
        "search_page": page,
        "filters": filters,
        "spaces": list_visible_spaces(member=member, is_staff=is_staff).only(
            "name", "slug"
        ),
        "kinds": Topic.Kind.choices,
        "query_string": query_without_page.urlencode(),
    }
    return render(request, "community/search.html", context)


@require_GET
def similar_questions(request: HttpRequest) -> HttpResponse:
    """Return the questions like the title being written, as an htmx fragment."""
    member, is_staff = get_viewer(request.user)
    title = request.GET.get("q") or request.GET.get("title", "")
    questions = list_similar_questions(title=title, member=member, is_staff=is_staff)
    return render(
        request, "community/_similar_questions.html", {"questions": questions}
    )
