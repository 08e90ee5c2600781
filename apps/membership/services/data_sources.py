"""Writes of the data source runs that the data freshness KPI reads.

CRM sync, usage ingestion and score computation call these services when
they finish. Membership is the lowest app, so all three may import it. Usage
ingestion names its origin on every call (EVENT_BATCH_API_ORIGIN or
`segment_source_origin()`), so that each origin has its own row and a failing
Segment source shows even while another origin succeeds.
"""

import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from apps.membership.models import DataSourceRun
from rm6.errors import DomainError

logger = logging.getLogger(__name__)

Source = DataSourceRun.Source
EVENT_BATCH_API_ORIGIN = DataSourceRun.EVENT_BATCH_API_ORIGIN
SEGMENT_SOURCE_ORIGIN_PREFIX = DataSourceRun.SEGMENT_SOURCE_ORIGIN_PREFIX
# The origins that the datasourcerun_origin_valid constraint accepts.
USAGE_ORIGIN_PATTERN = re.compile(
    rf"{EVENT_BATCH_API_ORIGIN}|{SEGMENT_SOURCE_ORIGIN_PREFIX}[1-9][0-9]*",
    re.ASCII,
)

# A row's success time, and its failure time, move at most once per
# interval while the outcome stays the same. A busy source then writes its
# row about once a minute, not once per request or message.
RECORD_INTERVAL = timedelta(minutes=1)
MAX_ERROR_LENGTH = DataSourceRun._meta.get_field("last_error").max_length

# One statement per record, with no read-then-write race:
# - The UPDATE changes the row only when the stored time is older than the
#   interval, or when the run's outcome differs from the latest one stored,
#   so that a success right after a failure (or the reverse) always shows.
#   A row that fails that test is neither changed nor locked, so
#   concurrent requests do not queue on this one row. INSERT ... ON CONFLICT
#   DO UPDATE alone would lock the row on every call, even when its WHERE
#   skips the update.
# - The INSERT runs only when the row was missing from the statement's
#   snapshot, that is on the first run of a source and origin. Two first runs
#   at once meet in ON CONFLICT on the unique (source, origin), and the later
#   one updates under the same interval test.
_RECORD_SQL = """
WITH updated AS (
    UPDATE {table}
    SET {assignments}
    WHERE source = %(source)s AND origin = %(origin)s AND ({due})
    RETURNING 1
)
INSERT INTO {table} (source, origin, last_success_at, last_failure_at, last_error)
SELECT %(source)s, %(origin)s, %(success_at)s, %(failure_at)s, %(error)s
WHERE NOT EXISTS (
    SELECT 1 FROM {table} WHERE source = %(source)s AND origin = %(origin)s
)
ON CONFLICT (source, origin) DO UPDATE
SET {excluded_assignments}
WHERE {conflict_due}
"""
_TABLE = DataSourceRun._meta.db_table


def _due_condition(*, row: str, column: str, other: str, newer: str) -> str:
    """Return the SQL test of whether `column` of `row` may take a new time.

    `row` is the prefix of the row's columns ("" or the table and a dot). The
    time may move when it is missing, older than the interval, or when the
    other outcome is at least as recent (`newer` is ">=" or ">").
    """
    column, other = f"{row}{column}", f"{row}{other}"
    return (
        f"{column} IS NULL OR {column} < %(at)s - %(interval)s"
        f" OR ({other} {newer} {column} AND {column} < %(at)s)"
    )


def _record_sql(*, column: str, other: str, newer: str, sets: dict[str, str]) -> str:
    """Return the statement that records one outcome.

    `sets` maps each column the statement writes to its query parameter.
    """
    return _RECORD_SQL.format(
        table=_TABLE,
        assignments=", ".join(f"{name} = %({param})s" for name, param in sets.items()),
        excluded_assignments=", ".join(f"{name} = EXCLUDED.{name}" for name in sets),
        due=_due_condition(row="", column=column, other=other, newer=newer),
        conflict_due=_due_condition(
            row=f"{_TABLE}.", column=column, other=other, newer=newer
        ),
    )


# A success is written when the last failure is as recent as the last success
# or more (>=), and a failure when the last success is newer (>).
_SUCCESS_SQL = _record_sql(
    column="last_success_at",
    other="last_failure_at",
    newer=">=",
    sets={"last_success_at": "at"},
)
_FAILURE_SQL = _record_sql(
    column="last_failure_at",
    other="last_success_at",
    newer=">",
    sets={"last_failure_at": "at", "last_error": "error"},
)


