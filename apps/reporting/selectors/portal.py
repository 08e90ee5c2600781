"""Portal KPIs: time-to-value, CSAT, course completion, deflection, freshness.

Each function runs one SQL statement. The windowed ones take the total and
the breakdown by account segment from that one statement. Most group by
segment and sum the groups into the total. Time-to-value uses GROUPING SETS
instead, because medians cannot be summed. A share whose denominator is zero
is None, which pages and the API show as "no data", never as 0 %.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Generic, TypeVar

from django.conf import settings
from django.db import connection
from django.db.models import Count, F, Q, Sum

from apps.lifecycle.models import ActivityEvent
from apps.lifecycle.registry import get_kind
from apps.membership.models import Account, Member
from apps.portal.models import Article, Case, CaseAttempt, CourseEnrolment
from apps.reporting.selectors.activity import _day_start

# The event kind that marks a member's first value moment, unless the
# RM6_VALUE_MOMENT_KIND setting names another one.
DEFAULT_VALUE_MOMENT_KIND = "portal.onboarding_path_completed"
NO_ACCOUNT_LABEL = "No account"

Row = TypeVar("Row")


@dataclass(frozen=True)
class Share:
    """A count out of a total, such as deflected attempts out of attempts."""

    count: int
    total: int

    @property
    def value(self) -> float | None:
        """Return count / total, or None when the total is zero."""
        if not self.total:
            return None
        return self.count / self.total

    @property
    def percent(self) -> float | None:
        """Return the share in percent with one decimal, or None without data."""
        if self.value is None:
            return None
        return round(self.value * 100, 1)


@dataclass(frozen=True)
class Breakdown(Generic[Row]):
    """One KPI for the whole window and for each account segment.

    `segments` has one row per `Account.Segment` in their order, then one
    for members or cases without an account, with zero counts where the
    window has no data.
    """

    total: Row
    segments: list[Row]


@dataclass(frozen=True)
class TimeToValue:
    """Time-to-value of a cohort: members or accounts that started in the window."""

    label: str
    segment: str | None
    cohort: int
    reached: int
    median: timedelta | None

    @property
    def not_reached(self) -> Share:
        """Return the cohort's share that has no value moment yet."""
        return Share(self.cohort - self.reached, self.cohort)


@dataclass(frozen=True)
class TimeToValueReport:
    """Time-to-value by segment, with the event kind that was counted.

    `is_kind_registered` is False when no app registered `kind`, which
    usually means a mistyped RM6_VALUE_MOMENT_KIND. No member can then reach
    the value moment, so the page shows a warning next to the "not yet" counts.
    """

    kind: str
    is_kind_registered: bool
    breakdown: Breakdown[TimeToValue]


@dataclass(frozen=True)
class Csat:
    """Satisfaction scores (1 to 5) of the resolved cases rated in a window."""

    label: str
    segment: str | None
    rated: int
    score_sum: int
    satisfied: int

    @property
    def mean_score(self) -> float | None:
        """Return the mean score, or None when no case was rated."""
        if not self.rated:
            return None
        return self.score_sum / self.rated

    @property
    def satisfied_share(self) -> Share:
        """Return the share of rated cases that scored 4 or 5."""
        return Share(self.satisfied, self.rated)


@dataclass(frozen=True)
class CourseCompletion:
    """Course enrolments started in a window and how many of them completed."""

    label: str
    segment: str | None
    started: int
    completed: int

    @property
    def rate(self) -> Share:
        return Share(self.completed, self.started)


@dataclass(frozen=True)
class Deflection:
    """Case attempts started in a window, by their current outcome."""

    label: str
    segment: str | None
    deflected: int
    not_deflected: int
    pending: int

    @property
    def classified(self) -> int:
        return self.deflected + self.not_deflected

    @property
    def attempts(self) -> int:
        return self.classified + self.pending

    @property
    def rate(self) -> Share:
        """Return deflected attempts out of the attempts that have an outcome."""
        return Share(self.deflected, self.classified)

    @property
    def pending_share(self) -> Share:
        return Share(self.pending, self.attempts)


@dataclass(frozen=True)
class ContentFreshness:
    """Published articles on `today` and how many are within their review interval."""

    today: date
    published: int
    fresh: int
    never_reviewed: int

    @property
    def rate(self) -> Share:
        return Share(self.fresh, self.published)

    @property
    def overdue(self) -> int:
        """Return the published articles past their review date or never reviewed."""
        return self.published - self.fresh


