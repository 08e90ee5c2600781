from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from apps.lifecycle.selectors import (
    access_account_health,
    access_member_health,
    get_account_health_score,
    get_account_score_trend,
    get_health_score,
    get_member_score_trend,
    list_account_member_scores,
    list_accounts_with_visible_health,
    list_score_components,
)
from apps.membership.models import Account, Member

MEMBERS_PER_PAGE = 50


@login_required
@require_GET
def account_health(request: HttpRequest, pk: int) -> HttpResponse:
    """Show an account's health score, its components, trend and members' scores.

    Staff and the account's admins may open it, and anyone else gets a 404. The
    page runs the same number of queries whatever the number of members or
    days: members come a page at a time with their scores.
    """
    try:
        account = access_account_health(user=request.user, account_id=pk)
    except Account.DoesNotExist:
        raise Http404("Account not found.") from None

    score = get_account_health_score(account=account)
    paginator = Paginator(list_account_member_scores(account=account), MEMBERS_PER_PAGE)
    page = paginator.get_page(request.GET.get("page"))
    return render(
        request,
        "lifecycle/account_health.html",
        {
            "account": account,
            "health_score": score,
            "components": list_score_components(score),
            "trend": get_account_score_trend(account=account, current=score),
            "page_obj": page,
        },
    )


@login_required
@require_GET
def member_health(request: HttpRequest, pk: int) -> HttpResponse:
    """Show a member's health score, its components and its daily trend.

    Staff, the admins of the member's account and the member may open it, and
    anyone else gets a 404. A fixed number of queries.
    """
    try:
        member = access_member_health(user=request.user, member_id=pk)
    except Member.DoesNotExist:
        raise Http404(f"No member {pk} whose health you may see.") from None

    score = get_health_score(member=member)
    can_see_account = (
        member.account_id is not None
        and list_accounts_with_visible_health(user=request.user)
        .filter(pk=member.account_id)
        .exists()
    )
    return render(
        request,
        "lifecycle/member_health.html",
        {
            "member": member,
            "health_score": score,
            "components": list_score_components(score),
            "trend": get_member_score_trend(member=member, current=score),
            "can_see_account": can_see_account,
        },
    )


def account_health_url(account: Account) -> str:
    """Return the account's health page, for the link on its admin page."""
    return reverse("lifecycle:account_health", args=[account.pk])


def member_health_url(member: Member) -> str:
    """Return the member's health page, for the link on their admin page."""
    return reverse("lifecycle:member_health", args=[member.pk])
