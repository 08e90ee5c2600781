"""Compile a scorecard into the SQL that scores one batch of subjects.

Every measure becomes one aggregate or common table expression over all
subjects of the batch, yielding (subject_id, raw value). The measures that
count or date events share one scan of the event table, one aggregate
column each, so adding an event measure adds no second pass over events.
Normalisation, weighting, bands, the components JSON, the upsert of the
current score, the band change events and the closing snapshot of an
earlier day all happen in the same statement.

Values that come from admin (labels, kinds, thresholds, weights) only ever
reach the SQL as query parameters.
"""

import json
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

from apps.lifecycle import registry
from apps.lifecycle.horizon import horizon_expression
from apps.lifecycle.models import (
    AccountHealthScore,
    AccountHealthScoreSnapshot,
    ActivityEvent,
    HealthScore,
    HealthScoreSnapshot,
)
from apps.lifecycle.models.events import MAX_CLOCK_SKEW
from apps.lifecycle.scoring.measures import (
    ACCOUNT_ONLY_KINDS,
    BAND_CHANGED_KIND,
    COUNT_MEASURE_KINDS,
    EVENT_MEASURE_KINDS,
    GREEN_FROM,
    YELLOW_FROM,
    Kind,
    MeasureSpec,
    ScorecardSpec,
)
from apps.membership.models import Account, Member

logger = logging.getLogger(__name__)

EVENTS = ActivityEvent._meta.db_table
MEMBERS = Member._meta.db_table
ACCOUNTS = Account._meta.db_table
SOURCE_PARAMETERS = frozenset({"subject_ids", "since", "now"})
# How long a refresh waits for a score row that another transaction has
# locked. A transaction left holding one would otherwise keep each worker
# that refreshes the subject waiting until the task's time limit.
SCORE_LOCK_TIMEOUT = timedelta(seconds=30)
PARAMETER_PATTERN = re.compile(r"%\((\w+)\)s")


@dataclass(frozen=True)
class LevelTables:
    """The tables of one level: its subjects, its events and its scores."""

    subjects: str
    subject_account: str
    event_subject: str
    scores: str
    snapshots: str
    score_subject: str


LEVEL_TABLES = {
    "member": LevelTables(
        subjects=MEMBERS,
        subject_account="s.account_id",
        event_subject="member_id",
        scores=HealthScore._meta.db_table,
        snapshots=HealthScoreSnapshot._meta.db_table,
        score_subject="member_id",
    ),
    "account": LevelTables(
        subjects=ACCOUNTS,
        subject_account="s.id",
        event_subject="account_id",
        scores=AccountHealthScore._meta.db_table,
        snapshots=AccountHealthScoreSnapshot._meta.db_table,
        score_subject="account_id",
    ),
}


@dataclass(frozen=True)
class RefreshStatement:
    sql: str
    params: dict
    measures: tuple[MeasureSpec, ...]


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _kind_filter(measure: MeasureSpec, index: int, params: dict) -> str:
    """Return the condition on `e.kind` for a measure's events."""
    names = [name for name in measure.event_kinds if not name.endswith(".*")]
    prefixes = [name[:-1] for name in measure.event_kinds if name.endswith(".*")]
    if measure.kind == Kind.PRODUCT_USAGE and not measure.event_kinds:
        prefixes = ["product."]
    if not names and not prefixes:
        return "NOT (e.kind = ANY(%(inactive_kinds)s::text[]))"

    conditions = []
    if names:
        params[f"kinds_{index}"] = names
        conditions.append(f"e.kind = ANY(%(kinds_{index})s::text[])")
    if prefixes:
        params[f"prefixes_{index}"] = [_escape_like(p) + "%" for p in prefixes]
        conditions.append(f"e.kind LIKE ANY(%(prefixes_{index})s::text[])")
    return "(" + " OR ".join(conditions) + ")"


def _source_sql(measure: MeasureSpec, index: int, level: str) -> str | None:
    """Return a registered source's SQL with its window renamed, or None."""
    builder = registry.get_measure_source(measure.kind)
    if builder is None:
        logger.warning(
            "scorecard measure skipped: no source registered for kind %s",
            measure.kind,
        )
        return None
    sql = builder(level)
    if sql is None:
        logger.warning(
            "scorecard measure skipped: kind %s does not apply to level %s",
            measure.kind,
            level,
        )
        return None
    unknown = set(PARAMETER_PATTERN.findall(sql)) - SOURCE_PARAMETERS
    if unknown:
        logger.error(
            "scorecard measure skipped: source of kind %s uses unknown parameters %s",
            measure.kind,
            sorted(unknown),
        )
        return None
    return sql.replace("%(since)s", f"%(since_{index})s")


