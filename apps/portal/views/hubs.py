"""Use-case hub pages: the list of hubs and one hub's curated items."""

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from apps.membership.selectors import get_member_for_user
from apps.portal.models import UseCaseHub
from apps.portal.selectors.hubs import (
    HUB_CONTENT_KINDS,
    access_hub,
    get_hub_body,
    list_hub_entries,
    list_visible_hubs,
)
from apps.portal.services.hubs import record_hub_view

HUBS_PER_PAGE = 20
ITEMS_PER_PAGE = 30


@login_required
@require_GET
def hub_list(request: HttpRequest) -> HttpResponse:
    hubs = list_visible_hubs(is_staff=request.user.is_staff)
    page = Paginator(hubs, HUBS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "portal/hubs/hub_list.html", {"page_obj": page})


@login_required
@require_GET
def hub_detail(request: HttpRequest, slug: str) -> HttpResponse:
    """Show the hub's items the viewer may see, optionally of one kind.

    Opening the hub records `portal.hub_viewed` for members, which completes
    onboarding steps done by visiting it.
    """
    is_staff = request.user.is_staff
    try:
        hub = access_hub(slug=slug, is_staff=is_staff)
    except UseCaseHub.DoesNotExist:
        raise Http404(f"No hub {slug!r}.") from None
    kind = request.GET.get("kind", "")
    if kind and kind not in HUB_CONTENT_KINDS:
        kind = ""

    member = get_member_for_user(request.user)
    entries = list_hub_entries(hub=hub, member=member, is_staff=is_staff, kind=kind)
    page = Paginator(entries, ITEMS_PER_PAGE).get_page(request.GET.get("page"))
    if member is not None:
        record_hub_view(member=member, hub=hub)
    return render(
        request,
        "portal/hubs/hub_detail.html",
        {
            "hub": hub,
            "body": get_hub_body(hub),
            "page_obj": page,
            "kind": kind,
            "kinds": HUB_CONTENT_KINDS.items(),
            "query": f"kind={kind}&" if kind else "",
        },
    )