@dataclass(frozen=True)
class SegmentKpis:
    """The windowed portal KPIs of one segment, side by side."""

    label: str
    segment: str | None
    member_time_to_value: TimeToValue
    account_time_to_value: TimeToValue
    csat: Csat
    course_completion: CourseCompletion
    deflection: Deflection


@dataclass(frozen=True)
class PortalKpis:
    """Every portal KPI for one window, as the dashboard and the API show them."""

    start: date
    end: date
    today: date
    member_time_to_value: TimeToValueReport
    account_time_to_value: TimeToValueReport
    csat: Breakdown[Csat]
    course_completion: Breakdown[CourseCompletion]
    deflection: Breakdown[Deflection]
    content_freshness: ContentFreshness

    @property
    def segments(self) -> list[SegmentKpis]:
        """Return one row per segment with every windowed KPI of that segment."""
        return [
            SegmentKpis(
                label=member_ttv.label,
                segment=member_ttv.segment,
                member_time_to_value=member_ttv,
                account_time_to_value=account_ttv,
                csat=csat,
                course_completion=course,
                deflection=deflection,
            )
            for member_ttv, account_ttv, csat, course, deflection in zip(
                self.member_time_to_value.breakdown.segments,
                self.account_time_to_value.breakdown.segments,
                self.csat.segments,
                self.course_completion.segments,
                self.deflection.segments,
                strict=True,
            )
        ]


def get_value_moment_kind() -> str:
    """Return the event kind that counts as a member's first value moment."""
    return getattr(settings, "RM6_VALUE_MOMENT_KIND", DEFAULT_VALUE_MOMENT_KIND)


def _segment_rows() -> list[tuple[str | None, str]]:
    return [*Account.Segment.choices, (None, NO_ACCOUNT_LABEL)]


def _summed_breakdown(
    counts: dict[str | None, dict[str, int]],
    build: Callable[..., Row],
    fields: tuple[str, ...],
) -> Breakdown[Row]:
    """Build a breakdown from per-segment counts, with their sum as the total.

    `build(label, segment, **counts)` makes one row. Counts under a segment
    value that `Account.Segment` no longer lists still reach the total.
    """
    zero = dict.fromkeys(fields, 0)
    total = {name: sum(row[name] for row in counts.values()) for name in fields}
    return Breakdown(
        total=build("All segments", None, **total),
        segments=[
            build(label, value, **counts.get(value, zero))
            for value, label in _segment_rows()
        ],
    )


# Time-to-value --------------------------------------------------------------

# GROUPING SETS returns the total row (grouping = 1) and one row per segment
# in one statement. The FILTER keeps members or accounts without a value
# moment out of the median, because GREATEST would turn their NULL into 0.
# A value moment before the start counts as zero time.
_TIME_TO_VALUE_SELECT = """
SELECT GROUPING(cohort.segment) AS is_total,
       cohort.segment,
       count(*) AS cohort,
       count(value_moments.reached_at) AS reached,
       percentile_cont(0.5) WITHIN GROUP (
           ORDER BY GREATEST(
               0, extract(epoch FROM value_moments.reached_at - cohort.started_at)
           )::double precision
       ) FILTER (WHERE value_moments.reached_at IS NOT NULL) AS median_seconds
FROM cohort
LEFT JOIN value_moments ON value_moments.subject_id = cohort.id
GROUP BY GROUPING SETS ((), (cohort.segment))
"""

_MEMBER_TIME_TO_VALUE_SQL = (
    """
WITH cohort AS (
    SELECT member.id, member.first_signed_in_at AS started_at, account.segment
    FROM {members} AS member
    LEFT JOIN {accounts} AS account ON account.id = member.account_id
    WHERE member.first_signed_in_at >= %(since)s
      AND member.first_signed_in_at < %(until)s
      AND member.merged_into_id IS NULL
), value_moments AS (
    SELECT event.member_id AS subject_id, min(event.occurred_at) AS reached_at
    FROM {events} AS event
    WHERE event.kind = %(kind)s
      AND event.member_id IN (SELECT id FROM cohort)
    GROUP BY event.member_id
)
"""
    + _TIME_TO_VALUE_SELECT
)

