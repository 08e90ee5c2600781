"""Admin for plays: editing, audience preview and activation, enrolments."""

import json
import sys

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.forms.fields import InvalidJSONInput
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from apps.lifecycle import registry
from apps.lifecycle.actions import get_action, list_actions
from apps.lifecycle.admin_inline import InlineRowForm
from apps.lifecycle.delivery.step_config import (
    check_account_templates,
    describe_missing_endpoint,
    get_webhook_endpoint_id,
    lock_webhook_endpoints,
)
from apps.lifecycle.models import (
    Enrolment,
    FatigueCap,
    HealthBand,
    Play,
    PlayStep,
    StepRun,
    Touch,
    WebhookDelivery,
)
from apps.lifecycle.models.events import MAX_CLOCK_SKEW
from apps.lifecycle.plays.runner import WAIT_ACTION
from apps.lifecycle.plays.selectors import get_play_preview
from apps.lifecycle.plays.services import activate_play, pause_play, retry_enrolment
from apps.lifecycle.plays.triggers import (
    CONFIGURED_KIND_TRIGGERS,
    MAX_TRIGGER_EVENT_AGE,
)
from apps.lifecycle.storable import MAX_DEPTH, find_unstorable
from apps.membership.admin import ReadOnlyAdmin
from apps.membership.admin_deletion import KeptWithHistoryAdmin
from apps.membership.models import Account, ConsentPurpose, Member
from rm6.errors import DomainError

PREVIEW_TEMPLATE = "admin/lifecycle/play/preview.html"
Trigger = Play.Trigger
# Upper bounds on the play's hour and day counts. The runner and the schedule
# queries add them to the current date, and far larger values overflow
# Python's datetime and PostgreSQL's timestamp, which fails every run.
MAX_TRIGGER_HOURS = 24 * 365
MAX_TRIGGER_DAYS = 3650
MAX_WAIT_HOURS = 24 * 3650
# The runner stores the position after the current step in a smallint, so
# a step at 32767 could never finish. Plays have a handful of steps.
MAX_STEP_POSITION = 1000
# The model's validator and check constraint enforce the same maximum.
MAX_HOLDOUT_PERCENT = 90
TRIGGER_HELP_TEXT = (
    "Triggers other than unanswered question, stagnant account and renewal "
    "window start the play for new events only: recorded after the play's "
    "activation, occurred at most "
    f"{MAX_CLOCK_SKEW.total_seconds() / 60:g} minutes before it, and "
    f"recorded at most {MAX_TRIGGER_EVENT_AGE.total_seconds() / 3600:g} hours "
    "after they occurred. Older events, such as backfills through the API or "
    "held usage released later, are recorded and scored but start no play. "
    "First sign-in fires at a member's first sign-in after they confirmed "
    "their email address, or at the confirmation if they are signed in then."
)


def _action_choices(current: str = "") -> list[tuple[str, str]]:
    choices = [(action.name, action.label) for action in list_actions()]
    if current and get_action(current) is None:
        choices.append((current, f"{current} (not registered)"))
    return choices


def _multiple_choice(choices, label: str) -> forms.MultipleChoiceField:
    return forms.MultipleChoiceField(
        choices=choices,
        required=False,
        label=label,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: everyone.",
    )


