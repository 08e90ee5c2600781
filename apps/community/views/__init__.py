import logging

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect, reswap, retarget

from apps.community.forms import ReplyForm, TopicForm, add_domain_error
from apps.community.models import Space, Topic
from apps.community.pagination import (
    InvalidCursor,
    KeysetPage,
    PageRequest,
    encode_cursor,
    position_just_after,
)
from apps.community.selectors import (
    access_space,
    access_topic,
    can_moderate_space,
    list_member_posts_visible_to,
    list_space_topics,
    list_topic_replies,
    list_visible_spaces,
)
from apps.community.selectors.engagement import mark_viewer_reactions
from apps.community.services import post_reply, post_topic
from apps.community.views.questions import get_topic_page_context
from apps.lifecycle.services import record_activity
from apps.membership.models import Member
from apps.membership.selectors import get_member_for_user
from apps.membership.selectors.profiles import can_see_member_activity
from apps.membership.selectors.roles import has_capability
from rm6.errors import DomainError

logger = logging.getLogger(__name__)

TOPICS_PER_PAGE = 25
REPLIES_PER_PAGE = 50
TOPIC_ORDERING = ("-last_activity_at", "-id")
REPLY_ORDERING = ("created_at", "id")
NO_MEMBER_PROFILE_MESSAGE = (
    "Posting needs a member profile, and your staff account has none. "
    "You can read every space; to post, create a member for your user in admin."
)


def _get_space_or_404(request: HttpRequest, *, slug: str, member: Member | None):
    try:
        return access_space(slug=slug, member=member, is_staff=request.user.is_staff)
    except Space.DoesNotExist:
        raise Http404("Space not found.") from None


def _get_topic_or_404(request: HttpRequest, *, pk: int, member: Member | None):
    try:
        return access_topic(pk=pk, member=member, is_staff=request.user.is_staff)
    except Topic.DoesNotExist:
        raise Http404("Topic not found.") from None


def _invalid_cursor_response(
    request: HttpRequest, error: InvalidCursor
) -> HttpResponse:
    logger.info("Rejected page cursor on %s: %s", request.path, error)
    return HttpResponseBadRequest(
        f"Invalid page link: {error} Open the list from its first page.",
        content_type="text/plain; charset=utf-8",
    )


def reply_page_url(reply) -> str:
    """Return the topic-page URL of the reply page that ends with `reply`."""
    position = position_just_after(reply, REPLY_ORDERING)
    topic_url = reverse("community:topic", kwargs={"pk": reply.topic_id})
    return f"{topic_url}?before={encode_cursor(position)}#reply-{reply.pk}"


@require_GET
def space_list(request: HttpRequest) -> HttpResponse:
    member = get_member_for_user(request.user)
    spaces = list_visible_spaces(member=member, is_staff=request.user.is_staff)
    return render(request, "community/space_list.html", {"spaces": spaces})


@require_GET
def space_detail(request: HttpRequest, slug: str) -> HttpResponse:
    member = get_member_for_user(request.user)
    space = _get_space_or_404(request, slug=slug, member=member)
    try:
        page_request = PageRequest.from_query(request.GET)
    except InvalidCursor as error:
        return _invalid_cursor_response(request, error)

    is_moderator = can_moderate_space(
        member=member, space=space, is_staff=request.user.is_staff
    )
    page = KeysetPage(
        list_space_topics(space=space, is_moderator=is_moderator),
        ordering=TOPIC_ORDERING,
        per_page=TOPICS_PER_PAGE,
        request=page_request,
    )
    return render(
        request,
        "community/space_detail.html",
        {
            "space": space,
            "page_obj": page,
            "member": member,
            "is_moderator": is_moderator,
        },
    )


def _render_topic(
    request: HttpRequest,
    *,
    topic: Topic,
    member: Member | None,
    form: ReplyForm,
    page_request: PageRequest,
) -> HttpResponse:
    context = get_topic_page_context(request, topic, member=member)
    page = KeysetPage(
        list_topic_replies(topic=topic, is_moderator=context["is_moderator"]),
        ordering=REPLY_ORDERING,
        per_page=REPLIES_PER_PAGE,
        request=page_request,
    )
    mark_viewer_reactions(member=member, topic=topic, replies=page.object_list)
    return render(
        request,
        "community/topic_detail.html",
        {
            "topic": topic,
            "page_obj": page,
            "member": member,
            "form": form,
            "is_last_page": not page.has_next,
            **context,
        },
    )