# The contract starts at 00:00 on its date in the account's own time zone.
_ACCOUNT_TIME_TO_VALUE_SQL = (
    """
WITH cohort AS (
    SELECT account.id,
           (account.contract_start::timestamp AT TIME ZONE account.time_zone)
               AS started_at,
           account.segment
    FROM {accounts} AS account
    WHERE account.contract_start >= %(start)s
      AND account.contract_start < %(end)s
), value_moments AS (
    SELECT member.account_id AS subject_id, min(event.occurred_at) AS reached_at
    FROM {events} AS event
    JOIN {members} AS member ON member.id = event.member_id
    WHERE event.kind = %(kind)s
      AND member.account_id IN (SELECT id FROM cohort)
    GROUP BY member.account_id
)
"""
    + _TIME_TO_VALUE_SELECT
)


def _run_time_to_value(sql: str, params: dict[str, Any]) -> TimeToValueReport:
    kind = get_value_moment_kind()
    tables = {
        "members": Member._meta.db_table,
        "accounts": Account._meta.db_table,
        "events": ActivityEvent._meta.db_table,
    }
    with connection.cursor() as cursor:
        cursor.execute(sql.format(**tables), {**params, "kind": kind})
        rows = cursor.fetchall()

    def build(label: str, segment: str | None, row: tuple | None) -> TimeToValue:
        if row is None:
            return TimeToValue(label, segment, cohort=0, reached=0, median=None)
        _, _, cohort, reached, median_seconds = row
        median = None if median_seconds is None else timedelta(seconds=median_seconds)
        return TimeToValue(label, segment, cohort, reached, median)

    total = next((row for row in rows if row[0]), None)
    by_segment = {row[1]: row for row in rows if not row[0]}
    breakdown = Breakdown(
        total=build("All segments", None, total),
        segments=[
            build(label, value, by_segment.get(value))
            for value, label in _segment_rows()
        ],
    )
    return TimeToValueReport(
        kind=kind, is_kind_registered=get_kind(kind) is not None, breakdown=breakdown
    )


def get_member_time_to_value(*, start: date, end: date) -> TimeToValueReport:
    """Return the members' time-to-value for those who first signed in in the window.

    The KPI definition: "per member (or account): time from first sign-in (account:
    contract start) to the first value moment, an event kind configured as
    such (default: onboarding path completed). Reported as the median over
    members who reached it, with the share who have not yet".

    The window selects a cohort: members whose `first_signed_in_at` falls in
    `[start, end)`. Their value moment is the first event of
    `get_value_moment_kind()` at any time up to now, so "not yet" means not
    by the time of the query, and a recent window has more of them. Members
    merged into another are left out, because the survivor counts for them.
    Segments are those of each member's current account.
    """
    params = {"since": _day_start(start), "until": _day_start(end)}
    return _run_time_to_value(_MEMBER_TIME_TO_VALUE_SQL, params)


def get_account_time_to_value(*, start: date, end: date) -> TimeToValueReport:
    """Return the accounts' time-to-value for contracts that started in the window.

    The KPI definition, per account: "time from first sign-in (account: contract start)
    to the first value moment", here the first value moment of any of the
    account's current members, at any time up to now.

    The cohort is the accounts whose `contract_start` date falls in
    `[start, end)`; accounts without a contract start are in no window. The
    clock starts at 00:00 on that date in the account's time zone.
    """
    return _run_time_to_value(_ACCOUNT_TIME_TO_VALUE_SQL, {"start": start, "end": end})


# CSAT -----------------------------------------------------------------------

# A solved case is resolved and waits only to be closed, and the member rates
# it on solve, so it counts as closed here. A reopened case does not count.
CSAT_STATUSES = (Case.Status.SOLVED, Case.Status.CLOSED)


def get_csat(*, start: date, end: date) -> Breakdown[Csat]:
    """Return the CSAT of the resolved cases rated in the window, by segment.

    The KPI definition: "mean satisfaction score (1 to 5) of closed cases rated in the
    window, and the share rated 4 or 5".

    A case counts when its `csat_rated_at` falls in `[start, end)` and its
    status is solved or closed now (see CSAT_STATUSES). The segment is that
    of the account the case was filed for.
    """
    rows = (
        Case.objects.filter(
            csat_rated_at__gte=_day_start(start),
            csat_rated_at__lt=_day_start(end),
            csat_score__isnull=False,
            status__in=CSAT_STATUSES,
        )
        .order_by()
        .values(segment=F("account__segment"))
        .annotate(
            rated=Count("id"),
            score_sum=Sum("csat_score"),
            satisfied=Count("id", filter=Q(csat_score__gte=4)),
        )
    )
    counts = {row.pop("segment"): row for row in rows}
    return _summed_breakdown(counts, Csat, ("rated", "score_sum", "satisfied"))


