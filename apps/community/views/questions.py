"""Pages for questions and ideas: lists, accepted solutions, idea status."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from apps.community.models import Flag, Reply, Topic
from apps.community.selectors import (
    access_topic,
    can_moderate_space,
    filter_visible_replies,
    list_visible_spaces,
)
from apps.community.selectors.questions import (
    get_accepted_solution,
    list_ideas,
    list_unanswered_questions,
    list_unsolved_questions,
)
from apps.community.services.questions import (
    accept_solution,
    can_accept_solution,
    set_idea_status,
    unaccept_solution,
)
from apps.membership.models import Member
from apps.membership.selectors import get_member_for_user
from rm6.errors import DomainError

TOPICS_PER_PAGE = 25


def get_topic_page_context(
    request: HttpRequest, topic: Topic, *, member: Member | None
) -> dict:
    """Return the solution, idea and moderation context of the topic page.

    Whether the viewer moderates the space is read once, with the same rule
    that decided which posts `access_topic` lets them see.
    """
    user = request.user
    is_moderator = can_moderate_space(
        member=member, space=topic.space, is_staff=user.is_staff
    )
    context = {
        "accepted_solution": get_accepted_solution(topic),
        "can_accept_solution": can_accept_solution(
            topic=topic, user=user, is_moderator=is_moderator
        ),
        "can_set_idea_status": user.is_authenticated and user.is_staff,
        "idea_statuses": Topic.IdeaStatus.choices,
        "flag_reasons": Flag.Reason.choices,
        "is_moderator": is_moderator,
        "move_spaces": [],
    }
    if is_moderator:
        spaces = list_visible_spaces(member=member, is_staff=user.is_staff)
        context["move_spaces"] = list(spaces.exclude(pk=topic.space_id))
    return context


def _get_topic_or_404(request: HttpRequest, pk: int) -> Topic:
    member = get_member_for_user(request.user)
    try:
        return access_topic(pk=pk, member=member, is_staff=request.user.is_staff)
    except Topic.DoesNotExist:
        raise Http404("Topic not found.") from None


def _render_list(request: HttpRequest, *, topics, title: str, **extra) -> HttpResponse:
    page = Paginator(topics, TOPICS_PER_PAGE).get_page(request.GET.get("page"))
    context = {"page_obj": page, "title": title, **extra}
    return render(request, "community/question_list.html", context)


@require_GET
def unanswered_list(request: HttpRequest) -> HttpResponse:
    member = get_member_for_user(request.user)
    topics = list_unanswered_questions(member=member, is_staff=request.user.is_staff)
    return _render_list(
        request,
        topics=topics,
        title="Unanswered questions",
        description="Questions nobody but their author has replied to yet.",
        empty_message="Every question has a reply.",
    )


@require_GET
def unsolved_list(request: HttpRequest) -> HttpResponse:
    member = get_member_for_user(request.user)
    topics = list_unsolved_questions(member=member, is_staff=request.user.is_staff)
    return _render_list(
        request,
        topics=topics,
        title="Unsolved questions",
        description="Questions without an accepted solution.",
        empty_message="Every question has an accepted solution.",
    )


@require_GET
def idea_list(request: HttpRequest) -> HttpResponse:
    member = get_member_for_user(request.user)
    status = request.GET.get("status", "")
    if status not in Topic.IdeaStatus.values:
        status = ""
    ideas = list_ideas(member=member, is_staff=request.user.is_staff, status=status)
    page = Paginator(ideas, TOPICS_PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "community/idea_list.html",
        {"page_obj": page, "status": status, "statuses": Topic.IdeaStatus.choices},
    )


def _redirect_after(request: HttpRequest, topic: Topic, error: DomainError | None):
    if error is not None:
        if error.code == "forbidden":
            raise PermissionDenied(error.message)
        messages.error(request, error.message)
    return redirect(topic)


@login_required
@require_POST
def solution_accept(request: HttpRequest, pk: int) -> HttpResponse:
    topic = _get_topic_or_404(request, pk)
    # Someone who may not see a hidden reply gets a 404, as on every page.
    replies = filter_visible_replies(
        Reply.objects.filter(topic=topic),
        get_member_for_user(request.user),
        request.user.is_staff,
    )
    try:
        reply = replies.get(pk=request.POST.get("reply"))
    except (Reply.DoesNotExist, ValueError, TypeError):
        raise Http404("Reply not found in this topic.") from None

    error = None
    try:
        if accept_solution(topic=topic, reply=reply, actor_user=request.user):
            messages.success(request, "The reply is now the accepted solution.")
    except DomainError as caught:
        error = caught
    return _redirect_after(request, topic, error)


@login_required
@require_POST
def solution_unaccept(request: HttpRequest, pk: int) -> HttpResponse:
    topic = _get_topic_or_404(request, pk)
    error = None
    try:
        if unaccept_solution(topic=topic, actor_user=request.user):
            messages.success(request, "The question has no accepted solution now.")
    except DomainError as caught:
        error = caught
    return _redirect_after(request, topic, error)


@login_required
@require_POST
def idea_status_update(request: HttpRequest, pk: int) -> HttpResponse:
    if not request.user.is_staff:
        raise PermissionDenied("Only staff set the status of ideas.")
    topic = _get_topic_or_404(request, pk)
    error = None
    try:
        set_idea_status(
            topic=topic,
            status=request.POST.get("status", ""),
            response=request.POST.get("response", ""),
            staff_user=request.user,
        )
        messages.success(request, "The idea's status is saved.")
    except DomainError as caught:
        error = caught
    return _redirect_after(request, topic, error)
