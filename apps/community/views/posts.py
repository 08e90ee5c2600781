"""Pages for editing posts, their history, votes, kudos, tags and mentions."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.community.forms import (
    ReplyEditForm,
    TopicEditForm,
    TopicTagsForm,
    add_domain_error,
)
from apps.community.models import Reply, Tag, Topic
from apps.community.selectors import (
    access_topic,
    filter_visible_replies,
    filter_visible_topics,
)
from apps.community.selectors.engagement import mark_viewer_reactions
from apps.community.services.engagement import (
    give_kudos,
    remove_kudos,
    unvote,
    vote,
)
from apps.community.services.posts import (
    can_edit_post,
    can_view_revisions,
    edit_reply,
    edit_topic,
    list_post_revisions,
    set_topic_tags,
)
from apps.membership.models import Member
from apps.membership.selectors import get_member_for_user
from rm6.errors import DomainError

TAG_TOPICS_PER_PAGE = 25
MENTION_SEARCH_LIMIT = 8


def _get_topic_or_404(request: HttpRequest, pk: int) -> Topic:
    member = get_member_for_user(request.user)
    try:
        return access_topic(pk=pk, member=member, is_staff=request.user.is_staff)
    except Topic.DoesNotExist:
        raise Http404("Topic not found.") from None


def _get_reply_or_404(request: HttpRequest, pk: int) -> Reply:
    member = get_member_for_user(request.user)
    replies = Reply.objects.select_related("topic__space", "author__user")
    visible = filter_visible_replies(replies, member, request.user.is_staff)
    try:
        return visible.get(pk=pk)
    except Reply.DoesNotExist:
        raise Http404("Reply not found.") from None


def _get_post_or_404(request: HttpRequest, kind: str, pk: int) -> Topic | Reply:
    if kind == "topic":
        return _get_topic_or_404(request, pk)
    if kind == "reply":
        return _get_reply_or_404(request, pk)
    raise Http404(f"Unknown post kind {kind!r}; use topic or reply.")


def _require_member(request: HttpRequest) -> Member:
    member = get_member_for_user(request.user)
    if member is None:
        raise PermissionDenied("This action needs a member profile.")
    return member


@login_required
@require_http_methods(["GET", "POST"])
def topic_edit(request: HttpRequest, pk: int) -> HttpResponse:
    topic = _get_topic_or_404(request, pk)
    if not can_edit_post(user=request.user, post=topic):
        raise PermissionDenied("You cannot edit this topic.")

    initial = {"title": topic.title, "body": topic.body}
    form = TopicEditForm(request.POST or None, initial=initial)
    if form.is_bound and form.is_valid():
        try:
            edit_topic(topic=topic, editor=request.user, **form.cleaned_data)
        except DomainError as error:
            add_domain_error(form, error)
        else:
            messages.success(request, "Your changes are saved.")
            return redirect(topic)
    return render(
        request,
        "community/post_edit.html",
        {"post": topic, "topic": topic, "form": form},
    )


@login_required
@require_http_methods(["GET", "POST"])
def reply_edit(request: HttpRequest, pk: int) -> HttpResponse:
    reply = _get_reply_or_404(request, pk)
    if not can_edit_post(user=request.user, post=reply):
        raise PermissionDenied("You cannot edit this reply.")

    form = ReplyEditForm(request.POST or None, initial={"body": reply.body})
    if form.is_bound and form.is_valid():
        try:
            edit_reply(reply=reply, editor=request.user, **form.cleaned_data)
        except DomainError as error:
            add_domain_error(form, error)
        else:
            messages.success(request, "Your changes are saved.")
            return redirect(reply.get_absolute_url())
    context = {"post": reply, "topic": reply.topic, "form": form}
    return render(request, "community/post_edit.html", context)


@login_required
@require_GET
def post_history(request: HttpRequest, kind: str, pk: int) -> HttpResponse:
    """List a post's earlier versions, for its author and moderators only."""
    post = _get_post_or_404(request, kind, pk)
    if not can_view_revisions(user=request.user, post=post):
        raise PermissionDenied("Only the author and moderators see the history.")

    topic = post if isinstance(post, Topic) else post.topic
    context = {
        "post": post,
        "topic": topic,
        "kind": kind,
        "revisions": list_post_revisions(post=post),
    }
    return render(request, "community/post_history.html", context)