def _active_share_sql(index: int) -> str:
    # The share of the account's current members, deactivated ones
    # excluded, who have an active event in the window. An account without
    # such members gets no row, so its value is NULL and scores 0.
    return f"""
        SELECT m.account_id AS subject_id,
               100.0 * count(*) FILTER (WHERE EXISTS (
                   SELECT 1 FROM {EVENTS} e
                   WHERE e.member_id = m.id
                     AND e.occurred_at >= %(since_{index})s
                     AND e.occurred_at <= %(events_until)s
                     AND NOT (e.kind = ANY(%(inactive_kinds)s::text[]))
               )) / count(*) AS value
        FROM {MEMBERS} m
        WHERE m.account_id = ANY(%(subject_ids)s::bigint[])
          AND m.deactivated_at IS NULL
        GROUP BY m.account_id
    """


def _event_aggregate_sql(
    measures: list[tuple[int, MeasureSpec]],
    *,
    tables: LevelTables,
    now: datetime,
    params: dict,
) -> str:
    """Return one aggregate over the event table with a column per event measure.

    Conditions shared by every event measure go into WHERE, where an index
    can use them, and the rest become per-column FILTER clauses.
    """
    filters = {index: _kind_filter(m, index, params) for index, m in measures}
    windows = {index: m.window_days for index, m in measures}
    longest = max(windows.values())
    params["events_since"] = now - timedelta(days=longest)
    common_filter = filters[measures[0][0]]
    is_filter_shared = len(set(filters.values())) == 1

    columns = []
    for index, measure in measures:
        conditions = []
        if windows[index] != longest:
            conditions.append(f"e.occurred_at >= %(since_{index})s")
        if not is_filter_shared:
            conditions.append(filters[index])
        condition = f" FILTER (WHERE {' AND '.join(conditions)})" if conditions else ""
        if measure.kind == Kind.DAYS_SINCE_ACTIVITY:
            # NULL when the subject has no such event in the window. The
            # clamp at 0 comes after the window's default (_raw_expression),
            # as greatest() would turn NULL into 0 days, a full score.
            columns.append(
                f"extract(epoch FROM %(now)s - max(e.occurred_at){condition})"
                f" / 86400.0 AS raw_{index}"
            )
        else:
            columns.append(f"count(*){condition} AS raw_{index}")

    where = [
        f"e.{tables.event_subject} = ANY(%(subject_ids)s::bigint[])",
        "e.occurred_at >= %(events_since)s",
        "e.occurred_at <= %(events_until)s",
    ]
    if is_filter_shared:
        where.append(common_filter)
    return f"""
        SELECT e.{tables.event_subject} AS subject_id, {", ".join(columns)}
        FROM {EVENTS} e
        WHERE {" AND ".join(where)}
        GROUP BY e.{tables.event_subject}
    """


def _raw_expression(measure: MeasureSpec, index: int, source: str) -> str:
    if measure.kind == Kind.DAYS_SINCE_ACTIVITY:
        # Events up to the allowed clock skew ahead of now count as now.
        return (
            f"greatest(0.0, coalesce({source}.raw_{index}, %(window_{index})s))::float8"
        )
    if measure.kind in EVENT_MEASURE_KINDS:
        return f"coalesce({source}.raw_{index}, 0)::float8"
    return f"{source}.value::float8"


def _component_sql(measure: MeasureSpec, index: int) -> str:
    if measure.kind in COUNT_MEASURE_KINDS:
        value = f"raw_{index}::bigint"
    else:
        value = f"round(raw_{index}::numeric, 1)"
    # The measure's constant fields are one jsonb value, parsed once per
    # statement, which each row extends with its value and score.
    return (
        f"%(key_{index})s::text, %(meta_{index})s::jsonb || jsonb_build_object("
        f"'value', {value}, 'score', round(norm_{index}::numeric)::int)"
    )


