"""Support case pages: members' lists, the case form, the case thread, and
staff's queue and case page.

Every case is fetched through `apps.portal.selectors.cases`, so a case the
user may not see returns 404 whether it exists or not.
"""

import logging

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.community.forms import add_domain_error
from apps.community.models import Topic
from apps.membership.selectors import get_member_for_user
from apps.portal.models import Case, CaseAttachment, CaseMessage
from apps.portal.selectors.cases import (
    access_case,
    access_case_attachment,
    access_escalatable_topic,
    get_admin_account,
    list_case_attachments,
    list_case_messages,
    list_cases,
    list_member_priorities,
    list_staff_assignees,
)
from apps.portal.services import cases as case_services
from apps.portal.services.case_files import format_bytes
from apps.portal.services.deflection import start_attempt
from apps.portal.views.case_forms import (
    CaseFilterForm,
    CaseForm,
    CaseUpdateForm,
    QueueFilterForm,
    RatingForm,
    ReplyForm,
    StaffReplyForm,
)
from rm6.errors import DomainError

logger = logging.getLogger(__name__)

CASES_PER_PAGE = 25
NO_MEMBER_MESSAGE = (
    "Filing a case needs a member profile, and your user has none. Staff "
    "work on cases from the support queue."
)


def _get_case_or_404(request: HttpRequest, pk: int) -> Case:
    try:
        return access_case(user=request.user, case_id=pk)
    except Case.DoesNotExist:
        raise Http404("Case not found.") from None


def _require_staff(request: HttpRequest) -> None:
    # Non-staff get 404, like a case they may not see.
    if not request.user.is_staff:
        raise Http404("Page not found.")


def _page(request: HttpRequest, cases):
    return Paginator(cases, CASES_PER_PAGE).get_page(request.GET.get("page"))


# Member pages ---------------------------------------------------------------


@login_required
@require_GET
def case_list(request: HttpRequest) -> HttpResponse:
    """List the cases the signed-in member filed."""
    form = CaseFilterForm(request.GET)
    cases = list_cases(user=request.user, filters=form.to_filters(), scope="mine")
    return render(
        request,
        "portal/cases/list.html",
        {
            "page_obj": _page(request, cases),
            "filter_form": form,
            "scope": "mine",
            "admin_account": get_admin_account(request.user),
        },
    )