class PlayForm(forms.ModelForm):
    audience_segments = _multiple_choice(Account.Segment.choices, "Segments")
    audience_cs_tiers = _multiple_choice(Account.CsTier.choices, "CS tiers")
    audience_roles = _multiple_choice(Member.Role.choices, "Roles")
    audience_lifecycle_stages = _multiple_choice(
        Member.LifecycleStage.choices, "Lifecycle stages"
    )
    audience_bands = _multiple_choice(HealthBand.choices, "Health bands")
    # Declared here so that clean_holdout_percent, not the model field's
    # generic validators, words the range error.
    holdout_percent = forms.IntegerField(
        label="Holdout percent",
        initial=0,
        help_text=Play._meta.get_field("holdout_percent").help_text,
    )

    class Meta:
        model = Play
        fields = [
            "name",
            "play_id",
            "campaign_id",
            "description",
            "subject_level",
            "trigger",
            "trigger_event_kind",
            "trigger_band",
            "trigger_hours",
            "trigger_days",
            "audience_segments",
            "audience_cs_tiers",
            "audience_roles",
            "audience_lifecycle_stages",
            "audience_bands",
            "holdout_percent",
        ]
        help_texts = {"trigger": TRIGGER_HELP_TEXT}

    def _require(self, field: str, message: str) -> None:
        if self.cleaned_data.get(field) in (None, ""):
            self.add_error(field, message)

    def _forbid(self, field: str, message: str) -> None:
        if self.cleaned_data.get(field) not in (None, ""):
            self.add_error(field, message)

    def _check_range(self, field: str, unit: str, minimum: int, maximum: int) -> None:
        value = self.cleaned_data.get(field)
        if value is not None and not minimum <= value <= maximum:
            self.add_error(
                field,
                f"{value} {unit} is out of range: enter {minimum} to {maximum} {unit}.",
            )

    def _clean_event_kind(self, trigger: str) -> None:
        kind = self.cleaned_data.get("trigger_event_kind", "")
        if trigger not in CONFIGURED_KIND_TRIGGERS:
            self._forbid(
                "trigger_event_kind",
                "Only event and first-use triggers take an event kind; leave it empty.",
            )
        elif not kind:
            self.add_error("trigger_event_kind", "This trigger needs an event kind.")
        elif registry.get_kind(kind) is None:
            self.add_error(
                "trigger_event_kind",
                f"Unknown event kind {kind!r}: use a registered kind such as "
                "membership.signed_in, or a product.<feature> kind.",
            )

    def clean_holdout_percent(self) -> int:
        percent = self.cleaned_data["holdout_percent"]
        if not 0 <= percent <= MAX_HOLDOUT_PERCENT:
            raise forms.ValidationError(
                f"A holdout of {percent}% is out of range: enter 0 to "
                f"{MAX_HOLDOUT_PERCENT}, so that at least "
                f"{100 - MAX_HOLDOUT_PERCENT}% of the audience gets the play."
            )
        return percent

    def clean(self):
        cleaned = super().clean()
        trigger = cleaned.get("trigger")
        if not trigger:
            return cleaned

        self._clean_event_kind(trigger)
        if trigger == Trigger.UNANSWERED_QUESTION:
            self._require(
                "trigger_hours", "Set after how many hours a question counts."
            )
            self._check_range("trigger_hours", "hours", 1, MAX_TRIGGER_HOURS)
        else:
            self._forbid(
                "trigger_hours", "Only unanswered-question triggers take hours."
            )
        if trigger in (Trigger.STAGNANT_ACCOUNT, Trigger.RENEWAL_WINDOW):
            self._require("trigger_days", "Set the number of days.")
            # A renewal window of 0 days opens on the renewal date itself.
            min_days = 0 if trigger == Trigger.RENEWAL_WINDOW else 1
            self._check_range("trigger_days", "days", min_days, MAX_TRIGGER_DAYS)
        else:
            self._forbid(
                "trigger_days",
                "Only stagnant-account and renewal-window triggers take days.",
            )
        band = cleaned.get("trigger_band")
        if trigger != Trigger.HEALTH_BAND_CHANGE:
            self._forbid("trigger_band", "Only band-change triggers take a band.")
        elif band and band not in HealthBand.values:
            self.add_error(
                "trigger_band",
                f"Unknown band {band!r}: use red, yellow or green, or leave empty.",
            )
        return cleaned


class StepConfigField(forms.JSONField):
    """A JSON field for step configs that PostgreSQL jsonb can store.

    Its errors name the line and column of invalid JSON, and what
    `find_unstorable` rejects in valid JSON, such as a NUL character. Such
    configs, and ones nested too deeply for json.loads, would otherwise fail
    with a server error.
    """

    def to_python(self, value):
        try:
            config = super().to_python(value)
        except RecursionError:
            raise forms.ValidationError(
                f"The config is nested too deeply to read; flatten it to "
                f"{MAX_DEPTH} levels or fewer."
            ) from None
        except forms.ValidationError:
            try:
                json.loads(value, cls=self.decoder)
            except json.JSONDecodeError as error:
                # Some of json's messages end in "at", as in "Invalid control
                # character at".
                reason = error.msg.removesuffix(" at")
                raise forms.ValidationError(
                    f"The config is not valid JSON: {reason} at line "
                    f"{error.lineno}, column {error.colno}. Put keys and texts in "
                    'double quotes, for example {"subject": "Welcome"}.'
                ) from None
            raise
        except ValueError:
            # json.loads raises it for an integer longer than Python reads.
            raise forms.ValidationError(
                "The config has a number of more than "
                f"{sys.get_int_max_str_digits()} digits, which cannot be read. "
                "Write it as a text in double quotes."
            ) from None
        problem = find_unstorable(config)
        if problem:
            raise forms.ValidationError(f"The config {problem}.")
        return config

    def bound_data(self, data, initial):
        # A rejected config is shown again as typed: decoding it again would
        # raise RecursionError, and a decoded lone surrogate cannot be
        # encoded into the UTF-8 page.
        try:
            config = super().bound_data(data, initial)
        except (RecursionError, ValueError):
            return InvalidJSONInput(data)
        if find_unstorable(config):
            return InvalidJSONInput(data)
        return config


