"""Refresh health scores in batches, and find the subjects whose score is stale."""

import json
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta

from django.core.cache import cache
from django.db import OperationalError, connection, transaction
from django.utils import timezone

from apps.lifecycle import registry
from apps.lifecycle.horizon import (
    MAX_TRANSACTION_AGE,
    horizon_expression,
    read_commit_horizon,
)
from apps.lifecycle.models import ActivityEvent
from apps.lifecycle.scoring import statements
from apps.lifecycle.scoring.measures import get_scorecard_spec
from apps.lifecycle.scoring.statements import (
    BAND_CHANGED_KIND,
    EVENTS,
    LEVEL_TABLES,
    RefreshStatement,
    build_lock_statement,
    build_refresh_statement,
    lock_timeout_setting,
)

logger = logging.getLogger(__name__)

# A score older than this is recomputed even without new events, because
# time alone changes measures such as days since activity. It is a little
# over a day so that the nightly full pass, not the incremental one, rescores
# everyone that pass scored the night before.
DECAY_INTERVAL = timedelta(hours=25)
# How often the incremental pass looks for decayed scores. Finding them reads
# the whole score table, which has no index on computed_at (see HealthScore),
# and the nightly full pass leaves few or none, so an hourly look suffices.
DECAY_CHECK_INTERVAL = timedelta(hours=1)
BATCH_SIZE = 5000


class StalePassLocked(Exception):
    """The stale pass stopped at a score row another transaction kept locked.

    The pages before it are stored. The pass's place in the events is kept,
    so the next pass lists the rest again.
    """


MAX_ID = 2**63 - 1
# PostgreSQL's error code when a lock_timeout expires.
LOCK_NOT_AVAILABLE = "55P03"


def is_lock_timeout(error: Exception) -> bool:
    """Return whether `error` is PostgreSQL's lock_timeout expiring."""
    return (
        isinstance(error, OperationalError)
        and getattr(error.__cause__, "sqlstate", None) == LOCK_NOT_AVAILABLE
    )


def _check_input(*, level: str, subject_ids: list[int], now: datetime) -> None:
    """Raise ValueError naming the first id or time the refresh cannot use."""
    if not isinstance(now, datetime) or timezone.is_naive(now):
        raise ValueError(
            f"invalid now {now!r}: pass a timezone-aware datetime, such as "
            "django.utils.timezone.now()"
        )
    for subject_id in subject_ids:
        is_whole = isinstance(subject_id, int) and not isinstance(subject_id, bool)
        if not is_whole or not 1 <= subject_id <= MAX_ID:
            raise ValueError(
                f"invalid {level} id {subject_id!r}: ids are whole numbers "
                f"from 1 to {MAX_ID}"
            )


def _build_statement(level: str, now: datetime) -> RefreshStatement | None:
    """Return the statement that scores a batch of `level`, or None if it cannot.

    None means the active scorecard has no measure that can be computed,
    which is logged as an error.
    """
    scorecard = get_scorecard_spec(level)
    statement = build_refresh_statement(
        scorecard, now=now, inactive_kinds=registry.list_inactive_kind_names()
    )
    if statement is None:
        logger.error(
            "health scores not refreshed: scorecard %r has no measure that can "
            "be computed",
            scorecard.name,
        )
    return statement


def _score(
    *,
    level: str,
    statement: RefreshStatement,
    subject_ids: list[int],
    events_read_until: datetime,
    now: datetime,
) -> int:
    """Score subjects whose current score rows this transaction has locked."""
    params = {
        **statement.params,
        "subject_ids": _id_array(subject_ids),
        "events_read_until": events_read_until,
    }
    with connection.cursor() as cursor:
        cursor.execute(statement.sql, params)
        scored, changes = cursor.fetchone()

    # Django's PostgreSQL backend returns jsonb as text, for JSONField to parse.
    changes = json.loads(changes) if isinstance(changes, str) else changes

    _dispatch_band_changes(level=level, changes=changes, now=now)
    return scored


def _refresh(*, level: str, subject_ids: list[int], now: datetime) -> int:
    _check_input(level=level, subject_ids=subject_ids, now=now)
    statement = _build_statement(level, now)
    if statement is None:
        return 0

    lock_sql, lock_params = build_lock_statement(level)
    with connection.cursor() as cursor:
        cursor.execute(lock_sql, {"subject_ids": _id_array(subject_ids), **lock_params})
        _, events_read_until = cursor.fetchone()
    return _score(
        level=level,
        statement=statement,
        subject_ids=subject_ids,
        events_read_until=events_read_until,
        now=now,
    )