@require_GET
def topic_detail(request: HttpRequest, pk: int) -> HttpResponse:
    member = get_member_for_user(request.user)
    topic = _get_topic_or_404(request, pk=pk, member=member)
    try:
        page_request = PageRequest.from_query(request.GET)
    except InvalidCursor as error:
        return _invalid_cursor_response(request, error)

    if member is not None:
        record_activity(
            member=member,
            kind="community.topic_viewed",
            subject=topic,
            properties={"space": topic.space.slug, "topic_kind": topic.kind},
        )
    return _render_topic(
        request,
        topic=topic,
        member=member,
        form=ReplyForm(initial={"quote": request.GET.get("quote")}),
        page_request=page_request,
    )


@login_required
@require_http_methods(["GET", "POST"])
def topic_create(request: HttpRequest, slug: str) -> HttpResponse:
    member = get_member_for_user(request.user)
    space = _get_space_or_404(request, slug=slug, member=member)
    if member is None:
        messages.info(request, NO_MEMBER_PROFILE_MESSAGE)
        return redirect(space)

    data = request.POST if request.method == "POST" else None
    form = TopicForm(data, member=member)
    if form.is_bound and form.is_valid():
        try:
            topic = post_topic(author=member, space=space, **form.cleaned_data)
        except DomainError as error:
            add_domain_error(form, error)
        else:
            kind = topic.get_kind_display().lower()
            messages.success(request, f"Your {kind} is posted.")
            return redirect(topic)
    return render(request, "community/topic_form.html", {"space": space, "form": form})


@require_POST
def reply_create(request: HttpRequest, pk: int) -> HttpResponse:
    """Post a reply; htmx requests get the new reply's fragment back.

    Without JavaScript the form posts normally and the browser is redirected
    to the page of replies that ends with the new reply.
    """
    topic_url = reverse("community:topic", kwargs={"pk": pk})
    if not request.user.is_authenticated:
        # The sign-in page returns the visitor to the topic, not to this
        # POST-only URL.
        if request.htmx:
            login_url = reverse("account_login")
            return HttpResponseClientRedirect(f"{login_url}?next={topic_url}")
        return redirect_to_login(topic_url)
    member = get_member_for_user(request.user)
    topic = _get_topic_or_404(request, pk=pk, member=member)
    if member is None:
        messages.info(request, NO_MEMBER_PROFILE_MESSAGE)
        if request.htmx:
            return HttpResponseClientRedirect(topic_url)
        return redirect(topic_url)

    form = ReplyForm(request.POST)
    if form.is_valid():
        try:
            reply = post_reply(
                author=member,
                topic=topic,
                body=form.cleaned_data["body"],
                quoted_reply_id=form.cleaned_data["quote"],
            )
        except DomainError as error:
            add_domain_error(form, error)
        else:
            if request.htmx:
                is_moderator = can_moderate_space(
                    member=member, space=topic.space, is_staff=request.user.is_staff
                )
                replies = list_topic_replies(topic=topic, is_moderator=is_moderator)
                context = {
                    "reply": reply,
                    "reply_count": replies.count(),
                    "topic": topic,
                    "member": member,
                    "form": ReplyForm(),
                }
                return render(request, "community/_reply_posted.html", context)
            messages.success(request, "Your reply is posted.")
            return redirect(reply_page_url(reply))

    if request.htmx:
        response = render(
            request,
            "community/_reply_form.html",
            {"topic": topic, "form": form, "is_last_page": True},
        )
        # htmx swaps only 2xx responses, so the invalid form comes back as
        # 200 and replaces the form instead of being appended to the replies.
        return reswap(retarget(response, "#reply-form"), "outerHTML")
    return _render_topic(
        request,
        topic=topic,
        member=member,
        form=form,
        page_request=PageRequest(last=True),
    )


MEMBER_POSTS_LIMIT = 20


@login_required
@require_GET
def member_posts(request: HttpRequest, pk: int) -> HttpResponse:
    """List a member's latest topics and replies, in the spaces the viewer reads.

    Other members see the list only while its author shows their activity on
    their profile; the author and staff always see it.
    """
    if not has_capability(request.user, "view_member_profiles"):
        raise PermissionDenied("Member profiles are for signed-in members.")
    try:
        author = Member.objects.select_related("user").get(pk=pk)
    except Member.DoesNotExist:
        raise Http404("Member not found.") from None
    if not can_see_member_activity(member=author, viewer=request.user):
        raise Http404("This member does not show their posts.")

    viewer = get_member_for_user(request.user)
    posts = list_member_posts_visible_to(
        author=author,
        viewer=viewer,
        is_staff=request.user.is_staff,
        limit=MEMBER_POSTS_LIMIT,
    )
    return render(
        request,
        "community/member_posts.html",
        {"author": author, "posts": posts, "limit": MEMBER_POSTS_LIMIT},
    )