class PlayStepForm(InlineRowForm):
    action = forms.ChoiceField(choices=())

    class Meta:
        model = PlayStep
        fields = ["position", "action", "wait_hours", "consent_purpose", "config"]
        field_classes = {"config": StepConfigField}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The empty first choice keeps the blank extra row unchanged when it
        # is submitted untouched. Without it, browsers submit the first
        # action, and the row fails with "This field is required."
        self.fields["action"].choices = [
            ("", "---------"),
            *_action_choices(self.instance.action or ""),
        ]

    def clean_position(self) -> int:
        position = self.cleaned_data["position"]
        if position is not None and position > MAX_STEP_POSITION:
            raise forms.ValidationError(
                f"Position {position} is too high: use a position from 0 to "
                f"{MAX_STEP_POSITION}."
            )
        return position

    def clean_action(self) -> str:
        action = self.cleaned_data["action"]
        if get_action(action) is None:
            raise forms.ValidationError(
                f"No installed app registers the action {action!r}; pick another."
            )
        return action

    def clean_consent_purpose(self) -> str:
        key = self.cleaned_data["consent_purpose"]
        if key and not ConsentPurpose.objects.filter(key=key, is_active=True).exists():
            raise forms.ValidationError(
                f"No active consent purpose has the key {key!r}; add it under "
                "Consent purposes or leave this empty."
            )
        return key

    def clean_config(self) -> dict:
        config = self.cleaned_data["config"]
        if config is None:
            return {}
        if not isinstance(config, dict):
            raise forms.ValidationError(
                'Enter a JSON object in braces, for example {"title": "Welcome"}.'
            )
        return config

    def clean(self):
        cleaned = super().clean()
        is_wait = cleaned.get("action") == WAIT_ACTION
        wait_hours = cleaned.get("wait_hours")
        if is_wait and not wait_hours:
            self.add_error("wait_hours", "A wait step needs wait hours above 0.")
        elif is_wait and wait_hours > MAX_WAIT_HOURS:
            self.add_error(
                "wait_hours",
                f"A wait of {wait_hours} hours is too long: enter at most "
                f"{MAX_WAIT_HOURS} hours (ten years).",
            )
        if not is_wait and cleaned.get("wait_hours") is not None:
            self.add_error("wait_hours", "Only wait steps take wait hours.")
        if is_wait and cleaned.get("consent_purpose"):
            # The runner skips a step for members without the consent, and a
            # skipped wait would let them reach the next step early.
            self.add_error(
                "consent_purpose",
                "A wait step contacts nobody, so it takes no consent purpose: "
                "set the purpose on the step that sends the message.",
            )
        action = get_action(cleaned.get("action") or "")
        config = cleaned.get("config")
        if action and action.check_config and isinstance(config, dict):
            for name, message in action.check_config(config):
                self.add_error("config", _name_config_error(name, message))
        return cleaned


def _history_of(play: Play) -> str:
    """Return what a play's enrolments record, naming a holdout only if it has one."""
    if play.holdout_percent:
        return "the play's history and its holdout comparison"
    return "the play's history"


def _instead_of_deleting(play: Play) -> str:
    """Return what to do with a play that has history, by its status."""
    if play.status == Play.Status.ACTIVE:
        return "Pause it instead."
    return "It enrols no one while it is not active, so it can stay as it is."


def _join_choices(labels: list[str]) -> str:
    """Return the labels as a list that ends in "or": "A, B or C"."""
    if len(labels) < 2:
        return "".join(labels)
    return f"{', '.join(labels[:-1])} or {labels[-1]}"


def _name_config_error(name: str, message: str) -> str:
    """Return the error with the config key it is about, unless it names it."""
    if name in message:
        return message
    return f"{name}: {message}"


