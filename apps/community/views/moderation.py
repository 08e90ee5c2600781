"""Moderation pages: flag forms, the moderator queue, the audit log, actions."""

from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.community.models import Flag, Reply, Space, Topic
from apps.community.selectors import filter_visible_replies, filter_visible_topics
from apps.community.selectors.moderation import (
    list_flagged_posts,
    list_moderation_actions,
)
from apps.community.services import moderation
from apps.membership.models import Member
from apps.membership.selectors import get_member_for_user
from apps.membership.selectors.roles import has_capability
from rm6.errors import DomainError

FLAGGED_POSTS_PER_PAGE = 20
ACTIONS_PER_PAGE = 50
POST_ACTIONS = {
    "hide": moderation.hide_post,
    "unhide": moderation.unhide_post,
    "delete": moderation.delete_post,
    "undelete": moderation.undelete_post,
    "dismiss": moderation.dismiss_flags,
}
TOPIC_ACTIONS = {
    "lock": moderation.lock_topic,
    "unlock": moderation.unlock_topic,
}
DONE_MESSAGES = {
    "hide": "The post is hidden.",
    "unhide": "The post is visible again.",
    "delete": "The post is deleted.",
    "undelete": "The post is restored.",
    "dismiss": "The flags are dismissed.",
    "lock": "The topic is locked.",
    "unlock": "The topic is open for replies again.",
    "move": "The topic is moved.",
    "merge": "The topics are merged.",
}


def _require_moderator(request: HttpRequest) -> None:
    if not has_capability(request.user, "moderate_community"):
        raise PermissionDenied("The moderator pages are for community moderators.")


def _get_post_or_404(request: HttpRequest, *, kind: str, pk: int) -> Topic | Reply:
    if kind not in ("topic", "reply"):
        raise Http404(f"Unknown post kind {kind!r}.")
    member = get_member_for_user(request.user)
    is_staff = request.user.is_staff
    if kind == "topic":
        posts = filter_visible_topics(
            Topic.objects.select_related("space"), member, is_staff
        )
    else:
        posts = filter_visible_replies(
            Reply.objects.select_related("topic__space"), member, is_staff
        )
    try:
        return posts.get(pk=pk)
    except (Topic.DoesNotExist, Reply.DoesNotExist):
        raise Http404("Post not found.") from None


def _next_url(request: HttpRequest, post: Topic | Reply) -> str:
    next_url = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return next_url
    topic = post if isinstance(post, Topic) else post.topic
    if topic.is_hidden or topic.deleted_at is not None:
        return reverse("community:moderation_queue")
    return post.get_absolute_url()


def _run(request: HttpRequest, post, action: str, call) -> HttpResponse:
    try:
        changed = call()
    except DomainError as error:
        if error.code == "forbidden":
            raise PermissionDenied(error.message) from None
        messages.error(request, error.message)
    else:
        if changed:
            messages.success(request, DONE_MESSAGES[action])
        else:
            messages.info(request, "Nothing to change.")
    return redirect(_next_url(request, post))


@login_required
@require_POST
def post_action(request: HttpRequest, kind: str, pk: int, action: str):
    """Apply one moderation action to a topic or reply, from a POST form."""
    post = _get_post_or_404(request, kind=kind, pk=pk)
    reason = request.POST.get("reason", "")
    if action in POST_ACTIONS:
        service = POST_ACTIONS[action]
        return _run(
            request,
            post,
            action,
            lambda: service(post=post, actor_user=request.user, reason=reason),
        )
    if kind == "topic" and action in TOPIC_ACTIONS:
        service = TOPIC_ACTIONS[action]
        return _run(
            request,
            post,
            action,
            lambda: service(topic=post, actor_user=request.user, reason=reason),
        )
    if kind == "topic" and action == "move":
        return _move(request, post, reason)
    if kind == "topic" and action == "merge":
        return _merge(request, post, reason)
    raise Http404(f"Unknown moderation action {action!r}.")


def _move(request: HttpRequest, topic: Topic, reason: str) -> HttpResponse:
    try:
        space = Space.objects.get(pk=request.POST.get("space"))
    except (Space.DoesNotExist, ValueError, TypeError):
        messages.error(request, "Choose the space to move the topic to.")
        return redirect(topic)
    return _run(
        request,
        topic,
        "move",
        lambda: moderation.move_topic(
            topic=topic, space=space, actor_user=request.user, reason=reason
        ),
    )