def _id_array(ids: list[int]) -> str:
    """Return ids as a PostgreSQL array literal, for %(subject_ids)s::bigint[].

    The statement names the batch several times. psycopg renders a list
    parameter in Python at each place, which costs more than the SQL itself
    for a batch of thousands, while it quotes a string in C.
    """
    return "{" + ",".join(str(i) for i in sorted(set(ids))) + "}"


def _dispatch_band_changes(*, level: str, changes: list, now: datetime) -> None:
    """Call the handlers of the band changes the refresh statement stored.

    The statement has already recorded each member change as a
    `lifecycle.health_band_changed` event. The handlers of that kind get the
    events, loaded in one query when any handler is subscribed. Play triggers
    find those events with the trigger sweep, as they find the events of
    record_activity: the pass sends no message of its own for them.
    """
    if not changes:
        return
    event_ids = [event_id for *_, event_id in changes if event_id is not None]
    kind_handlers = registry.list_handlers(BAND_CHANGED_KIND)
    if event_ids and kind_handlers:
        for event in ActivityEvent.objects.filter(pk__in=event_ids).order_by("pk"):
            for handler in kind_handlers:
                handler(event)

    for subject_id, account_id, previous, band, score, event_id in changes:
        change = registry.BandChange(
            level=level,
            subject_id=subject_id,
            account_id=account_id,
            previous_band=previous,
            band=band,
            score=score,
            changed_at=now,
            event_id=event_id,
        )
        for handler in registry.list_band_change_handlers():
            handler(change)
    logger.info("health bands changed: %d %s(s)", len(changes), level)


@transaction.atomic
def refresh_member_health_scores(
    *, member_ids: list[int], now: datetime | None = None
) -> int:
    """Recompute the scores of the given members; return how many were scored.

    A few statements whatever the batch size: the active member scorecard,
    a row lock on the batch's current scores with the commit horizon, then
    one statement that computes every measure and stores the scores. That
    statement also records each band change as a
    `lifecycle.health_band_changed` event, and stores each score it replaced
    from an earlier day as that day's closing snapshot. Ids of deleted
    members are skipped, and so are members whose stored score was computed
    for a later time than `now`.
    """
    if not member_ids:
        return 0
    return _refresh(level="member", subject_ids=member_ids, now=now or timezone.now())


@transaction.atomic
def refresh_account_health_scores(
    *, account_ids: list[int], now: datetime | None = None
) -> int:
    """Recompute the scores of the given accounts; return how many were scored.

    Works like `refresh_member_health_scores` with the active account
    scorecard. Band changes go to the band change handlers only.
    """
    if not account_ids:
        return 0
    return _refresh(level="account", subject_ids=account_ids, now=now or timezone.now())


def _stale_sql(level: str, *, include_decayed: bool, lock: bool) -> str:
    """Return SQL for a page of stale subjects, in ascending id order.

    Three reasons make a score stale: an active event its refresh did not
    read, its age, or no score yet. A refresh read every event recorded
    before its `events_read_until` (the commit horizon, see
    apps.lifecycle.horizon), so an event recorded at or after it may be
    unread, whatever order the transactions committed in. Scores stored
    before that column existed fall back to computed_at less the longest
    transaction the horizon waits for. A subject without a score is found
    by its new events, or by an id above every scored one, which an index
    finds at once. One without either, such as a member created before
    another one that was scored first and without activity since, waits for
    the next full pass. The new events are grouped by subject first, so each
    subject's score is looked up once, however many events it has.

    With `lock`, the score rows of the page are locked in id order. A row
    that a concurrent refresh has locked is waited for, then tested again as it
    is once committed: PostgreSQL leaves it out if it is no longer stale,
    and the limit then takes the next stale row instead. So a page shorter
    than the limit still means that no stale subject is left.
    """
    tables = LEVEL_TABLES[level]
    subject = tables.score_subject
    stale = (
        "e.last_recorded >= "
        "coalesce(h.events_read_until, h.computed_at - %(max_age)s::interval)"
    )
    join = "JOIN"
    if include_decayed:
        join = "LEFT JOIN"
        stale = f"(h.computed_at < %(decayed_before)s OR coalesce({stale}, false))"
    return f"""
        WITH new_events AS (
            SELECT {tables.event_subject} AS id, max(recorded_at) AS last_recorded
            FROM {EVENTS}
            WHERE recorded_at >= %(events_since)s
              AND NOT (kind = ANY(%(inactive_kinds)s::text[]))
            GROUP BY {tables.event_subject}
        ),
        scored AS (
            SELECT h.{subject} AS id
            FROM {tables.scores} h
            {join} new_events e ON e.id = h.{subject}
            WHERE h.{subject} > %(after_id)s AND {stale}
            ORDER BY h.{subject}
            LIMIT %(limit)s
            {"FOR UPDATE OF h" if lock else ""}
        )
        SELECT id FROM scored
        UNION
        (SELECT e.id FROM new_events e
         WHERE e.id > %(after_id)s
           AND NOT EXISTS (
               SELECT 1 FROM {tables.scores} x WHERE x.{subject} = e.id)
         ORDER BY e.id
         LIMIT %(limit)s)
        UNION
        (SELECT s.id FROM {tables.subjects} s
         WHERE s.id > greatest(
             %(after_id)s,
             (SELECT coalesce(max({subject}), 0) FROM {tables.scores}))
         ORDER BY s.id
         LIMIT %(limit)s)
        ORDER BY id
        LIMIT %(limit)s
    """


