"""Admin for delivery: CSM tasks, webhook endpoints and the delivery log."""

import json
from urllib.parse import urlsplit

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.cache import add_never_cache_headers
from django.utils.html import format_html

from apps.lifecycle.admin_scoring import EventKindsField
from apps.lifecycle.delivery.csm_tasks import close_csm_task
from apps.lifecycle.delivery.event_webhooks import get_event_kind_error
from apps.lifecycle.delivery.webhooks import (
    generate_webhook_secret,
    retry_webhook_deliveries,
    rotate_webhook_secret,
)
from apps.lifecycle.models import (
    CsmTask,
    Play,
    PlayStep,
    WebhookDelivery,
    WebhookEndpoint,
)
from apps.membership.admin import ReadOnlyAdmin
from apps.membership.admin_deletion import KeptWithHistoryAdmin
from rm6.errors import DomainError

SECRET_TEMPLATE = "lifecycle/delivery/admin/webhook_secrets.html"


@admin.register(CsmTask)
class CsmTaskAdmin(admin.ModelAdmin):
    list_display = ["title", "account", "owner", "status", "due_on", "play"]
    list_select_related = ["account", "owner", "play"]
    list_filter = ["status", ("owner", admin.RelatedOnlyFieldListFilter), "due_on"]
    search_fields = ["title", "account__name", "member__user__email"]
    raw_id_fields = ["account", "member", "owner"]
    readonly_fields = ["status", "completed_at", "play", "step_run", "created_at"]
    actions = ["mark_done", "dismiss"]

    def _close(self, request: HttpRequest, queryset: QuerySet, status: str) -> None:
        closed = 0
        for task in queryset:
            try:
                close_csm_task(task=task, status=status, closed_by=request.user)
            except DomainError as error:
                self.message_user(request, error.message, messages.WARNING)
            else:
                closed += 1
        label = CsmTask.Status(status).label.lower()
        self.message_user(request, f"Marked {closed} task(s) {label}.")

    @admin.action(description="Mark selected tasks done", permissions=["change"])
    def mark_done(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._close(request, queryset, CsmTask.Status.DONE)

    @admin.action(description="Dismiss selected tasks", permissions=["change"])
    def dismiss(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._close(request, queryset, CsmTask.Status.DISMISSED)


# The session key under which new secrets wait for the page that shows them.
SECRETS_SESSION_KEY = "lifecycle:webhook-secrets"


def _redirect_to_secrets(
    request: HttpRequest,
    endpoints: list[WebhookEndpoint],
    *,
    title: str,
    next_step: tuple[str, str] | None = None,
) -> HttpResponse:
    """Keep the new secrets in the session and redirect to the page showing them.

    The page is a GET, so reloading it neither adds another endpoint nor
    rotates the secrets again. It shows them once and then removes them from
    the session. `next_step` is the (label, URL) of the link that leads on,
    such as adding another endpoint after "Save and add another".
    """
    request.session[SECRETS_SESSION_KEY] = {
        "title": title,
        "next_step": next_step,
        "endpoints": [
            {"pk": e.pk, "name": e.name, "url": e.url, "secret": e.secret}
            for e in endpoints
        ],
    }
    return HttpResponseRedirect(reverse("admin:lifecycle_webhookendpoint_secrets"))


def _render_secrets(request: HttpRequest) -> HttpResponse:
    pending = request.session.pop(SECRETS_SESSION_KEY, None)
    response = TemplateResponse(
        request,
        SECRET_TEMPLATE,
        {
            **admin.site.each_context(request),
            "title": pending["title"] if pending else "Webhook secrets",
            "endpoints": pending["endpoints"] if pending else [],
            "next_step": pending.get("next_step") if pending else None,
            "opts": WebhookEndpoint._meta,
        },
    )
    add_never_cache_headers(response)
    return response


class WebhookEndpointForm(forms.ModelForm):
    # A URL typed without a scheme is read as https, as Django 6 does. A
    # declared field takes no label from the model, so it names its own.
    url = forms.URLField(
        label=WebhookEndpoint._meta.get_field("url").verbose_name,
        max_length=500,
        assume_scheme="https",
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["name", "url", "event_kinds", "is_active"]
        field_classes = {"event_kinds": EventKindsField}

    def clean_event_kinds(self) -> list[str]:
        """Reject kinds and prefixes that no app registered, and drop repeats."""
        names = list(
            dict.fromkeys(name.strip() for name in self.cleaned_data["event_kinds"])
        )
        errors = [error for name in names if (error := get_event_kind_error(name))]
        if errors:
            raise forms.ValidationError(errors)
        return names

    def clean_url(self) -> str:
        """Accept only URLs that the webhook sender can POST to.

        Django's URL field also accepts ftp:// and ports above 65535, and
        every delivery to such a URL fails until it is given up.
        """
        url = self.cleaned_data["url"]
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise forms.ValidationError(
                f"The URL {url!r} uses the scheme {parts.scheme!r}, but webhooks "
                "are sent as HTTP POST requests: use an https:// URL."
            )
        try:
            # `port` is None when the URL has none, and raises above 65535.
            is_valid_port = parts.port != 0
        except ValueError:
            is_valid_port = False
        if not is_valid_port:
            raise forms.ValidationError(
                f"The URL {url!r} has an invalid port: use a port from 1 to "
                "65535, or leave it out."
            )
        return url


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(KeptWithHistoryAdmin):
    """Endpoints; the signing secret is shown once, when it is made.

    The secret is never listed or shown on the change page afterwards, so it
    stays out of screenshots and shared screens. Staff who lose it rotate it.
    """

    form = WebhookEndpointForm
    list_display = ["name", "url", "is_active", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["name", "url"]
    fields = ["name", "url", "event_kinds", "is_active", "secret_status"]
    readonly_fields = ["secret_status"]
    actions = ["rotate_secrets"]

    @admin.display(description="secret")
    def secret_status(self, endpoint: WebhookEndpoint) -> str:
        if not endpoint.pk:
            return "Generated when you save, and shown once on the next page."
        return (
            "Set, and hidden after it was shown once. Use the action "
            '"Rotate secrets" in the list to replace it.'
        )

    def save_model(self, request, obj: WebhookEndpoint, form, change: bool) -> None:
        if not change:
            obj.secret = generate_webhook_secret()
        super().save_model(request, obj, form, change)

    def response_add(self, request, obj, post_url_continue=None) -> HttpResponse:
        # The secret is shown before the page the clicked button leads to.
        next_step = None
        if "_addanother" in request.POST:
            add_url = reverse("admin:lifecycle_webhookendpoint_add")
            next_step = ("Continue: add another endpoint", add_url)
        elif "_continue" in request.POST:
            change_url = reverse(
                "admin:lifecycle_webhookendpoint_change", args=[obj.pk]
            )
            next_step = (f"Continue: edit {obj.name}", change_url)
        return _redirect_to_secrets(
            request, [obj], title="Webhook endpoint added", next_step=next_step
        )

    def get_kept_reasons(self, objs) -> dict[int, str]:
        """Return why each endpoint in use stays: its delivery log or play steps.

        Play steps name their endpoint in their JSON config, not by a foreign
        key. Saving steps locks the endpoints they name FOR KEY SHARE (see
        lock_webhook_endpoints), and the deletion locks the endpoint FOR
        UPDATE before it calls this, so a step saved meanwhile is found here.
        """
        return {
            endpoint.pk: reason for endpoint in objs if (reason := _in_use(endpoint))
        }

    def get_urls(self) -> list:
        secrets = path(
            "secrets/",
            self.admin_site.admin_view(self.secrets_view),
            name="lifecycle_webhookendpoint_secrets",
        )
        return [secrets, *super().get_urls()]

    def secrets_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_change_permission(request):
            raise PermissionDenied
        return _render_secrets(request)

    @admin.action(
        description="Rotate secrets of selected endpoints", permissions=["change"]
    )
    def rotate_secrets(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse:
        endpoints = list(queryset)
        for endpoint in endpoints:
            rotate_webhook_secret(endpoint=endpoint)
        return _redirect_to_secrets(request, endpoints, title="Webhook secrets rotated")


def _in_use(endpoint: WebhookEndpoint) -> str:
    """Return why an endpoint must stay, or an empty text when it may go."""
    deliveries = endpoint.deliveries.count()
    reasons = []
    if deliveries:
        noun = "delivery" if deliveries == 1 else "deliveries"
        reasons.append(
            f"it has {deliveries} logged {noun}, the record of what was sent. "
            "Untick “Is active” to stop sending to it."
        )
    steps_reason = _describe_steps_using(endpoint)
    if steps_reason:
        reasons.append(steps_reason)
    return f"{endpoint.name}: {' And '.join(reasons)}" if reasons else ""


def _describe_steps_using(endpoint: WebhookEndpoint) -> str:
    """Return which play steps send webhooks to the endpoint, or an empty text.

    Steps of draft and paused plays count as uses too: activating the play
    later would run them against the missing endpoint.
    """
    steps = (
        PlayStep.objects.filter(action="webhook", config__endpoint_id=endpoint.pk)
        .select_related("play")
        .order_by("play__name", "play_id", "position")
    )
    positions_by_play: dict[Play, list[int]] = {}
    for step in steps:
        positions_by_play.setdefault(step.play, []).append(step.position)
    if not positions_by_play:
        return ""

    uses = []
    for play, positions in positions_by_play.items():
        numbers = _join_with_and([str(position) for position in positions])
        noun = "step" if len(positions) == 1 else "steps"
        status = play.get_status_display().lower()
        uses.append(f"{noun} {numbers} of the {status} play {play.name}")
    step_count = sum(len(positions) for positions in positions_by_play.values())
    verb, steps_pronoun = (
        ("sends", "that step") if step_count == 1 else ("send", "them")
    )
    text = (
        f"{_join_with_and(uses)} {verb} webhooks to it. Point {steps_pronoun} at "
        "another endpoint first."
    )
    if any(play.status != Play.Status.ACTIVE for play in positions_by_play):
        text += (
            " Steps of draft and paused plays count, because those plays can "
            "be activated later."
        )
    return text


def _join_with_and(items: list[str]) -> str:
    """Return the items as "A", "A and B" or "A, B and C"."""
    if len(items) < 2:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    """The delivery log: every payload, its attempts and its last outcome."""

    list_display = [
        "delivery_key",
        "event_kind",
        "endpoint",
        "status",
        "attempts",
        "last_status_code",
        "next_attempt_at",
        "created_at",
        "delivered_at",
    ]
    list_select_related = ["endpoint"]
    list_filter = ["status", "endpoint"]
    search_fields = ["delivery_key", "event_kind"]
    exclude = ["payload"]
    readonly_fields = ["formatted_payload"]
    actions = ["retry_now"]

    @admin.display(description="payload")
    def formatted_payload(self, delivery: WebhookDelivery) -> str:
        text = json.dumps(delivery.payload, indent=2, sort_keys=True)
        return format_html("<pre>{}</pre>", text)

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("lifecycle.change_webhookdelivery")

    @admin.action(description="Retry now", permissions=["retry"])
    def retry_now(self, request: HttpRequest, queryset: QuerySet) -> None:
        selected = list(queryset.values_list("pk", flat=True))
        queued = retry_webhook_deliveries(delivery_ids=selected)
        skipped = len(selected) - queued
        message = f"Queued {queued} deliver{'y' if queued == 1 else 'ies'} to retry."
        if skipped:
            message += f" Skipped {skipped} already delivered."
        self.message_user(request, message)
