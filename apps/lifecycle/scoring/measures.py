"""Scorecard measures as plain values: the built-in defaults, loading and checks.

A measure maps a raw value linearly to 0-100 between `zero_at` (scores 0)
and `full_at` (scores 100), clamped at both ends. A score is the
weight-averaged normalised value of a scorecard's measures, rounded half
away from zero.
"""

import re
from dataclasses import dataclass
from decimal import Decimal

from apps.lifecycle import registry
from apps.lifecycle.models import HealthBand, ScorecardMeasure

Kind = ScorecardMeasure.Kind

# The event kind scoring records when a score moves to another band.
BAND_CHANGED_KIND = "lifecycle.health_band_changed"

# Bands of a 0-100 score: red below 40, yellow from 40 to 69, green from 70.
GREEN_FROM = 70
YELLOW_FROM = 40

# Bounds on a measure's thresholds. The scoring SQL computes
# (raw - zero_at) * 100 / (full_at - zero_at) in float8, and PostgreSQL
# raises "value out of range: overflow" when that exceeds about 1.8e308,
# which fails the whole batch. Within these bounds even a bigint raw value
# stays far below that, and no count, number of days or percentage that a
# measure yields comes near them.
MAX_THRESHOLD = 1_000_000_000
MIN_THRESHOLD_GAP = 0.001
# The maximum number of measures in a scorecard. The scoring SQL builds a
# score's components with one jsonb_build_object call of two arguments per
# measure, and PostgreSQL takes at most 100 arguments per call
# (max_function_args, 100 unless the server was built with another
# FUNC_MAX_ARGS).
MAX_MEASURES = 50

# Kinds computed from the event table by lifecycle itself, at both levels.
EVENT_MEASURE_KINDS = frozenset(
    {Kind.EVENT_COUNT, Kind.PRODUCT_USAGE, Kind.DAYS_SINCE_ACTIVITY}
)
# Kinds whose raw value is a whole number, shown without decimals.
COUNT_MEASURE_KINDS = frozenset(
    {Kind.EVENT_COUNT, Kind.PRODUCT_USAGE, Kind.COURSE_COMPLETIONS, Kind.OPEN_CASES}
)
ACCOUNT_ONLY_KINDS = frozenset({Kind.ACTIVE_MEMBER_SHARE})
# The data each kind that another app computes needs, named in the admin's error.
SOURCE_OWNERS = {
    Kind.ONBOARDING_SHARE: "the portal's onboarding steps",
    Kind.COURSE_COMPLETIONS: "the portal's courses",
    Kind.OPEN_CASES: "the portal's support cases",
}


def band_for(score: int) -> str:
    """Return the band for a 0-100 score."""
    if score >= GREEN_FROM:
        return HealthBand.GREEN
    if score >= YELLOW_FROM:
        return HealthBand.YELLOW
    return HealthBand.RED


@dataclass(frozen=True)
class MeasureSpec:
    """One measure of a scorecard, detached from the database row.

    `key` names the measure in a score's components.
    """

    key: str
    kind: str
    label: str
    weight: Decimal
    zero_at: float
    full_at: float
    window_days: int = 30
    event_kinds: tuple[str, ...] = ()
    position: int = 0


@dataclass(frozen=True)
class ScorecardSpec:
    level: str
    name: str
    measures: tuple[MeasureSpec, ...]
    scorecard_id: int | None = None