def _lock_stale_statement(level: str, *, include_decayed: bool) -> tuple[str, dict]:
    """Return SQL that locks a page of stale subjects and reads the commit horizon.

    It returns the page's ids and the horizon, read once the rows are
    locked, as `build_lock_statement` does. A statement that locks rows
    never gets a parallel plan, so it needs no setting for that. It sets
    the transaction's lock timeout to SCORE_LOCK_TIMEOUT before it locks: a
    join on `true` can only run as a nested loop whose outer side, the
    settings, runs first.
    """
    horizon, params = horizon_expression()
    page = _stale_sql(level, include_decayed=include_decayed, lock=True)
    sql = f"""
        WITH page AS ({page})
        SELECT coalesce(array_agg(page.id ORDER BY page.id)
                        FILTER (WHERE page.id IS NOT NULL), '{{}}'),
               {horizon}
        FROM (
            SELECT pg_stat_clear_snapshot(),
                   set_config('jit', 'off', true),
                   set_config('lock_timeout', %(lock_timeout)s, true)
        ) cleared
        LEFT JOIN page ON true
    """
    return sql, {**params, "lock_timeout": lock_timeout_setting()}


def _stale_params(
    *,
    now: datetime,
    events_since: datetime | None,
    after_id: int,
    limit: int,
) -> dict:
    decayed_before = now - DECAY_INTERVAL
    # An event recorded before `decayed_before` that its subject's score did
    # not read means the score is older than `decayed_before` too, so the
    # decay part selects that subject anyway. Events older than that never
    # need reading.
    if events_since is None or events_since < decayed_before:
        events_since = decayed_before
    return {
        "events_since": events_since,
        "decayed_before": decayed_before,
        "max_age": MAX_TRANSACTION_AGE,
        "inactive_kinds": registry.list_inactive_kind_names(),
        "after_id": after_id,
        "limit": limit,
    }


def _list_stale_ids(
    level: str,
    *,
    now: datetime | None,
    after_id: int,
    limit: int,
    events_since: datetime | None,
    include_decayed: bool,
) -> list[int]:
    params = _stale_params(
        now=now or timezone.now(),
        events_since=events_since,
        after_id=after_id,
        limit=limit,
    )
    with transaction.atomic(), connection.cursor() as cursor:
        # The listing reads few rows, and PostgreSQL's estimate for a BRIN
        # range scan is coarse. A parallel plan then spends more time on
        # starting workers than the whole query takes without them.
        cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        cursor.execute(
            _stale_sql(level, include_decayed=include_decayed, lock=False), params
        )
        return [row[0] for row in cursor.fetchall()]


def list_stale_member_ids(
    *,
    now: datetime | None = None,
    after_id: int = 0,
    limit: int = BATCH_SIZE,
    events_since: datetime | None = None,
    include_decayed: bool = True,
) -> list[int]:
    """Return members with no score, active events it did not read, or a decayed one.

    Only events recorded at or after `events_since` are read, by default those
    of the last DECAY_INTERVAL. Ids come in ascending order from `after_id`, so
    a caller can page through. Without `include_decayed`, scores that are only
    old are left out, which spares reading the whole score table.
    """
    return _list_stale_ids(
        "member",
        now=now,
        after_id=after_id,
        limit=limit,
        events_since=events_since,
        include_decayed=include_decayed,
    )