def build_refresh_statement(
    scorecard: ScorecardSpec, *, now: datetime, inactive_kinds: list[str]
) -> RefreshStatement | None:
    """Return the statement that scores a batch with `scorecard`, or None.

    The statement takes the batch as %(subject_ids)s and the commit horizon
    that the lock statement returned as %(events_read_until)s. The score
    stores the earlier of that horizon and `now`: an event recorded after
    `now` may have occurred after the window the statement counts, for
    example when the lock was waited for, so it stays unread. A stored score
    computed for a later time than `now` is left as it is. Measures
    that cannot be computed, such as a kind whose source app registered
    nothing, are logged and left out of the score. Return None when no
    measure is left.
    """
    level = scorecard.level
    tables = LEVEL_TABLES[level]
    params: dict = {
        "now": now,
        # Events a client clock put slightly ahead are counted as activity
        # now: the refresh marks them as read, so it must not leave them out.
        "events_until": now + MAX_CLOCK_SKEW,
        "today_start": datetime.combine(now.astimezone(UTC).date(), time(), UTC),
        "inactive_kinds": inactive_kinds,
        "green_from": GREEN_FROM,
        "yellow_from": YELLOW_FROM,
    }
    ctes: list[str] = []
    joins: list[str] = []
    event_measures: list[tuple[int, MeasureSpec]] = []
    used: list[tuple[int, MeasureSpec, str]] = []

    for index, measure in enumerate(scorecard.measures):
        params[f"since_{index}"] = now - timedelta(days=measure.window_days)
        params[f"window_{index}"] = measure.window_days
        if measure.kind in EVENT_MEASURE_KINDS:
            event_measures.append((index, measure))
            used.append((index, measure, "ev"))
        elif measure.kind in ACCOUNT_ONLY_KINDS:
            if level != "account":
                logger.warning(
                    "scorecard measure skipped: kind %s applies to accounts only",
                    measure.kind,
                )
                continue
            ctes.append(f"share_{index} AS ({_active_share_sql(index)})")
            joins.append(f"LEFT JOIN share_{index} USING (subject_id)")
            used.append((index, measure, f"share_{index}"))
        else:
            sql = _source_sql(measure, index, level)
            if sql is None:
                continue
            ctes.append(f"source_{index} AS ({sql})")
            joins.append(f"LEFT JOIN source_{index} USING (subject_id)")
            used.append((index, measure, f"source_{index}"))

    if not used:
        return None
    if event_measures:
        aggregate = _event_aggregate_sql(
            event_measures, tables=tables, now=now, params=params
        )
        ctes.insert(0, f"ev AS ({aggregate})")
        joins.insert(0, "LEFT JOIN ev USING (subject_id)")

    total_weight = sum((m.weight for _, m, _ in used), Decimal(0))
    params["total_weight"] = total_weight
    for index, measure, _ in used:
        params[f"key_{index}"] = measure.key
        params[f"meta_{index}"] = json.dumps(
            {
                "label": measure.label,
                "kind": measure.kind,
                "weight": float(measure.weight),
                "position": measure.position,
            }
        )
        params[f"weight_{index}"] = measure.weight
        params[f"zero_{index}"] = float(measure.zero_at)
        params[f"full_{index}"] = float(measure.full_at)

    raw_columns = ", ".join(
        f"{_raw_expression(m, i, source)} AS raw_{i}" for i, m, source in used
    )
    raw_names = ", ".join(f"raw_{i}" for i, _, _ in used)
    # least() and greatest() skip NULL arguments, so a missing value is
    # tested first and scores 0, never the clamp's 100.
    norm_columns = ", ".join(
        f"CASE WHEN raw_{i} IS NULL THEN 0.0"
        f" ELSE greatest(0.0, least(100.0, (raw_{i} - %(zero_{i})s::float8)"
        f" * 100.0 / (%(full_{i})s::float8 - %(zero_{i})s::float8))) END"
        f" AS norm_{i}"
        for i, _, _ in used
    )
    weighted_sum = " + ".join(
        f"%(weight_{i})s::numeric * norm_{i}::numeric" for i, _, _ in used
    )
    components = ", ".join(_component_sql(m, i) for i, m, _ in used)

    # A member's band change is recorded as an event in the same statement,
    # one row per change, so that a pass with many changes costs one insert.
    # Accounts have no event of their own (an event needs a member).
    if level == "member":
        params["band_changed_kind"] = BAND_CHANGED_KIND
        recorded = f"""
    recorded AS (
        INSERT INTO {EVENTS}
            (member_id, account_id, kind, subject_id, occurred_at, campaign_id,
             play_id, utm_source, utm_medium, utm_campaign, utm_term, utm_content,
             properties)
        SELECT subject_id, account_id, %(band_changed_kind)s, '', %(now)s, '', '',
               '', '', '', '', '',
               jsonb_build_object('from', previous_band, 'to', band, 'score', score)
        FROM changes
        RETURNING id, member_id
    ),"""
        event_id = "r.id"
        event_join = "JOIN recorded r ON r.member_id = c.subject_id"
    else:
        recorded = ""
        event_id = "NULL"
        event_join = ""

    sql = f"""
    WITH subjects AS (
        SELECT s.id AS subject_id, {tables.subject_account} AS account_id
        FROM {tables.subjects} s
        WHERE s.id = ANY(%(subject_ids)s::bigint[])
    ),
    {", ".join(ctes)},
    raw AS (
        SELECT subject_id, subjects.account_id, {raw_columns}
        FROM subjects {" ".join(joins)}
    ),
    normalised AS (
        SELECT subject_id, account_id, {raw_names}, {norm_columns}
        FROM raw
    ),
    scored AS (
        SELECT *, round(({weighted_sum}) / %(total_weight)s::numeric)::int AS score
        FROM normalised
    ),
    banded AS (
        SELECT *,
               CASE WHEN score >= %(green_from)s THEN 'green'
                    WHEN score >= %(yellow_from)s THEN 'yellow'
                    ELSE 'red' END AS band
        FROM scored
    ),
    upserted AS (
        INSERT INTO {tables.scores} AS stored
            ({tables.score_subject}, score, band, components, computed_at,
             events_read_until, previous_band)
        SELECT subject_id, score, band, jsonb_build_object({components}), %(now)s,
               least(%(events_read_until)s::timestamptz, %(now)s), ''
        FROM banded
        ON CONFLICT ({tables.score_subject}) DO UPDATE
           SET score = EXCLUDED.score, band = EXCLUDED.band,
               components = EXCLUDED.components,
               computed_at = EXCLUDED.computed_at,
               events_read_until = EXCLUDED.events_read_until,
               previous_score = stored.score,
               previous_band = stored.band,
               previous_computed_at = stored.computed_at
           WHERE stored.computed_at <= EXCLUDED.computed_at
        RETURNING {tables.score_subject} AS subject_id, score, band,
                  previous_score, previous_band, previous_computed_at
    ),
    changes AS (
        SELECT u.subject_id, b.account_id, u.previous_band, u.band, u.score
        FROM upserted u JOIN banded b USING (subject_id)
        WHERE u.previous_band <> '' AND u.previous_band <> u.band
    ),{recorded}
    closing AS (
        INSERT INTO {tables.snapshots} AS snapshot
            ({tables.score_subject}, day, score, band)
        SELECT subject_id, (previous_computed_at AT TIME ZONE 'UTC')::date,
               previous_score, previous_band
        FROM upserted
        WHERE previous_computed_at < %(today_start)s
        ON CONFLICT ({tables.score_subject}, day) DO UPDATE
           SET score = EXCLUDED.score, band = EXCLUDED.band
           WHERE (snapshot.score, snapshot.band)
                 IS DISTINCT FROM (EXCLUDED.score, EXCLUDED.band)
    )
    SELECT (SELECT count(*) FROM upserted),
           coalesce((
               SELECT jsonb_agg(
                   jsonb_build_array(
                       c.subject_id, c.account_id, c.previous_band, c.band, c.score,
                       {event_id})
                   ORDER BY c.subject_id)
               FROM changes c {event_join}
           ), '[]'::jsonb)
    """
    return RefreshStatement(
        sql=sql, params=params, measures=tuple(m for _, m, _ in used)
    )