class PlayStepFormSet(forms.BaseInlineFormSet):
    def clean(self):
        """Reject deleting a step that has run, and mark steps that cannot run.

        StepRun.step is RESTRICT, and without the deletion check admin's own
        message lists every run of the step, thousands for a busy play.
        Errors about one step are added to that step's form, next to its field.
        """
        errors = []
        for form in self.forms:
            step = form.instance
            if step.pk is None or not self._should_delete_form(form):
                continue
            runs = StepRun.objects.filter(step=step).count()
            if runs:
                errors.append(
                    f"Step {step.position} ({step.action}) has run for {runs} "
                    "enrolment(s), and those runs are the play's history, so "
                    "the step cannot be deleted. Leave the step in place, or "
                    "pause this play and set up a new play without it."
                )
        if errors:
            raise forms.ValidationError(errors)
        # Before Django's own unique check, whose message names no field.
        self._check_positions()
        self._check_account_steps()
        super().clean()
        self._lock_webhook_endpoints()

    def _check_positions(self) -> None:
        """Mark each step whose position another step of the play has too."""
        seen: set[int] = set()
        for form in self.forms:
            position = getattr(form, "cleaned_data", {}).get("position")
            if position is None or self._should_delete_form(form):
                continue
            if position in seen:
                form.add_error(
                    "position",
                    f"Another step of this play has position {position}: give "
                    "each step its own position.",
                )
            seen.add(position)

    def _lock_webhook_endpoints(self) -> None:
        """Lock the endpoints that webhook steps name until the save commits.

        Each step's form checked its endpoint without a lock, so an endpoint
        deleted since then is only seen here. Without the lock, a delete
        running meanwhile would miss the uncommitted steps, and they would
        fail at run time naming the missing endpoint.
        """
        endpoint_ids = {}
        for form in self.forms:
            if form.errors or self._should_delete_form(form):
                continue
            cleaned = getattr(form, "cleaned_data", {})
            endpoint_id = get_webhook_endpoint_id(
                cleaned.get("action") or "", cleaned.get("config")
            )
            if endpoint_id is not None:
                endpoint_ids[form] = endpoint_id

        existing = lock_webhook_endpoints(endpoint_ids.values())
        for form, endpoint_id in endpoint_ids.items():
            if endpoint_id not in existing:
                form.add_error("config", describe_missing_endpoint(endpoint_id))

    def _check_account_steps(self) -> None:
        """Mark each step that an account play cannot run as saved.

        A step whose action acts on a member only would be skipped for every
        account, and a CSM task that names the member would show an empty
        name. Steps left as they were in a play whose level did not change
        are not checked again, so a play saved before these checks can still
        be edited (and paused).
        """
        if self.instance.subject_level != Play.SubjectLevel.ACCOUNT:
            return
        level_changed = self.instance.pk is not None and (
            Play.objects.filter(pk=self.instance.pk)
            .exclude(subject_level=Play.SubjectLevel.ACCOUNT)
            .exists()
        )
        account_actions = sorted(
            action.label for action in list_actions() if not action.needs_member
        )
        stored_steps = {
            step.pk: (step.action, step.config)
            for step in PlayStep.objects.filter(play_id=self.instance.pk)
        }
        for form in self.forms:
            cleaned = getattr(form, "cleaned_data", {})
            action = get_action(cleaned.get("action") or "")
            if action is None or self._should_delete_form(form):
                continue
            # Compared with the stored step, not with form.has_changed(): the
            # JSON field reports a change whenever its text is submitted.
            stored = stored_steps.get(form.instance.pk)
            is_new_or_changed = stored != (action.name, cleaned.get("config") or {})
            if not (is_new_or_changed or level_changed):
                continue
            if action.needs_member:
                form.add_error(
                    "action",
                    f"{action.label} acts on a member, and this play enrols "
                    "accounts, so the step would be skipped for every "
                    f"enrolment. Use {_join_choices(account_actions)} in an account "
                    "play, or make the play enrol members.",
                )
            for name, message in check_account_templates(
                action.name, cleaned.get("config") or {}
            ):
                form.add_error("config", _name_config_error(name, message))


class PlayStepInline(admin.StackedInline):
    """Steps one below the other, each field with its label and help text.

    A table row per step was wider than the page, and its inputs had no
    labels of their own. The config gets a full line, as its JSON is long.
    """

    model = PlayStep
    form = PlayStepForm
    formset = PlayStepFormSet
    extra = 1
    ordering = ["position"]
    fields = [("position", "action"), ("wait_hours", "consent_purpose"), "config"]