@login_required
@require_GET
def account_case_list(request: HttpRequest) -> HttpResponse:
    """List every case of the account the signed-in member administers."""
    account = get_admin_account(request.user)
    if account is None:
        raise Http404("Page not found.")
    form = CaseFilterForm(request.GET)
    cases = list_cases(user=request.user, filters=form.to_filters(), scope="account")
    return render(
        request,
        "portal/cases/list.html",
        {
            "page_obj": _page(request, cases),
            "filter_form": form,
            "scope": "account",
            "admin_account": account,
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def case_new(request: HttpRequest) -> HttpResponse:
    """Show the case form, with suggestions while typing, and file the case.

    `?topic=ID` prefills it from a community question its author escalates.
    """
    member = get_member_for_user(request.user)
    if member is None:
        messages.info(request, NO_MEMBER_MESSAGE)
        return redirect("portal:case_queue" if request.user.is_staff else "portal:home")
    if not case_services.can_file_cases(member):
        # Show why instead of a form that could only fail, and start no attempt.
        return render(
            request,
            "portal/cases/new.html",
            {"no_account_message": case_services.NO_ACCOUNT_MESSAGE},
            status=403 if request.method == "POST" else 200,
        )
    if request.method == "POST":
        # A resubmitted form goes to the case it filed, even when the
        # question it escalated can no longer be escalated.
        filed = case_services.get_case_filed_from_attempt(
            member=member, attempt_id=request.POST.get("attempt")
        )
        if filed is not None:
            messages.info(
                request, f"Case #{filed.pk} was already filed from this form."
            )
            return redirect("portal:case_detail", pk=filed.pk)
    source_topic = None
    topic_id = request.POST.get("source_topic") or request.GET.get("topic")
    if topic_id:
        escalated = case_services.get_case_escalating_topic(
            member=member, topic_id=topic_id
        )
        if escalated is not None:
            messages.info(
                request,
                f"This question is already with support as case #{escalated.pk}.",
            )
            return redirect("portal:case_detail", pk=escalated.pk)
        try:
            source_topic = access_escalatable_topic(
                topic_id=int(topic_id), member=member
            )
        except (Topic.DoesNotExist, ValueError):
            raise Http404("Question not found.") from None

    priorities = list_member_priorities(member)
    if request.method == "POST":
        form = CaseForm(request.POST, request.FILES, priorities=priorities)
        if form.is_valid():
            data = form.cleaned_data
            try:
                case, created = case_services.get_or_file_case(
                    member=member,
                    subject=data["subject"],
                    body=data["body"],
                    priority=data["priority"],
                    topic=data["topic"],
                    uploads=data["attachments"],
                    attempt_id=data["attempt"],
                    source_topic=source_topic,
                )
            except DomainError as error:
                add_domain_error(form, error)
            else:
                if created:
                    messages.success(request, f"Case #{case.pk} is filed.")
                else:
                    messages.info(
                        request, f"Case #{case.pk} was already filed from this form."
                    )
                return redirect("portal:case_detail", pk=case.pk)
    else:
        attempt = start_attempt(member=member)
        initial = {"attempt": attempt.pk}
        if source_topic is not None:
            url = request.build_absolute_uri(source_topic.get_absolute_url())
            initial |= {
                "subject": source_topic.title[
                    : Case._meta.get_field("subject").max_length
                ],
                "body": case_services.build_escalation_body(
                    question_body=source_topic.body, url=url
                ),
            }
        form = CaseForm(initial=initial, priorities=priorities)
    return render(
        request,
        "portal/cases/new.html",
        {
            "form": form,
            "source_topic": source_topic,
            "suggestions_url": reverse("portal:case_suggestions"),
            "max_file_size": format_bytes(settings.RM6_CASE_ATTACHMENT_MAX_BYTES),
            "max_total_size": format_bytes(
                settings.RM6_CASE_ATTACHMENTS_MAX_TOTAL_BYTES
            ),
        },
    )


@login_required
@require_GET
def case_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """Show a case's public thread, files, reply form and rating to members."""
    case = _get_case_or_404(request, pk)
    if request.user.is_staff:
        return redirect("portal:case_staff", pk=pk)
    return _render_detail(request, case)


def _render_detail(
    request: HttpRequest,
    case: Case,
    *,
    reply_form: ReplyForm | None = None,
    rating_form: RatingForm | None = None,
    status: int = 200,
) -> HttpResponse:
    member = get_member_for_user(request.user)
    thread = list(list_case_messages(case=case, user=request.user))
    files = list(list_case_attachments(case=case, user=request.user))
    context = {
        "case": case,
        "thread": thread,
        "case_files": [a for a in files if a.message_id is None],
        "reply_form": reply_form or ReplyForm(),
        "rating_form": rating_form or RatingForm(),
        "is_filer": member is not None and member.pk == case.member_id,
        "can_rate": (
            member is not None
            and member.pk == case.member_id
            and case.status in case_services.RATED_STATUSES
            and case.csat_score is None
        ),
        "can_mark_solved": Case.Status.SOLVED in case_services.TRANSITIONS[case.status],
    }
    return render(request, "portal/cases/detail.html", context, status=status)


@login_required
@require_POST
def case_reply(request: HttpRequest, pk: int) -> HttpResponse:
    case = _get_case_or_404(request, pk)
    form = ReplyForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            case_services.reply_to_case(
                case=case,
                author=request.user,
                body=form.cleaned_data["body"],
                uploads=form.cleaned_data["attachments"],
            )
        except DomainError as error:
            add_domain_error(form, error)
        else:
            messages.success(request, "Your reply is sent.")
            return redirect("portal:case_detail", pk=pk)
    return _render_detail(request, case, reply_form=form, status=400)


@login_required
@require_POST
def case_mark_solved(request: HttpRequest, pk: int) -> HttpResponse:
    case = _get_case_or_404(request, pk)
    try:
        case_services.change_case_status(
            case=case, status=Case.Status.SOLVED, actor=request.user
        )
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"Case #{pk} is marked solved.")
    return redirect("portal:case_detail", pk=pk)


@login_required
@require_POST
def case_rate(request: HttpRequest, pk: int) -> HttpResponse:
    case = _get_case_or_404(request, pk)
    form = RatingForm(request.POST)
    if form.is_valid():
        try:
            case_services.rate_case(
                case=case,
                member=get_member_for_user(request.user),
                score=form.cleaned_data["score"],
                comment=form.cleaned_data["comment"],
            )
        except DomainError as error:
            add_domain_error(form, error)
        else:
            messages.success(request, "Thank you for rating the support.")
            return redirect("portal:case_detail", pk=pk)
    return _render_detail(request, case, rating_form=form, status=400)


@login_required
@require_GET
def case_attachment(request: HttpRequest, pk: int, attachment_pk: int) -> FileResponse:
    """Send a case file as a download, never rendered inline by the browser."""
    try:
        attachment = access_case_attachment(
            user=request.user, case_id=pk, attachment_id=attachment_pk
        )
    except CaseAttachment.DoesNotExist:
        raise Http404("File not found.") from None
    try:
        handle = attachment.file.open("rb")
    except FileNotFoundError:
        logger.error("case attachment file missing: attachment %s", attachment.pk)
        raise Http404("File not found.") from None
    response = FileResponse(
        handle,
        as_attachment=True,
        filename=attachment.original_name,
        content_type=attachment.content_type,
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, no-store"
    return response


# Staff pages ----------------------------------------------------------------


@login_required
@require_GET
def case_queue(request: HttpRequest) -> HttpResponse:
    """Staff's queue of every case, due first by default."""
    _require_staff(request)
    assignees = list(list_staff_assignees())
    form = QueueFilterForm(request.GET, assignees=assignees)
    cases = list_cases(user=request.user, filters=form.to_filters(), scope="all")
    return render(
        request,
        "portal/cases/queue.html",
        {"page_obj": _page(request, cases), "filter_form": form},
    )


@login_required
@require_GET
def case_staff(request: HttpRequest, pk: int) -> HttpResponse:
    _require_staff(request)
    return _render_staff(request, _get_case_or_404(request, pk))


def _render_staff(
    request: HttpRequest,
    case: Case,
    *,
    reply_form: StaffReplyForm | None = None,
    update_form: CaseUpdateForm | None = None,
    status: int = 200,
) -> HttpResponse:
    assignees = list(list_staff_assignees())
    thread = list(list_case_messages(case=case, user=request.user))
    files = list(list_case_attachments(case=case, user=request.user))
    context = {
        "case": case,
        "thread": thread,
        "case_files": [a for a in files if a.message_id is None],
        "reply_form": reply_form or StaffReplyForm(),
        "update_form": update_form or CaseUpdateForm(assignees=assignees),
        "history": list(case.status_changes.select_related("changed_by")),
        "next_statuses": sorted(case_services.TRANSITIONS[case.status]),
        "internal": CaseMessage.Visibility.INTERNAL,
    }
    return render(request, "portal/cases/staff_detail.html", context, status=status)


@login_required
@require_POST
def case_staff_reply(request: HttpRequest, pk: int) -> HttpResponse:
    _require_staff(request)
    case = _get_case_or_404(request, pk)
    form = StaffReplyForm(request.POST, request.FILES)
    if form.is_valid():
        is_internal = form.cleaned_data["visibility"] == CaseMessage.Visibility.INTERNAL
        try:
            case_services.reply_to_case(
                case=case,
                author=request.user,
                body=form.cleaned_data["body"],
                is_internal=is_internal,
                uploads=form.cleaned_data["attachments"],
            )
        except DomainError as error:
            add_domain_error(form, error)
        else:
            done = "Internal note added." if is_internal else "Reply sent."
            messages.success(request, done)
            return redirect("portal:case_staff", pk=pk)
    return _render_staff(request, case, reply_form=form, status=400)


@login_required
@require_POST
def case_staff_update(request: HttpRequest, pk: int) -> HttpResponse:
    """Apply staff's status, priority and assignee changes, each as asked."""
    _require_staff(request)
    case = _get_case_or_404(request, pk)
    assignees = list(list_staff_assignees())
    form = CaseUpdateForm(request.POST, assignees=assignees)
    if not form.is_valid():
        return _render_staff(request, case, update_form=form, status=400)
    data = form.cleaned_data
    try:
        if data["assignee"]:
            assignee = None
            if data["assignee"] != "none":
                assignee = get_user_model().objects.get(pk=int(data["assignee"]))
            case = case_services.assign_case(
                case=case, assignee=assignee, actor=request.user
            )
        if data["priority"]:
            case = case_services.change_case_priority(
                case=case, priority=data["priority"], actor=request.user
            )
        if data["status"]:
            case = case_services.change_case_status(
                case=case, status=data["status"], actor=request.user
            )
    except DomainError as error:
        add_domain_error(form, error)
        case = _get_case_or_404(request, pk)
        return _render_staff(request, case, update_form=form, status=400)
    messages.success(request, f"Case #{pk} is updated.")
    return redirect("portal:case_staff", pk=pk)
