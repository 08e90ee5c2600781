"""Admin for scorecards and account health scores.

Staff build a scorecard from the fixed set of measure kinds, each with a
weight and two thresholds. No SQL is ever entered here: the scoring engine
compiles each kind to its own SQL and passes every value as a parameter.
"""

from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.contrib.postgres.forms import SimpleArrayField
from django.db import connection
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.urls import reverse

from apps.lifecycle import scoring, tasks
from apps.lifecycle.admin_inline import InlineRowForm
from apps.lifecycle.models import (
    AccountHealthScore,
    AccountHealthScoreSnapshot,
    Scorecard,
    ScorecardMeasure,
)
from apps.membership.admin import ReadOnlyAdmin

# The key of the advisory lock that serialises scorecard activations. Any
# fixed 64-bit number works, as long as nothing else uses it.
ACTIVATION_LOCK_KEY = 0x726D_365F_7363_6172


class ScorecardForm(forms.ModelForm):
    class Meta:
        model = Scorecard
        fields = ["name", "level", "description", "is_active"]

    def clean(self):
        cleaned = super().clean()
        level = cleaned.get("level")
        if not cleaned.get("is_active") or not level:
            return cleaned

        # Two admins activating scorecards of one level at once would both
        # pass the check below, and the second save would then break the
        # database's one-active rule with an error page. Admin validates and
        # saves in one transaction, so this lock, held until it commits, makes
        # the second check wait for the first activation and report it.
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ACTIVATION_LOCK_KEY])
        other = (
            Scorecard.objects.filter(level=level, is_active=True)
            .exclude(pk=self.instance.pk)
            .first()
        )
        if other is not None:
            self.add_error(
                "is_active",
                f"The {other.get_level_display().lower()} scorecard "
                f"“{other.name}” is already active, and only one per level can "
                "be. Deactivate it first.",
            )
        return cleaned


class EventKindsField(SimpleArrayField):
    """Comma-separated event kinds, with empty items dropped.

    SimpleArrayField would reject the empty item that a trailing comma
    leaves, with "Item 2 in the array did not validate: This field is
    required.", an error that does not point at the comma.
    """

    def to_python(self, value):
        if isinstance(value, str):
            items = [item for item in value.split(self.delimiter) if item.strip()]
            value = self.delimiter.join(items)
        return super().to_python(value)