@admin.register(Play)
class PlayAdmin(KeptWithHistoryAdmin):
    form = PlayForm
    inlines = [PlayStepInline]
    list_display = [
        "name",
        "play_id",
        "trigger",
        "subject_level",
        "status",
        "holdout_percent",
        "activated_at",
        "preview_link",
    ]
    list_filter = ["status", "trigger", "subject_level"]
    search_fields = ["name", "play_id", "campaign_id"]
    readonly_fields = ["status", "activated_at", "preview_link"]
    actions = ["pause_selected"]

    class Media:
        # Keeps the wide selects of the play and its steps inside narrow windows.
        css = {"all": ["css/admin-forms.css"]}

    def get_kept_reasons(self, objs) -> dict[int, str]:
        """Return why each play with enrolments stays, and to pause it instead."""
        enrolled = {
            row["play"]: row["count"]
            for row in Enrolment.objects.filter(play__in=[play.pk for play in objs])
            .values("play")
            .annotate(count=Count("pk"))
        }
        return {
            play.pk: f"{play.name}: it has {enrolled[play.pk]} "
            f"enrolment{'' if enrolled[play.pk] == 1 else 's'}, "
            f"{_history_of(play)}. {_instead_of_deleting(play)}"
            for play in objs
            if enrolled.get(play.pk)
        }

    # Once a play has run, its links and touches carry its play ID and
    # campaign, and its holdout group is being measured against the rest.
    # Changing them would split the play's attribution and bias the holdout
    # comparison, so they are fixed from the first activation.
    FIXED_AFTER_ACTIVATION = ["play_id", "campaign_id", "holdout_percent"]

    def get_readonly_fields(self, request: HttpRequest, obj=None) -> list[str]:
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and obj.activated_at is not None:
            fields += self.FIXED_AFTER_ACTIVATION
        return fields

    fieldsets = [
        (
            None,
            {
                "fields": [
                    "name",
                    "play_id",
                    "campaign_id",
                    "description",
                    "status",
                    "activated_at",
                    "preview_link",
                ]
            },
        ),
        (
            "Trigger",
            {
                "fields": [
                    "subject_level",
                    "trigger",
                    "trigger_event_kind",
                    "trigger_band",
                    "trigger_hours",
                    "trigger_days",
                ]
            },
        ),
        (
            "Audience",
            {
                "fields": [
                    "audience_segments",
                    "audience_cs_tiers",
                    "audience_roles",
                    "audience_lifecycle_stages",
                    "audience_bands",
                    "holdout_percent",
                ]
            },
        ),
    ]

    @admin.display(description="preview")
    def preview_link(self, play: Play) -> str:
        if play.pk is None:
            return "Save the play first."
        url = reverse("admin:lifecycle_play_preview", args=[play.pk])
        label = (
            "Preview, pause"
            if play.status == Play.Status.ACTIVE
            else "Preview, activate"
        )
        return format_html('<a href="{}">{}</a>', url, label)

    def get_urls(self):
        preview = self.admin_site.admin_view(self.preview_view)
        return [
            path("<int:play_id>/preview/", preview, name="lifecycle_play_preview"),
            *super().get_urls(),
        ]

    def preview_view(self, request: HttpRequest, play_id: int) -> HttpResponse:
        """Show the audience size and a sample; a POST activates or pauses the play."""
        play = get_object_or_404(Play, pk=play_id)
        if not self.has_view_permission(request, play):
            raise PermissionDenied
        can_activate = self.has_change_permission(request, play)

        if request.method == "POST":
            if not can_activate:
                raise PermissionDenied
            was_active = play.status == Play.Status.ACTIVE
            if "pause" in request.POST:
                pause_play(play=play, actor=request.user)
                return self._back_to_play(
                    request,
                    play,
                    f"Paused the play {play.name}."
                    if was_active
                    else f"The play {play.name} was not active, so nothing changed.",
                )
            try:
                activate_play(play=play, actor=request.user)
            except DomainError as error:
                self.message_user(request, error.message, messages.ERROR)
            else:
                return self._back_to_play(
                    request,
                    play,
                    f"The play {play.name} was already active."
                    if was_active
                    else f"Activated the play {play.name}.",
                )

        context = {
            **self.admin_site.each_context(request),
            "title": f"Preview: {play.name}",
            "opts": self.model._meta,
            "play": play,
            "preview": get_play_preview(play=play),
            "can_activate": can_activate and play.status != Play.Status.ACTIVE,
            "can_pause": can_activate and play.status == Play.Status.ACTIVE,
        }
        return TemplateResponse(request, PREVIEW_TEMPLATE, context)

    def _back_to_play(
        self, request: HttpRequest, play: Play, message: str
    ) -> HttpResponse:
        self.message_user(request, message)
        change_url = reverse("admin:lifecycle_play_change", args=[play.pk])
        return HttpResponseRedirect(change_url)

    @admin.action(description="Pause selected plays", permissions=["change"])
    def pause_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        paused = 0
        for play in queryset.filter(status=Play.Status.ACTIVE):
            pause_play(play=play, actor=request.user)
            paused += 1
        self.message_user(request, f"Paused {paused} play(s).")


