"""Watch buttons for spaces, topics and tags; htmx swaps the button in place."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from apps.community.models import Space, Tag, Topic
from apps.community.selectors import access_space, access_topic
from apps.community.selectors.subscriptions import is_watching
from apps.community.services.subscriptions import unwatch, watch
from apps.membership.models import Member
from apps.membership.selectors import get_member_for_user
from rm6.errors import DomainError

TARGET_TYPES = ("space", "topic", "tag")


def _get_target_or_404(
    request: HttpRequest, *, target_type: str, pk: int, member: Member | None
) -> dict:
    """Return the watch keyword (space, topic or tag) for a target the viewer reads."""
    is_staff = request.user.is_staff
    try:
        if target_type == "space":
            space = Space.objects.only("slug").get(pk=pk)
            return {
                "space": access_space(slug=space.slug, member=member, is_staff=is_staff)
            }
        if target_type == "topic":
            return {"topic": access_topic(pk=pk, member=member, is_staff=is_staff)}
        if target_type == "tag":
            return {"tag": Tag.objects.get(pk=pk)}
    except (Space.DoesNotExist, Topic.DoesNotExist, Tag.DoesNotExist):
        pass
    raise Http404("Nothing to watch here.")


def _render_button(
    request: HttpRequest, *, target_type: str, pk: int, member: Member | None
) -> HttpResponse:
    context = {
        "target_type": target_type,
        "target_id": pk,
        "member": member,
        "is_watching": is_watching(member=member, **{f"{target_type}_id": pk}),
    }
    return render(request, "community/_watch_button.html", context)


@require_GET
def watch_button(request: HttpRequest, target_type: str, pk: int) -> HttpResponse:
    """Return the watch button of a space, topic or tag, loaded by htmx."""
    member = get_member_for_user(request.user)
    _get_target_or_404(request, target_type=target_type, pk=pk, member=member)
    return _render_button(request, target_type=target_type, pk=pk, member=member)


@login_required
@require_POST
def watch_toggle(request: HttpRequest, target_type: str, pk: int) -> HttpResponse:
    """Watch the target, or stop watching it when the form says `action=unwatch`."""
    member = get_member_for_user(request.user)
    if member is None:
        raise Http404("Only members watch spaces, topics and tags.")
    target = _get_target_or_404(request, target_type=target_type, pk=pk, member=member)

    try:
        if request.POST.get("action") == "unwatch":
            unwatch(member=member, **target)
        else:
            watch(member=member, **target)
    except DomainError as error:
        messages.error(request, error.message)

    if request.htmx:
        return _render_button(request, target_type=target_type, pk=pk, member=member)
    return redirect(_get_return_url(request, target=target))


def _get_return_url(request: HttpRequest, *, target: dict) -> str:
    """Return the page the form came from when it is on this site, else the target."""
    next_url = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return next_url
    if "tag" in target:
        return reverse("community:spaces")
    return next(iter(target.values())).get_absolute_url()