def build_lock_statement(level: str) -> tuple[str, dict]:
    """Return SQL that locks a batch's current score rows in id order, and params.

    Two workers scoring the same subject then run one after the other. In
    PostgreSQL's default isolation (read committed) the scoring statement
    takes its snapshot when it starts, after the locks, so the second worker
    reads everything the first one stored and read. Locking in id order keeps
    overlapping batches from deadlocking on each other.

    The statement also returns the commit horizon, read after the locks are
    held and before the scoring statement takes its snapshot: every event
    recorded before it is visible to that statement.

    It sets the transaction's lock timeout to SCORE_LOCK_TIMEOUT before it
    locks, as a join on `true` runs its outer side first, so a row held too
    long raises OperationalError (LockNotAvailable), which the refresh tasks
    retry. It turns just-in-time compilation off for the rest of the
    transaction.
    The scoring statement's estimated cost is high enough for PostgreSQL to
    compile it, which takes longer than running it: about 0.5 s for a batch
    of 5,000 that runs in 0.15 s without.
    """
    tables = LEVEL_TABLES[level]
    horizon, params = horizon_expression()
    # The horizon is an uncorrelated subquery of the result, so PostgreSQL
    # evaluates it once the aggregate has read every row. That is after the
    # locks, and after `cleared` has dropped the session's cached copy of
    # pg_stat_activity, which an enclosing transaction may have read earlier.
    return (
        f"""
        SELECT count(*) FILTER (WHERE locked.one IS NOT NULL), {horizon}
        FROM (
            SELECT pg_stat_clear_snapshot(),
                   set_config('jit', 'off', true),
                   set_config('lock_timeout', %(lock_timeout)s, true)
        ) cleared
        LEFT JOIN (
            SELECT 1 AS one FROM {tables.scores}
            WHERE {tables.score_subject} = ANY(%(subject_ids)s::bigint[])
            ORDER BY {tables.score_subject}
            FOR UPDATE
        ) locked ON true
    """,
        {**params, "lock_timeout": lock_timeout_setting()},
    )


def lock_timeout_setting() -> str:
    """Return SCORE_LOCK_TIMEOUT as a value for PostgreSQL's lock_timeout."""
    return f"{int(SCORE_LOCK_TIMEOUT.total_seconds() * 1000)}ms"