def _render_reactions(request: HttpRequest, kind: str, post) -> HttpResponse:
    post.refresh_from_db(fields=["vote_score", "kudos_count"])
    member = get_member_for_user(request.user)
    if kind == "topic":
        mark_viewer_reactions(member=member, topic=post)
    else:
        mark_viewer_reactions(member=member, replies=[post])
    context = {"post": post, "kind": kind, "member": member}
    return render(request, "community/_reactions.html", context)


def _after_reaction(request: HttpRequest, kind: str, post) -> HttpResponse:
    if request.htmx:
        return _render_reactions(request, kind, post)
    url = post.get_absolute_url()
    return redirect(url)


@login_required
@require_POST
def post_vote(request: HttpRequest, kind: str, pk: int) -> HttpResponse:
    """Vote up (value 1), down (-1) or withdraw the vote (0)."""
    post = _get_post_or_404(request, kind, pk)
    member = _require_member(request)
    try:
        value = int(request.POST.get("value", ""))
    except ValueError:
        value = None

    try:
        if value == 0:
            unvote(member=member, post=post)
        elif value is None:
            raise DomainError("The vote value is missing; send 1, -1 or 0.")
        else:
            vote(member=member, post=post, value=value)
    except DomainError as error:
        if request.htmx:
            return HttpResponse(error.message, status=400)
        messages.error(request, error.message)
    return _after_reaction(request, kind, post)


@login_required
@require_POST
def post_kudos(request: HttpRequest, kind: str, pk: int) -> HttpResponse:
    """Give kudos, or take them back with action=remove."""
    post = _get_post_or_404(request, kind, pk)
    member = _require_member(request)

    try:
        if request.POST.get("action") == "remove":
            remove_kudos(member=member, post=post)
        else:
            give_kudos(member=member, post=post)
    except DomainError as error:
        if request.htmx:
            return HttpResponse(error.message, status=400)
        messages.error(request, error.message)
    return _after_reaction(request, kind, post)


@login_required
@require_http_methods(["GET", "POST"])
def topic_tags(request: HttpRequest, pk: int) -> HttpResponse:
    topic = _get_topic_or_404(request, pk)
    if not can_edit_post(user=request.user, post=topic):
        raise PermissionDenied("You cannot change this topic's tags.")

    current = ", ".join(tag.name for tag in topic.tags.all())
    form = TopicTagsForm(request.POST or None, initial={"tags": current})
    if form.is_bound and form.is_valid():
        try:
            set_topic_tags(
                topic=topic, editor=request.user, names=form.cleaned_data["tags"]
            )
        except DomainError as error:
            add_domain_error(form, error)
        else:
            messages.success(request, "The tags are saved.")
            return redirect(topic)
    context = {"topic": topic, "form": form, "tags": Tag.objects.all()}
    return render(request, "community/topic_tags.html", context)


@require_GET
def tag_detail(request: HttpRequest, slug: str) -> HttpResponse:
    """List the topics with a tag, in the spaces the viewer may read."""
    try:
        tag = Tag.objects.get(slug=slug)
    except Tag.DoesNotExist:
        raise Http404("Tag not found.") from None

    member = get_member_for_user(request.user)
    topics = filter_visible_topics(
        tag.topics.select_related("space", "author__user").prefetch_related("tags"),
        member,
        request.user.is_staff,
    ).order_by("-last_activity_at", "-id")
    page = Paginator(topics, TAG_TOPICS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "community/tag_detail.html", {"tag": tag, "page_obj": page})


@login_required
@require_GET
def mention_search(request: HttpRequest) -> HttpResponse:
    """Return members whose display name contains q, as mention snippets."""
    # Members already see each other's display names on posts, so any member
    # may search them.
    _require_member(request)

    query = request.GET.get("q", "").strip().lstrip("@")
    members = []
    if len(query) >= 2:
        members = list(
            Member.objects.filter(
                display_name__icontains=query,
                deactivated_at__isnull=True,
                anonymised_at__isnull=True,
            ).order_by("display_name", "pk")[:MENTION_SEARCH_LIMIT]
        )
    return render(
        request,
        "community/_mention_results.html",
        {"members": members, "query": query},
    )
