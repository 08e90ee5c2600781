"""Onboarding pages: the member's paths, manual ticks, and account progress."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from apps.membership.models import Account, Member
from apps.membership.selectors import get_member_for_user
from apps.portal.models import OnboardingPath, OnboardingStep
from apps.portal.selectors.onboarding import (
    StepStatus,
    access_account_progress,
    access_member_path,
    access_member_step,
    get_member_of_account,
    list_account_members_for_progress,
    list_account_path_summaries,
    list_member_path_progress,
    list_member_progress_rows,
    list_progress_accounts,
)
from apps.portal.services.onboarding import (
    mark_step_done,
    mark_step_undone,
    sync_member_progress,
)
from rm6.errors import DomainError

ACCOUNTS_PER_PAGE = 25
MEMBERS_PER_PAGE = 25
# The `action` values the manual-step form sends: tick, or untick.
STEP_ACTIONS = ("done", "undo")


def _require_member(request: HttpRequest) -> Member:
    member = get_member_for_user(request.user)
    if member is None:
        raise Http404("Onboarding paths belong to members; this user has none.")
    return member


@login_required
@require_GET
def path_list(request: HttpRequest) -> HttpResponse:
    """List the paths assigned to the member with their progress."""
    member = get_member_for_user(request.user)
    if member is None:
        if request.user.is_staff:
            return redirect("portal:onboarding_accounts")
        raise Http404("Onboarding paths belong to members; this user has none.")

    sync_member_progress(member=member)
    return render(
        request,
        "portal/onboarding/path_list.html",
        {"member": member, "paths": list_member_path_progress(member=member)},
    )


@login_required
@require_GET
def path_detail(request: HttpRequest, slug: str) -> HttpResponse:
    """Show one assigned path step by step; manual steps can be ticked here."""
    member = _require_member(request)
    try:
        path = access_member_path(member=member, slug=slug)
    except OnboardingPath.DoesNotExist:
        raise Http404(f"No onboarding path {slug!r} assigned to you.") from None

    sync_member_progress(member=member)
    progress = list_member_path_progress(member=member, path=path)
    if not progress:
        raise Http404(f"The onboarding path {slug!r} has no published steps yet.")
    return render(
        request,
        "portal/onboarding/path_detail.html",
        {"member": member, "progress": progress[0]},
    )


@login_required
@require_POST
def step_toggle(request: HttpRequest, pk: int) -> HttpResponse:
    """Tick a manual step on `action=done`, or untick it on `action=undo`.

    Any other action is rejected with a 400 and changes nothing.

    htmx requests get the step's list item back; others are redirected to
    the path page.
    """
    member = _require_member(request)
    try:
        step = access_member_step(member=member, step_id=pk)
    except OnboardingStep.DoesNotExist:
        raise Http404(f"No onboarding step {pk} assigned to you.") from None

    action = request.POST.get("action", "")
    if action not in STEP_ACTIONS:
        return HttpResponseBadRequest(
            f"Invalid action {action!r} for onboarding step {step.pk}: "
            f"send action=done to tick the step or action=undo to untick it.",
            content_type="text/plain; charset=utf-8",
        )

    try:
        if action == "undo":
            mark_step_undone(member=member, step=step)
        else:
            mark_step_done(member=member, step=step)
    except DomainError as error:
        messages.error(request, error.message)

    if request.htmx:
        progress = list_member_path_progress(member=member, path=step.path)
        status = next(
            (s for p in progress for s in p.steps if s.step.pk == step.pk),
            StepStatus(step=step, progress=None),
        )
        return render(
            request,
            "portal/onboarding/_step.html",
            {"status": status, "path_progress": progress[0] if progress else None},
        )
    return redirect("portal:onboarding_path", slug=step.path.slug)


# Account progress, for the account's CSM, staff and account admins -------------


@login_required
@require_GET
def account_list(request: HttpRequest) -> HttpResponse:
    """List the accounts whose onboarding progress the user may see.

    Staff see every account, or with `?mine=1` only the ones they manage.
    An account admin is redirected to their own account.
    """
    accounts = list_progress_accounts(user=request.user)
    only_mine = request.user.is_staff and request.GET.get("mine") == "1"
    if only_mine:
        accounts = accounts.filter(owner=request.user)
    if not request.user.is_staff:
        account = accounts.first()
        if account is None:
            raise Http404("You may not see any account's onboarding progress.")
        return redirect("portal:onboarding_account", pk=account.pk)

    page = Paginator(accounts, ACCOUNTS_PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "portal/onboarding/account_list.html",
        {"page_obj": page, "only_mine": only_mine},
    )


def _access_account_or_404(request: HttpRequest, pk: int) -> Account:
    try:
        return access_account_progress(user=request.user, account_id=pk)
    except Account.DoesNotExist:
        raise Http404(f"No account {pk} whose progress you may see.") from None


@login_required
@require_GET
def account_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """Show an account's progress per path and per member, one page of members."""
    account = _access_account_or_404(request, pk)

    summaries = list_account_path_summaries(account=account)
    page = Paginator(
        list_account_members_for_progress(account=account), MEMBERS_PER_PAGE
    ).get_page(request.GET.get("page"))
    paths = [summary.path for summary in summaries]
    rows = [
        (row.member, [row.cell(path.pk) for path in paths])
        for row in list_member_progress_rows(members=list(page.object_list))
    ]
    return render(
        request,
        "portal/onboarding/account_detail.html",
        {
            "account": account,
            "summaries": summaries,
            "paths": paths,
            "rows": rows,
            "page_obj": page,
        },
    )


@login_required
@require_GET
def account_member_detail(
    request: HttpRequest, pk: int, member_id: int
) -> HttpResponse:
    """Show one member's steps on each assigned path, for the account's CSM."""
    account = _access_account_or_404(request, pk)
    try:
        member = get_member_of_account(account=account, member_id=member_id)
    except Member.DoesNotExist:
        raise Http404(f"No active member {member_id} in this account.") from None

    return render(
        request,
        "portal/onboarding/account_member.html",
        {
            "account": account,
            "subject": member,
            "is_own_progress": member.user_id == request.user.pk,
            "paths": list_member_path_progress(member=member),
        },
    )
