from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from apps.lifecycle.selectors import (
    get_health_score,
    get_member_score_trend,
    list_score_components,
)
from apps.membership.panels import build_home_panels
from apps.membership.selectors import get_member_for_user
from apps.membership.selectors.sso import has_unconfirmed_email
from apps.portal.selectors import home as selectors
from apps.portal.selectors.hubs import get_content_url
from apps.portal.selectors.onboarding import (
    list_account_path_summaries,
    list_member_path_progress,
    list_progress_accounts,
)
from apps.portal.services.onboarding import sync_member_progress


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """Show the member's onboarding, next steps, cases, topics, score and events.

    The panels' order follows the member's lifecycle stage, and account
    admins, contributors and champions get a panel of their own. The page
    runs the same number of queries however long the member's history is:
    each selector below is a fixed number of queries.
    """
    member = get_member_for_user(request.user)
    if member is None:
        if request.user.is_staff:
            return _staff_home(request)
        return render(request, "portal/no_member.html")

    # Steps done by events recorded since the last periodic sync show at once.
    sync_member_progress(member=member)
    layout = selectors.get_home_layout(member=member)
    paths = list_member_path_progress(member=member)
    next_course = selectors.get_next_course(member=member)
    next_article = selectors.get_next_article(member=member)
    open_cases = selectors.list_open_cases(member=member)
    watched_topics = selectors.list_watched_topics(member=member)
    events = selectors.list_home_events(member=member)
    health_score = get_health_score(member=member)
    panels = build_home_panels(member)
    limit = selectors.HOME_LIST_LIMIT

    is_new = not any(p.done_count for p in paths) and not (
        open_cases or watched_topics or health_score
    )
    return render(
        request,
        "portal/home.html",
        {
            "member": member,
            "account": member.account,
            "is_email_unconfirmed": (
                member.account_id is None and has_unconfirmed_email(user=request.user)
            ),
            "layout": layout,
            "headline": selectors.get_home_headline(layout=layout, paths=paths),
            "is_new": is_new,
            "paths": paths,
            "next_course": next_course,
            "next_course_url": (
                get_content_url("portal.course", next_course) if next_course else ""
            ),
            "next_article": next_article,
            "next_article_url": (
                get_content_url("portal.article", next_article) if next_article else ""
            ),
            "open_cases": open_cases[:limit],
            "has_more_cases": len(open_cases) > limit,
            "watched_topics": watched_topics[:limit],
            "has_more_topics": len(watched_topics) > limit,
            "events": events,
            "health_score": health_score,
            "health_components": list_score_components(health_score),
            "health_trend": get_member_score_trend(member=member, current=health_score),
            "recognition": panels.get("recognition"),
            "team_paths": (
                list_account_path_summaries(account=member.account)
                if layout.shows_team
                else None
            ),
            "unanswered": (
                selectors.list_unanswered_for_member(member=member)
                if layout.shows_unanswered
                else None
            ),
        },
    )


STAFF_ACCOUNT_LIMIT = 10


def _staff_home(request: HttpRequest) -> HttpResponse:
    """Show staff the accounts they manage as CSM, with links to their progress."""
    accounts = list_progress_accounts(user=request.user).filter(owner=request.user)
    owned = list(accounts[: STAFF_ACCOUNT_LIMIT + 1])
    return render(
        request,
        "portal/staff_home.html",
        {
            "owned_accounts": owned[:STAFF_ACCOUNT_LIMIT],
            "has_more_accounts": len(owned) > STAFF_ACCOUNT_LIMIT,
        },
    )