class StepRunInline(admin.TabularInline):
    model = StepRun
    fields = [
        "step",
        "status",
        "outcome",
        "error",
        "webhook_delivery",
        "attempts",
        "started_at",
        "finished_at",
    ]
    readonly_fields = fields
    ordering = ["step__position"]
    extra = 0
    can_delete = False

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # A webhook step is done once its delivery is queued; whether the
        # receiver took it shows on the delivery, read here in the same query.
        deliveries = WebhookDelivery.objects.filter(step_run=OuterRef("pk"))
        return (
            super()
            .get_queryset(request)
            .select_related("step")
            .annotate(
                delivery_id=Subquery(deliveries.values("pk")[:1]),
                delivery_status=Subquery(deliveries.values("status")[:1]),
            )
        )

    @admin.display(description="webhook delivery")
    def webhook_delivery(self, run: StepRun) -> str:
        if run.delivery_id is None:
            return "-"
        url = reverse("admin:lifecycle_webhookdelivery_change", args=[run.delivery_id])
        status = WebhookDelivery.Status(run.delivery_status).label.lower()
        return format_html('<a href="{}">{}</a>', url, status)

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Enrolment)
class EnrolmentAdmin(ReadOnlyAdmin):
    inlines = [StepRunInline]
    list_display = [
        "play",
        "subject",
        "occurrence_key",
        "status",
        "is_holdout",
        "next_run_at",
        "enrolled_at",
        "last_error",
    ]
    list_select_related = ["play", "member__user", "account"]
    list_filter = ["status", "is_holdout", "play"]
    search_fields = [
        "subject_key",
        "occurrence_key",
        "member__user__email",
        "account__name",
        "play__play_id",
    ]
    actions = ["retry_failed"]
    show_full_result_count = False

    @admin.display(description="subject")
    def subject(self, enrolment: Enrolment) -> str:
        return str(enrolment.member or enrolment.account)

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("lifecycle.change_enrolment")

    @admin.action(description="Retry selected failed enrolments", permissions=["retry"])
    def retry_failed(self, request: HttpRequest, queryset: QuerySet) -> None:
        retried = sum(retry_enrolment(enrolment=e) for e in queryset)
        self.message_user(request, f"Retrying {retried} failed enrolment(s).")


class FatigueCapForm(forms.ModelForm):
    channel = forms.ChoiceField(choices=())

    class Meta:
        model = FatigueCap
        fields = ["channel", "max_touches", "period_days"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        channels = {a.channel for a in list_actions() if a.channel}
        if self.instance.channel:
            channels.add(self.instance.channel)
        self.fields["channel"].choices = [(c, c) for c in sorted(channels)]
        self.fields[
            "channel"
        ].help_text = "The channel of the actions this cap counts, across all plays."

    def clean_period_days(self) -> int:
        # The database constraint would reject 0 too, but with a message
        # that names only the constraint.
        days = self.cleaned_data["period_days"]
        if days < 1:
            raise forms.ValidationError(
                f"A period of {days} days counts no touches: enter 1 day or more."
            )
        return days


@admin.register(FatigueCap)
class FatigueCapAdmin(admin.ModelAdmin):
    form = FatigueCapForm
    list_display = ["channel", "max_touches", "period_days"]


@admin.register(Touch)
class TouchAdmin(ReadOnlyAdmin):
    list_display = ["member", "channel", "play", "touched_at"]
    list_select_related = ["member__user", "play"]
    list_filter = ["channel"]
    search_fields = ["member__user__email", "play__play_id"]
    show_full_result_count = False