# Course completion ----------------------------------------------------------


def get_course_completion(*, start: date, end: date) -> Breakdown[CourseCompletion]:
    """Return the completion rate of the enrolments started in the window.

    The KPI definition: "enrolments started in the window that were completed, divided
    by enrolments started in the window".

    An enrolment counts as completed when it is completed now, even after
    the window's end, so an enrolment started on the window's last day is
    not held to a shorter deadline than one from its first day. A recent
    window therefore rises as members finish. The segment is that of each
    member's current account.
    """
    rows = (
        CourseEnrolment.objects.filter(
            started_at__gte=_day_start(start), started_at__lt=_day_start(end)
        )
        .order_by()
        .values(segment=F("member__account__segment"))
        .annotate(
            started=Count("id"),
            completed=Count("id", filter=Q(completed_at__isnull=False)),
        )
    )
    counts = {row.pop("segment"): row for row in rows}
    return _summed_breakdown(counts, CourseCompletion, ("started", "completed"))


# Case deflection ------------------------------------------------------------


def get_case_deflection(*, start: date, end: date) -> Breakdown[Deflection]:
    """Return the case attempts started in the window by outcome and segment.

    The KPI definition: "deflected case attempts divided by all case attempts. An
    attempt starts when a member opens the new-case form. It is deflected
    when the member opened at least one suggested answer and did not submit
    a case within 24 h, or said the answer solved the problem; it is not
    deflected when a case was submitted".

    The rate divides deflected attempts by the attempts that have an
    outcome, deflected or not. Pending attempts are neither yet, so they
    are counted apart and left out of the denominator: counting them would
    lower the rate of every recent window until they are classified. The
    segment is the one stored on the attempt when it started.
    """
    outcome = CaseAttempt.Outcome
    rows = (
        CaseAttempt.objects.filter(
            started_at__gte=_day_start(start), started_at__lt=_day_start(end)
        )
        .order_by()
        .values("segment")
        .annotate(
            deflected=Count("id", filter=Q(outcome=outcome.DEFLECTED)),
            not_deflected=Count("id", filter=Q(outcome=outcome.NOT_DEFLECTED)),
            pending=Count("id", filter=Q(outcome=outcome.PENDING)),
        )
    )
    # Attempts of members without an account store an empty segment.
    counts = {row.pop("segment") or None: row for row in rows}
    return _summed_breakdown(
        counts, Deflection, ("deflected", "not_deflected", "pending")
    )


# Content freshness ----------------------------------------------------------

_CONTENT_FRESHNESS_SQL = """
SELECT count(*) AS published,
       count(*) FILTER (
           WHERE reviewed_on + review_interval_days >= %(today)s
       ) AS fresh,
       count(*) FILTER (WHERE reviewed_on IS NULL) AS never_reviewed
FROM {articles}
WHERE is_published
"""


def get_content_freshness(*, today: date) -> ContentFreshness:
    """Return how many published articles are within their review interval today.

    The KPI definition: "share of published articles reviewed within their review
    interval (default 180 days)". The interval is each article's
    `review_interval_days`, 180 unless staff change it.

    An article is fresh while `reviewed_on` plus its interval is today or
    later, so one due today is fresh and one due yesterday is overdue. The
    date is computed here rather than read from `review_due_on`, so a stale
    stored due date cannot change the figure. An article never reviewed is
    not fresh. The window does not apply: this is the state on `today`.
    """
    sql = _CONTENT_FRESHNESS_SQL.format(articles=Article._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(sql, {"today": today})
        published, fresh, never_reviewed = cursor.fetchone()
    return ContentFreshness(today, published, fresh, never_reviewed)


def get_portal_kpis(*, start: date, end: date, today: date) -> PortalKpis:
    """Compute every portal KPI for the window; six SQL statements in all."""
    return PortalKpis(
        start=start,
        end=end,
        today=today,
        member_time_to_value=get_member_time_to_value(start=start, end=end),
        account_time_to_value=get_account_time_to_value(start=start, end=end),
        csat=get_csat(start=start, end=end),
        course_completion=get_course_completion(start=start, end=end),
        deflection=get_case_deflection(start=start, end=end),
        content_freshness=get_content_freshness(today=today),
    )