DEFAULT_MEMBER_SCORECARD = ScorecardSpec(
    level="member",
    name="Default member scorecard",
    measures=(
        MeasureSpec(
            key="activity",
            kind=Kind.EVENT_COUNT,
            label="Activity",
            weight=Decimal("0.6"),
            zero_at=0,
            full_at=20,
            position=0,
        ),
        MeasureSpec(
            key="recency",
            kind=Kind.DAYS_SINCE_ACTIVITY,
            label="Recency",
            weight=Decimal("0.4"),
            zero_at=30,
            full_at=3,
            position=1,
        ),
    ),
)
DEFAULT_ACCOUNT_SCORECARD = ScorecardSpec(
    level="account",
    name="Default account scorecard",
    measures=(
        MeasureSpec(
            key="active_members",
            kind=Kind.ACTIVE_MEMBER_SHARE,
            label="Active members",
            weight=Decimal("0.5"),
            zero_at=0,
            full_at=50,
            position=0,
        ),
        MeasureSpec(
            key="activity",
            kind=Kind.EVENT_COUNT,
            label="Activity",
            weight=Decimal("0.3"),
            zero_at=0,
            full_at=200,
            position=1,
        ),
        MeasureSpec(
            key="recency",
            kind=Kind.DAYS_SINCE_ACTIVITY,
            label="Recency",
            weight=Decimal("0.2"),
            zero_at=14,
            full_at=1,
            position=2,
        ),
    ),
)
DEFAULT_SCORECARDS = {
    "member": DEFAULT_MEMBER_SCORECARD,
    "account": DEFAULT_ACCOUNT_SCORECARD,
}


def _component_key(label: str, kind: str, used: set[str]) -> str:
    base = re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_") or kind
    key = base
    number = 2
    while key in used:
        key = f"{base}_{number}"
        number += 1
    used.add(key)
    return key


def get_scorecard_spec(level: str) -> ScorecardSpec:
    """Return the active scorecard of a level, or the built-in default, in one query.

    A level without an active scorecard, or whose active scorecard has no
    measures, is scored with the built-in default.
    """
    rows = list(
        ScorecardMeasure.objects.filter(
            scorecard__level=level, scorecard__is_active=True
        )
        .select_related("scorecard")
        .order_by("position", "id")
    )
    if not rows:
        return DEFAULT_SCORECARDS[level]

    used: set[str] = set()
    measures = tuple(
        MeasureSpec(
            key=_component_key(row.label or row.get_kind_display(), row.kind, used),
            kind=row.kind,
            label=row.label or row.get_kind_display(),
            weight=row.weight,
            zero_at=row.zero_at,
            full_at=row.full_at,
            window_days=row.window_days,
            event_kinds=tuple(row.event_kinds),
            position=index,
        )
        for index, row in enumerate(rows)
    )
    scorecard = rows[0].scorecard
    return ScorecardSpec(
        level=level,
        name=scorecard.name,
        measures=measures,
        scorecard_id=scorecard.pk,
    )


