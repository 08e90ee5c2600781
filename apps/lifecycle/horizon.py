"""The commit horizon: a time before which no event can still become visible.

Workers that look for new events by `recorded_at` (the incremental scoring
pass, the play trigger sweep) must not miss an event whose transaction
commits after they read. `recorded_at` is set by PostgreSQL's clock when the
row is inserted, so it is never earlier than the start of the inserting
transaction. A transaction in progress right now started at or after the
oldest `xact_start` in `pg_stat_activity`, and one that starts later records
later. So once every in-progress transaction is accounted for, each event
recorded before the horizon has committed (or never will), and a reader whose
snapshot is taken after the horizon is read sees all of them.

A reader stores the horizon with what it read (a score's
`events_read_until`, the sweep's position in the cache) and the next reader
starts from there. Events recorded at or after the horizon may be read
twice; scoring and enrolment are idempotent, so that costs time, not
correctness.

Limits, both bounded by MAX_TRANSACTION_AGE:

- A transaction older than MAX_TRANSACTION_AGE is not waited for. An event
  it records and commits later than that is found by the nightly full pass
  or the next decay, not by the incremental pass.
- Sessions whose details `pg_stat_activity` hides (another role, without
  `pg_read_all_stats`) or `track_activities = off` make the horizon fall back
  to now less MAX_TRANSACTION_AGE, which is safe for every transaction
  shorter than that.
"""

from datetime import datetime, timedelta

from django.db import connection

# Transactions running longer than this are not waited for: an idle session
# left in a transaction would otherwise hold the horizon back, and every pass
# would read again everything recorded since it began.
MAX_TRANSACTION_AGE = timedelta(minutes=10)

# Own session excluded: what it wrote is visible to itself. Background
# processes (autovacuum, parallel workers) record no events.
HORIZON_SQL = """
    SELECT greatest(
        clock_timestamp() - %(max_age)s::interval,
        least(clock_timestamp(), min(
            CASE WHEN a.query = '<insufficient privilege>'
                   OR a.state IS NULL OR a.state = 'disabled'
                 THEN '-infinity'::timestamptz
                 ELSE a.xact_start END)))
    FROM pg_stat_activity a
    WHERE a.datid = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND a.pid <> pg_backend_pid()
      AND (a.backend_type = 'client backend'
           OR a.query = '<insufficient privilege>')
"""


def horizon_expression() -> tuple[str, dict]:
    """Return the horizon as a scalar subquery and its parameters.

    For use inside another statement that runs before the snapshot of the
    read it guards, such as the scorer's row lock.
    """
    return f"({HORIZON_SQL})", {"max_age": MAX_TRANSACTION_AGE}


def read_commit_horizon() -> datetime:
    """Return the current commit horizon, on the database's clock.

    Call it before the statement that reads the events, never inside it:
    that statement's snapshot must be taken after the horizon.
    """
    with connection.cursor() as cursor:
        # A transaction keeps the first pg_stat_activity it reads; an
        # enclosing transaction may have read it long ago.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(HORIZON_SQL, {"max_age": MAX_TRANSACTION_AGE})
        return cursor.fetchone()[0]


def read_database_now() -> datetime:
    """Return the current time on the database's clock.

    For a time that is compared with events' `recorded_at`, which that clock
    sets: an app server whose clock runs ahead or behind would shift it.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT clock_timestamp()")
        return cursor.fetchone()[0]
