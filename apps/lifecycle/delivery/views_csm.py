"""The staff task list of CSM tasks."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from apps.lifecycle.delivery.csm_tasks import (
    access_csm_task,
    close_csm_task,
    get_other_csm_task_counts,
    list_csm_task_owners,
    list_csm_tasks,
)
from apps.lifecycle.delivery.forms import CsmTaskCloseForm, CsmTaskFilterForm
from apps.lifecycle.models import CsmTask
from apps.membership.models import Account
from rm6.errors import DomainError

TASKS_PER_PAGE = 25


def _check_staff(request: HttpRequest) -> None:
    if not request.user.is_staff:
        raise PermissionDenied("Only staff may see CSM tasks.")


@login_required
@require_GET
def csm_task_list(request: HttpRequest) -> HttpResponse:
    """List CSM tasks for staff, by default their own open ones, due first."""
    _check_staff(request)
    form = CsmTaskFilterForm(request.GET or None, owners=list_csm_task_owners())
    filters = form.get_filters(user=request.user)

    account = None
    if filters["account_id"] is not None:
        account = Account.objects.filter(pk=filters["account_id"]).first()
    paginator = Paginator(list_csm_tasks(**filters), TASKS_PER_PAGE)
    page = paginator.get_page(request.GET.get("page"))

    # Plays assign tasks to the account's CSM, so staff who own no accounts
    # see an empty default list. The empty state then counts the tasks that
    # the other filters match, with a link to them.
    other_counts = None
    if paginator.count == 0 and filters["owner_id"] == request.user.pk:
        other_counts = get_other_csm_task_counts(
            owner_id=request.user.pk,
            status=filters["status"],
            account_id=filters["account_id"],
        )
    return render(
        request,
        "lifecycle/delivery/csm_tasks.html",
        {
            "form": form,
            "page_obj": page,
            "account": account,
            "other_counts": other_counts,
            "list_url": request.get_full_path(),
        },
    )


@login_required
@require_POST
def csm_task_close(request: HttpRequest, pk: int) -> HttpResponse:
    """Mark a task done or dismissed; htmx gets the updated row back."""
    _check_staff(request)
    try:
        task = access_csm_task(user=request.user, task_id=pk)
    except CsmTask.DoesNotExist:
        raise Http404("CSM task not found.") from None
    form = CsmTaskCloseForm(request.POST)
    if not form.is_valid():
        return HttpResponseBadRequest(
            "Invalid status: send status=done or status=dismissed."
        )

    error = None
    try:
        close_csm_task(
            task=task, status=form.cleaned_data["status"], closed_by=request.user
        )
    except DomainError as exception:
        error = exception.message

    if request.htmx:
        context = {"task": task, "error": error, "is_swapped": True}
        return render(request, "lifecycle/delivery/_csm_task.html", context)
    if error:
        messages.error(request, error)
    else:
        messages.success(request, f"{task.title}: {task.get_status_display()}.")
    next_url = form.cleaned_data["next"]
    if next_url and url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(next_url)
    return redirect("delivery:csm_tasks")