def _merge(request: HttpRequest, topic: Topic, reason: str) -> HttpResponse:
    try:
        target = _get_post_or_404(request, kind="topic", pk=int(request.POST["target"]))
    except (KeyError, ValueError, Http404):
        messages.error(
            request, "Enter the number of an existing topic to merge this one into."
        )
        return redirect(topic)

    try:
        moderation.merge_topic(
            source=topic, target=target, actor_user=request.user, reason=reason
        )
    except DomainError as error:
        if error.code == "forbidden":
            raise PermissionDenied(error.message) from None
        messages.error(request, error.message)
        return redirect(topic)
    messages.success(request, DONE_MESSAGES["merge"])
    return redirect(target)


@login_required
@require_http_methods(["GET", "POST"])
def flag_create(request: HttpRequest, kind: str, pk: int) -> HttpResponse:
    """Show and handle the form that flags a topic or reply for moderators."""
    post = _get_post_or_404(request, kind=kind, pk=pk)
    reporter = get_member_for_user(request.user)
    if reporter is None:
        raise PermissionDenied("Flagging needs a member profile.")

    error = ""
    if request.method == "POST":
        try:
            moderation.flag_post(
                reporter=reporter,
                post=post,
                reason=request.POST.get("reason", ""),
                note=request.POST.get("note", ""),
            )
        except DomainError as caught:
            error = caught.message
        else:
            messages.success(request, "Thank you; a moderator will review the post.")
            topic = post if isinstance(post, Topic) else post.topic
            return redirect(topic)
    return render(
        request,
        "community/flag_form.html",
        {
            "post": post,
            "kind": kind,
            "reasons": Flag.Reason.choices,
            "error": error,
        },
        status=400 if error else 200,
    )


@login_required
@require_GET
def moderation_queue(request: HttpRequest) -> HttpResponse:
    _require_moderator(request)
    page, posts = list_flagged_posts(
        page_number=request.GET.get("page"), per_page=FLAGGED_POSTS_PER_PAGE
    )
    return render(
        request,
        "community/moderation_queue.html",
        {"page_obj": page, "flagged_posts": posts},
    )


@login_required
@require_GET
def moderation_log(request: HttpRequest) -> HttpResponse:
    _require_moderator(request)
    action = request.GET.get("action", "")
    if action not in moderation.ACTIONS:
        action = ""
    paginator = Paginator(list_moderation_actions(action=action), ACTIONS_PER_PAGE)
    page = paginator.get_page(request.GET.get("page"))
    return render(
        request,
        "community/moderation_log.html",
        {"page_obj": page, "action": action, "actions": moderation.ACTIONS},
    )


@login_required
@require_POST
def member_suspend(request: HttpRequest, pk: int) -> HttpResponse:
    _require_moderator(request)
    try:
        member = Member.objects.get(pk=pk)
    except Member.DoesNotExist:
        raise Http404("Member not found.") from None

    days = request.POST.get("days", "")
    try:
        ends_at = timezone.now() + timedelta(days=int(days)) if days else None
        moderation.suspend_member(
            member=member,
            actor_user=request.user,
            reason=request.POST.get("reason", ""),
            ends_at=ends_at,
        )
    except ValueError:
        messages.error(
            request, f"Invalid number of days {days!r}; enter a whole number."
        )
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"{member.name} is suspended.")
    return redirect(_safe_next(request))


@login_required
@require_POST
def member_unsuspend(request: HttpRequest, pk: int) -> HttpResponse:
    _require_moderator(request)
    try:
        member = Member.objects.get(pk=pk)
    except Member.DoesNotExist:
        raise Http404("Member not found.") from None

    try:
        lifted = moderation.unsuspend_member(
            member=member,
            actor_user=request.user,
            reason=request.POST.get("reason", ""),
        )
    except DomainError as error:
        messages.error(request, error.message)
    else:
        if lifted:
            messages.success(request, f"{member.name} may post again.")
        else:
            messages.info(request, f"{member.name} is not suspended.")
    return redirect(_safe_next(request))


def _safe_next(request: HttpRequest) -> str:
    next_url = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return next_url
    return reverse("community:moderation_queue")
