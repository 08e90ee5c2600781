from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from apps.community.selectors import list_recent_posts_by_member
from apps.lifecycle.selectors import (
    get_health_score,
    get_member_score_trend,
    list_score_components,
)
from apps.membership.selectors import get_member_for_user
from apps.portal.selectors.onboarding import get_onboarding_checklist

RECENT_POSTS_LIMIT = 5


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """Show the member's account, onboarding, recent posts and health score.

    The page runs the same number of queries however many steps, posts or
    events the member has: each selector below is one or two queries.
    """
    member = get_member_for_user(request.user)
    if member is None:
        if request.user.is_staff:
            return render(request, "portal/staff_home.html")
        return render(request, "portal/no_member.html")

    checklist = get_onboarding_checklist(member=member)
    done_count = sum(1 for item in checklist if item.is_done)
    health_score = get_health_score(member=member)
    return render(
        request,
        "portal/home.html",
        {
            "member": member,
            "account": member.account,
            "checklist": checklist,
            "checklist_done_count": done_count,
            "recent_posts": list_recent_posts_by_member(
                member=member, limit=RECENT_POSTS_LIMIT
            ),
            "health_score": health_score,
            "health_components": list_score_components(health_score),
            "health_trend": get_member_score_trend(member=member),
        },
    )