def list_stale_account_ids(
    *,
    now: datetime | None = None,
    after_id: int = 0,
    limit: int = BATCH_SIZE,
    events_since: datetime | None = None,
    include_decayed: bool = True,
) -> list[int]:
    """Return accounts with no score, new active events of members, or a decayed one.

    Membership changes (a member joining, leaving or being deactivated) record
    no event, so they reach the score with the next decay or full pass.
    """
    return _list_stale_ids(
        "account",
        now=now,
        after_id=after_id,
        limit=limit,
        events_since=events_since,
        include_decayed=include_decayed,
    )


def _checked_key(level: str) -> str:
    return f"lifecycle:scoring:stale-checked:{level}"


def _decay_checked_key(level: str) -> str:
    return f"lifecycle:scoring:decay-checked:{level}"


def _stale_window(level: str, now: datetime) -> tuple[datetime | None, bool]:
    """Return the time the pass reads events from, and whether to look for decay.

    The commit horizon read before the previous complete listing is kept in
    the cache: every event recorded before it was visible to that listing, so
    the next one reads only the events recorded since. Without it, after a
    cache flush for example, the last DECAY_INTERVAL is read. Decayed scores
    are looked for once per DECAY_CHECK_INTERVAL, and whenever the cache has
    lost the time of the last look.
    """
    events_since = cache.get(_checked_key(level))
    decay_checked_at = cache.get(_decay_checked_key(level))
    include_decayed = (
        events_since is None
        or decay_checked_at is None
        or decay_checked_at <= now - DECAY_CHECK_INTERVAL
    )
    return events_since, include_decayed


def _refresh_stale(level: str, *, now: datetime | None, batch_size: int | None) -> int:
    now = now or timezone.now()
    batch_size = batch_size or BATCH_SIZE
    statement = _build_statement(level, now)
    if statement is None:
        # Nothing can be scored, so the listing keeps its place in the events.
        return 0
    events_since, include_decayed = _stale_window(level, now)
    horizon = read_commit_horizon()
    lock_sql, lock_params = _lock_stale_statement(
        level, include_decayed=include_decayed
    )

    refreshed = 0
    after_id = 0
    while True:
        params = _stale_params(
            now=now, events_since=events_since, after_id=after_id, limit=batch_size
        )
        with transaction.atomic():
            with connection.cursor() as cursor:
                try:
                    cursor.execute(lock_sql, {**params, **lock_params})
                except OperationalError as error:
                    if is_lock_timeout(error):
                        raise StalePassLocked(
                            f"a {level} score row stayed locked for more than "
                            f"{statements.SCORE_LOCK_TIMEOUT.total_seconds():g} s"
                        ) from error
                    raise
                page, events_read_until = cursor.fetchone()
            if page:
                refreshed += _score(
                    level=level,
                    statement=statement,
                    subject_ids=page,
                    events_read_until=events_read_until,
                    now=now,
                )
        if len(page) < batch_size:
            break
        after_id = page[-1]

    cache.set(_checked_key(level), horizon, timeout=None)
    if include_decayed:
        cache.set(_decay_checked_key(level), now, timeout=None)
    return refreshed


def refresh_stale_member_scores(
    *, now: datetime | None = None, batch_size: int | None = None
) -> int:
    """Refresh members with new events, no score or a decayed one; return how many.

    Each page of up to `batch_size` members is one transaction of two
    statements: one lists the page and locks its score rows, the other
    scores its members. Events are read from where the previous complete
    pass stopped (see `_stale_window`), and decayed scores are looked for
    hourly. Members that a concurrent refresh scored after their new events
    are skipped.
    """
    return _refresh_stale("member", now=now, batch_size=batch_size)


def refresh_stale_account_scores(
    *, now: datetime | None = None, batch_size: int | None = None
) -> int:
    """Refresh accounts whose members have new events, or with no or a decayed score.

    Works like `refresh_stale_member_scores`. Membership changes record no
    event, so they reach the score with the next decay or full pass.
    """
    return _refresh_stale("account", now=now, batch_size=batch_size)


def iter_id_batches(
    level: str, *, batch_size: int | None = None
) -> Iterator[list[int]]:
    """Yield every member or account id in batches, in ascending order."""
    table = LEVEL_TABLES[level].subjects
    batch_size = batch_size or BATCH_SIZE
    sql = f"SELECT id FROM {table} WHERE id > %s ORDER BY id LIMIT %s"
    after_id = 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(sql, [after_id, batch_size])
            ids = [row[0] for row in cursor.fetchall()]
        if ids:
            yield ids
        if len(ids) < batch_size:
            return
        after_id = ids[-1]