def list_measure_errors(
    *,
    kind: str,
    level: str,
    event_kinds: list[str],
    window_days: int,
    zero_at: float,
    full_at: float,
) -> dict[str, list[str]]:
    """Return the reasons a measure cannot be scored, by field, or {} when it can."""
    errors: dict[str, list[str]] = {}

    def add(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    label = Kind(kind).label if kind in Kind.values else kind
    if kind in ACCOUNT_ONLY_KINDS and level != "account":
        add("kind", f"{label} applies to account scorecards only.")
    elif kind not in EVENT_MEASURE_KINDS and kind not in ACCOUNT_ONLY_KINDS:
        builder = registry.get_measure_source(kind)
        if builder is None:
            owner = SOURCE_OWNERS.get(kind, "an app that computes them")
            add(
                "kind",
                f"{label} need {owner}, but no source is registered for them. "
                "Choose another measure.",
            )
        elif builder(level) is None:
            add("kind", f"{label} is not available for {level} scorecards.")

    if event_kinds and kind not in EVENT_MEASURE_KINDS:
        add(
            "event_kinds",
            "Event kinds apply only to event counts, product usage and days "
            "since activity. Leave the field empty for this measure.",
        )
    for name in event_kinds:
        if registry.get_kind(name) is None and not _is_registered_family(name):
            add(
                "event_kinds",
                f"{name!r} is not a registered event kind. Use a registered "
                "kind such as membership.signed_in, or a family such as "
                "product.*.",
            )
        elif name == BAND_CHANGED_KIND:
            add(
                "event_kinds",
                f"{name!r} is recorded by scoring itself, so counting it would "
                "make each band change move the score again. Remove it.",
            )

    if window_days < 1:
        add(
            "window_days",
            f"The window ({window_days} days) must be at least 1 day. Enter how "
            "many days back from now the measure reads.",
        )
    # Messages name the thresholds by their labels in admin, the only caller.
    for field, label, value in (
        ("zero_at", "Zero at", zero_at),
        ("full_at", "Full at", full_at),
    ):
        if abs(value) > MAX_THRESHOLD:
            add(
                field,
                f"{label} {value:g} is out of range. Enter a value from "
                f"{-MAX_THRESHOLD:,} to {MAX_THRESHOLD:,}.",
            )
    if zero_at == full_at:
        add(
            "full_at",
            f"Zero at and Full at are both {zero_at:g}, but they must differ: "
            "Zero at is the value that scores 0 and Full at the value that "
            "scores 100. Change one of them.",
        )
    elif abs(full_at - zero_at) < MIN_THRESHOLD_GAP:
        add(
            "full_at",
            f"Zero at ({zero_at:g}) and Full at ({full_at:g}) are less than "
            f"{MIN_THRESHOLD_GAP:g} apart. Move them at least "
            f"{MIN_THRESHOLD_GAP:g} apart.",
        )
    largest = max(zero_at, full_at)
    if kind == Kind.DAYS_SINCE_ACTIVITY and window_days < largest:
        add(
            "window_days",
            f"The window ({window_days} days) must be at least the largest "
            f"threshold ({largest:g} days). Days since activity are counted "
            "only within the window, so a longer idle time would score "
            "as the window's length.",
        )
    return errors


def _is_registered_family(name: str) -> bool:
    if not name.endswith(".*"):
        return False
    return any(kind.name == name for kind in registry.list_kinds())


def describe_measure(spec: MeasureSpec, *, total_weight: Decimal | None = None) -> str:
    """Return a sentence that explains what a measure counts and how it scores."""
    window = f"the last {spec.window_days} days"
    kinds = ", ".join(spec.event_kinds)
    active = "kinds that count as activity"
    match spec.kind:
        case Kind.EVENT_COUNT:
            description = f"Counts events of {kinds or active} in {window}."
        case Kind.PRODUCT_USAGE:
            description = (
                f"Counts product usage events ({kinds or 'product.*'}) in {window}."
            )
        case Kind.DAYS_SINCE_ACTIVITY:
            description = (
                f"Days since the last event of {kinds or active}, looking back "
                f"{spec.window_days} days at most."
            )
        case Kind.ONBOARDING_SHARE:
            description = (
                "Share (%) of the published onboarding steps done, ever. "
                "The window does not apply."
            )
        case Kind.COURSE_COMPLETIONS:
            description = f"Counts courses completed in {window}."
        case Kind.OPEN_CASES:
            description = (
                "Counts the support cases open now (new, open or waiting on "
                "the member). The window does not apply."
            )
        case Kind.ACTIVE_MEMBER_SHARE:
            description = (
                f"Share (%) of the account's members, deactivated ones excluded, "
                f"with activity in {window}. An account without members scores 0."
            )
        case _:
            description = (
                f"{Kind(spec.kind).label if spec.kind in Kind.values else spec.kind}."
            )

    if spec.zero_at < spec.full_at:
        scale = (
            f"{spec.zero_at:g} or less scores 0 and {spec.full_at:g} or more "
            "scores 100, linear between."
        )
    else:
        scale = (
            f"{spec.full_at:g} or less scores 100 and {spec.zero_at:g} or more "
            "scores 0, linear between."
        )
    weight = f"Weight {Decimal(spec.weight).normalize():f}"
    if total_weight:
        share = spec.weight / total_weight * 100
        weight += f" ({share:.0f} % of the score)"
    return f"{description} {scale} {weight}."