def segment_source_origin(segment_source_id: int) -> str:
    """Return the usage ingestion origin of the Segment source with this ID."""
    return f"{SEGMENT_SOURCE_ORIGIN_PREFIX}{segment_source_id}"


def _check_source(source: str, origin: str) -> None:
    if source not in Source.values:
        raise ValueError(
            f"Invalid data source {source!r}; use one of {', '.join(Source.values)}."
        )
    if source != Source.USAGE_INGESTION:
        if origin:
            raise ValueError(
                f"Data source {str(source)!r} has one row and takes no origin, but "
                f"got origin {origin!r}; leave origin empty."
            )
        return
    if not USAGE_ORIGIN_PATTERN.fullmatch(origin):
        raise ValueError(
            f"Invalid usage ingestion origin {origin!r}; use "
            f"{EVENT_BATCH_API_ORIGIN!r} or segment_source_origin() of the "
            "Segment source's ID."
        )


def _write_success(source: str, origin: str, at: datetime) -> None:
    params = {
        "source": source,
        "origin": origin,
        "at": at,
        "interval": RECORD_INTERVAL,
        "success_at": at,
        "failure_at": None,
        "error": "",
    }
    with connection.cursor() as cursor:
        cursor.execute(_SUCCESS_SQL, params)


def record_source_success(
    *, source: str, origin: str = "", at: datetime | None = None
) -> None:
    """Record a successful run of `source`, once the current transaction commits.

    Usage ingestion needs its `origin`, and the other sources take none.
    Nothing is recorded when the transaction rolls back, and outside a
    transaction the write happens at once. `at` defaults to now. A failed
    write is logged and not raised, because a run whose work committed must
    not fail over its bookkeeping. Raise ValueError for an unknown source or
    an invalid origin.
    """
    _check_source(source, origin)
    at = at or timezone.now()

    transaction.on_commit(lambda: _write_success(source, origin, at), robust=True)


def record_source_failure(
    *, source: str, error: str, origin: str = "", at: datetime | None = None
) -> None:
    """Record a failed run of `source` and `origin`, keeping its last success.

    The write happens at once in the current transaction, so call it after
    the failed work rolled back. `error` describes what failed without
    personal data: an error code, a field name or an exception class, never
    the rejected values. A failed write is logged and not raised, so the
    caller's own error stays the one that is raised. The source and origin
    are checked as in `record_source_success`.
    """
    _check_source(source, origin)
    at = at or timezone.now()
    params = {
        "source": source,
        "origin": origin,
        "at": at,
        "interval": RECORD_INTERVAL,
        "success_at": None,
        "failure_at": at,
        "error": error[:MAX_ERROR_LENGTH],
    }

    try:
        # A savepoint inside a transaction, so that a failed write leaves the
        # caller's transaction usable.
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(_FAILURE_SQL, params)
    except DatabaseError:
        logger.exception(
            "data source failure not recorded: source=%s origin=%s", source, origin
        )
        return
    logger.info(
        "data source run failed: source=%s origin=%s error=%s", source, origin, error
    )


def get_standing_error(*, source: str, origin: str = "") -> str | None:
    """Return the error of the last run when it failed, or None.

    A run failed when its failure is later than its last success.
    """
    run = (
        DataSourceRun.objects.filter(source=source, origin=origin)
        .values("last_success_at", "last_failure_at", "last_error")
        .first()
    )
    if run is None or run["last_failure_at"] is None:
        return None
    if run["last_success_at"] and run["last_success_at"] >= run["last_failure_at"]:
        return None
    return run["last_error"]


def describe_error(error: Exception) -> str:
    """Return the exception's class, with a DomainError's code and field.

    The message is left out because it may quote personal data, such as an
    email address that another record already uses.
    """
    description = type(error).__name__
    if isinstance(error, DomainError):
        description += f" (code {error.code}"
        if error.field:
            description += f", field {error.field}"
        description += ")"
    return description


@contextmanager
def record_source_run(
    *,
    source: str,
    action: str,
    origin: str = "",
    describe: Callable[[Exception], str] = describe_error,
) -> Iterator[None]:
    """Record a success of `source` when the block ends, a failure when it raises.

    `action` names the work in the stored error, as in "event batch failed:
    IngestError (code invalid_rows)". `describe` turns the exception into the
    rest of the error; a caller whose errors carry no personal data may describe
    more than the class. The exception is raised again. `origin` is checked
    before the block runs, as in `record_source_success`.
    """
    _check_source(source, origin)

    try:
        yield
    except Exception as error:
        record_source_failure(
            source=source,
            origin=origin,
            error=f"{action} failed: {describe(error)}",
        )
        raise
    record_source_success(source=source, origin=origin)
