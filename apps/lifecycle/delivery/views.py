"""Member pages: the notification centre and the unsubscribe link."""

import logging
from urllib.parse import urlsplit

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.lifecycle.delivery.email import access_unsubscribe, unsubscribe_member
from apps.lifecycle.delivery.notifications import (
    access_notification,
    list_member_notifications,
    mark_all_notifications_read,
    mark_notification_read,
)
from apps.lifecycle.delivery.visibility import filter_visible_notifications
from apps.lifecycle.models import Notification
from apps.membership.models import ConsentPurpose, Member
from apps.membership.selectors import get_member_for_user
from apps.membership.selectors.consent import has_consent

logger = logging.getLogger(__name__)

NOTIFICATIONS_PER_PAGE = 20
LIST_TEMPLATE = "lifecycle/delivery/notifications.html"
INVALID_LINK_MESSAGE = (
    "This unsubscribe link is invalid: it was cut short or changed. Open the "
    "link in the email again, or copy all of it. You can also withdraw consent "
    "on your privacy page after signing in."
)
UNKNOWN_LINK_MESSAGE = (
    "This unsubscribe link is for a member or email topic that no longer "
    "exists, so there is nothing to unsubscribe from."
)


def _get_notification_or_404(request: HttpRequest, notification_id: int):
    member = get_member_for_user(request.user)
    if member is None:
        raise Http404("Notification not found.")
    try:
        return access_notification(member=member, notification_id=notification_id)
    except Notification.DoesNotExist:
        raise Http404("Notification not found.") from None


def _render_list(
    request: HttpRequest, member: Member | None, template: str = LIST_TEMPLATE
) -> HttpResponse:
    page = None
    if member is not None:
        paginator = Paginator(list_member_notifications(member), NOTIFICATIONS_PER_PAGE)
        page = paginator.get_page(request.GET.get("page") or request.POST.get("page"))
        # NOTE: hiding happens per page, so a page can show fewer than
        # NOTIFICATIONS_PER_PAGE items, and the unread badge still counts
        # the hidden ones.
        page.object_list = filter_visible_notifications(
            member=member, notifications=page.object_list
        )
    return render(request, template, {"member": member, "page_obj": page})


@login_required
@require_GET
def notification_list(request: HttpRequest) -> HttpResponse:
    """Show the member's notifications, newest first, a page at a time."""
    return _render_list(request, get_member_for_user(request.user))


@login_required
@require_GET
def notification_open(request: HttpRequest, pk: int) -> HttpResponse:
    """Mark the notification read and follow its link."""
    notification = _get_notification_or_404(request, pk)

    mark_notification_read(notification=notification)

    # HttpResponseRedirect rejects other schemes, such as javascript:, with
    # a 400, so those links lead back to the list instead.
    if not notification.url:
        return redirect("delivery:notifications")
    if urlsplit(notification.url).scheme not in ("", "http", "https"):
        logger.warning("notification link has an unsafe scheme: notification %s", pk)
        return redirect("delivery:notifications")
    return HttpResponseRedirect(notification.url)


@login_required
@require_POST
def notification_read(request: HttpRequest, pk: int) -> HttpResponse:
    """Mark one notification read; htmx gets the item and the badge back."""
    notification = _get_notification_or_404(request, pk)

    mark_notification_read(notification=notification)

    if request.htmx:
        return render(
            request,
            "lifecycle/delivery/_notification_update.html",
            {"notification": notification, "is_swapped": True},
        )
    return redirect("delivery:notifications")


@login_required
@require_POST
def notifications_read_all(request: HttpRequest) -> HttpResponse:
    """Mark all of the member's notifications read."""
    member = get_member_for_user(request.user)
    if member is None:
        raise PermissionDenied("Only members have notifications.")

    count = mark_all_notifications_read(member=member)

    if request.htmx:
        return _render_list(
            request, member, "lifecycle/delivery/_notification_list_update.html"
        )
    if count:
        messages.success(
            request, f"Marked {count} notification{'s' if count != 1 else ''} read."
        )
    return redirect("delivery:notifications")


def _render_unsubscribe_error(
    request: HttpRequest, message: str, status: int
) -> HttpResponse:
    return render(
        request,
        "lifecycle/delivery/unsubscribe.html",
        {"error": message},
        status=status,
    )


# Mail clients send the RFC 8058 one-click POST with no cookies and no CSRF
# token. The signed token in the URL is the credential instead, and all it
# can do is withdraw one member's consent for one purpose.
@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """Ask to confirm on GET; withdraw the consent the token names on POST.

    GET changes nothing, because mail scanners open links in emails before
    the recipient does.
    """
    try:
        member, purpose = access_unsubscribe(token=token)
    except signing.BadSignature:
        logger.info("unsubscribe link rejected: invalid signature")
        return _render_unsubscribe_error(request, INVALID_LINK_MESSAGE, 400)
    except (Member.DoesNotExist, ConsentPurpose.DoesNotExist):
        return _render_unsubscribe_error(request, UNKNOWN_LINK_MESSAGE, 404)

    if request.method == "GET":
        context = {
            "purpose": purpose,
            "is_subscribed": has_consent(member=member, purpose_key=purpose.key),
        }
        return render(request, "lifecycle/delivery/unsubscribe.html", context)

    grant = unsubscribe_member(member=member, purpose=purpose)

    logger.info(
        "unsubscribed by email link: member %s, purpose %s, changed %s",
        member.pk,
        purpose.key,
        grant is not None,
    )
    context = {"purpose": purpose, "is_done": True, "was_subscribed": grant is not None}
    return render(request, "lifecycle/delivery/unsubscribe.html", context)