class ScorecardMeasureForm(InlineRowForm):
    class Meta:
        model = ScorecardMeasure
        field_classes = {"event_kinds": EventKindsField}
        fields = [
            "position",
            "kind",
            "label",
            "event_kinds",
            "window_days",
            "weight",
            "zero_at",
            "full_at",
        ]

    def __init__(self, *args, level: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.level = level

    def clean_weight(self) -> Decimal:
        weight = self.cleaned_data["weight"]
        if weight is not None and weight <= 0:
            raise forms.ValidationError(
                f"The weight {weight} must be above 0. Enter a positive weight "
                "such as 1, or delete the measure to leave it out of the score."
            )
        return weight

    def clean(self):
        cleaned = super().clean()
        required = ("kind", "window_days", "zero_at", "full_at")
        if not self.level or any(cleaned.get(name) is None for name in required):
            return cleaned

        errors = scoring.list_measure_errors(
            kind=cleaned["kind"],
            level=self.level,
            event_kinds=cleaned.get("event_kinds") or [],
            window_days=cleaned["window_days"],
            zero_at=cleaned["zero_at"],
            full_at=cleaned["full_at"],
        )
        for field, messages_ in errors.items():
            for message in messages_:
                self.add_error(field, message)
        return cleaned


class ScorecardMeasureFormSet(forms.BaseInlineFormSet):
    def get_form_kwargs(self, index):
        kwargs = super().get_form_kwargs(index)
        kwargs["level"] = self.instance.level
        return kwargs

    def clean(self):
        super().clean()
        remaining = [
            form
            for form in self.forms
            if form.has_changed() or form.instance.pk
            if not self._should_delete_form(form)
        ]
        labels = [
            (
                form.cleaned_data.get("label")
                or ScorecardMeasure.Kind(form.cleaned_data["kind"]).label
            ).strip()
            for form in remaining
            if form.cleaned_data.get("kind") in ScorecardMeasure.Kind.values
        ]
        folded = [label.casefold() for label in labels]
        repeated = sorted(
            {label for label in labels if folded.count(label.casefold()) > 1},
            key=lambda label: (label.casefold(), label),
        )
        if repeated:
            raise forms.ValidationError(
                f"More than one measure is labelled {', '.join(map(repr, repeated))}, "
                "so score pages could not tell them apart. Give each a label of "
                "its own."
            )
        if len(remaining) > scoring.MAX_MEASURES:
            raise forms.ValidationError(
                f"This scorecard has {len(remaining)} measures, but a scorecard "
                f"can have at most {scoring.MAX_MEASURES}. Delete "
                f"{len(remaining) - scoring.MAX_MEASURES} of them."
            )
        if not self.instance.is_active:
            return
        if not remaining:
            raise forms.ValidationError(
                "An active scorecard needs at least one measure. Add one, or "
                "untick Active."
            )


def _measure_spec(measure: ScorecardMeasure) -> scoring.MeasureSpec:
    return scoring.MeasureSpec(
        key="",
        kind=measure.kind,
        label=measure.label,
        weight=measure.weight,
        zero_at=measure.zero_at,
        full_at=measure.full_at,
        window_days=measure.window_days,
        event_kinds=tuple(measure.event_kinds),
    )


class ScorecardMeasureInline(admin.StackedInline):
    """Measures one below the other, each field with its label and help text.

    A table row per measure was wider than the page, and its inputs had no
    labels of their own.
    """

    model = ScorecardMeasure
    form = ScorecardMeasureForm
    formset = ScorecardMeasureFormSet
    extra = 1
    max_num = scoring.MAX_MEASURES
    ordering = ["position", "id"]
    fields = [
        ("kind", "label"),
        ("event_kinds", "window_days"),
        ("zero_at", "full_at"),
        ("weight", "position"),
        "meaning",
    ]
    readonly_fields = ["meaning"]

    @admin.display(description="meaning")
    def meaning(self, measure: ScorecardMeasure) -> str:
        if measure.pk is None:
            return "Shown once saved."
        return scoring.describe_measure(_measure_spec(measure))


@admin.register(Scorecard)
class ScorecardAdmin(admin.ModelAdmin):
    form = ScorecardForm
    inlines = [ScorecardMeasureInline]
    list_display = ["name", "level", "is_active", "measure_count", "updated_at"]
    list_filter = ["level", "is_active"]
    search_fields = ["name"]
    readonly_fields = ["summary"]
    actions = ["rescore_now"]

    class Media:
        # Keeps the wide measure kind selects inside narrow windows.
        css = {"all": ["css/admin-forms.css"]}

    def get_queryset(self, request: HttpRequest) -> QuerySet[Scorecard]:
        return super().get_queryset(request).annotate(measure_total=Count("measures"))

    @admin.display(description="measures", ordering="measure_total")
    def measure_count(self, scorecard: Scorecard) -> int:
        return scorecard.measure_total

    @admin.display(description="what the score means")
    def summary(self, scorecard: Scorecard) -> str:
        measures = list(scorecard.measures.all()) if scorecard.pk else []
        if not measures:
            return "No measures yet."
        total = sum((m.weight for m in measures), Decimal(0))
        lines = [
            f"{m.label or m.get_kind_display()}: "
            f"{scoring.describe_measure(_measure_spec(m), total_weight=total)}"
            for m in measures
        ]
        lines.append(
            "The score is the weighted mean of the measures' 0-100 values, "
            "rounded. Red is below 40, yellow 40 to 69, green 70 and up."
        )
        return "\n".join(lines)

    @admin.action(description="Rescore every subject of the selected levels now")
    def rescore_now(self, request: HttpRequest, queryset: QuerySet[Scorecard]):
        levels = set(queryset.values_list("level", flat=True))
        if Scorecard.Level.MEMBER in levels:
            tasks.rescore_all_members_task.delay()
        if Scorecard.Level.ACCOUNT in levels:
            tasks.rescore_all_accounts_task.delay()
        self.message_user(
            request,
            "A full rescore is queued for: "
            f"{', '.join(sorted(levels))}. Scores change as workers finish it.",
            messages.SUCCESS,
        )

    def save_related(self, request, form, formsets, change) -> None:
        super().save_related(request, form, formsets, change)
        if form.instance.is_active:
            self.message_user(
                request,
                "Scores use these measures from the next full pass, nightly, "
                "or at once with the action “Rescore every subject of the "
                "selected levels now”.",
                messages.INFO,
            )


# Fields the scorer writes and forms leave out (editable=False), shown on a
# score's page so staff can see what the last refresh read and replaced.
SCORE_REFRESH_FIELDS = [
    "events_read_until",
    "previous_score",
    "previous_band",
    "previous_computed_at",
]


@admin.register(AccountHealthScore)
class AccountHealthScoreAdmin(ReadOnlyAdmin):
    list_display = ["account", "score", "band", "computed_at"]
    list_select_related = ["account"]
    list_filter = ["band"]
    search_fields = ["account__name"]
    # Lowest scores first: the accounts that need attention.
    ordering = ["score", "pk"]
    readonly_fields = SCORE_REFRESH_FIELDS

    def view_on_site(self, score: AccountHealthScore) -> str:
        """Return the URL of the account's health page, for View on site."""
        return reverse("lifecycle:account_health", args=[score.account_id])


@admin.register(AccountHealthScoreSnapshot)
class AccountHealthScoreSnapshotAdmin(ReadOnlyAdmin):
    list_display = ["account", "day", "score", "band"]
    list_select_related = ["account"]
    list_filter = ["band"]
    search_fields = ["account__name"]
    date_hierarchy = "day"
