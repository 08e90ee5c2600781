"""Benchmark health scoring on a generated data set of production size.

Run with DATABASE_URL and REDIS_URL set:

    .venv/bin/python bench/scoring.py [--rebuild] [--no-report]

The script creates its own database (rm6_bench by default) on the server of
DATABASE_URL and migrates it. It fills it with SQL (generate_series, never
the ORM per row): 5,000 accounts, 100,000 members with their users and
10,000,000 activity events over 90 days. Generation takes minutes, so a
database that already holds the data set is reused, and --rebuild
regenerates it.
Celery messages are published for real to REDIS_URL, on a queue of their own
that the script empties again, so no worker ever runs them.

The figures are printed and, unless --no-report, written to the "Scoring"
section of docs/benchmarks.md.
"""

import argparse
import os
import statistics
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchsupport import create_database, database_urls, machine_description

BASE_DIR = Path(__file__).resolve().parent.parent
REPORT_PATH = BASE_DIR / "docs" / "benchmarks.md"
BENCH_QUEUE = "bench-scoring"
DATASET_VERSION = "1"

# Event kinds with their share of all events. Every kind but the band
# change counts as activity.
EVENT_KINDS = [
    ("membership.signed_in", 0.20),
    ("community.topic_viewed", 0.25),
    ("community.reply_posted", 0.08),
    ("community.question_posted", 0.04),
    ("product.report_exported", 0.15),
    ("product.dashboard_viewed", 0.26),
    ("lifecycle.health_band_changed", 0.02),
]


@dataclass
class Sizes:
    accounts: int = 5_000
    members: int = 100_000
    events: int = 10_000_000
    days: int = 90
    # Accounts left without members, and the share of members never active.
    empty_accounts: int = 50
    inactive_share: float = 0.15
    deactivated_share: float = 0.02


@dataclass
class Results:
    """Measurements and target checks."""

    rows: dict[str, str] = field(default_factory=dict)
    checks: dict[str, tuple[str, bool]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, name: str, value: str, detail: str = "") -> None:
        self.rows[name] = f"{value} ({detail})" if detail else value
        print(f"  {name:<44} {value:>12}  {detail}", flush=True)

    def check(self, target: str, measured: str, is_met: bool) -> None:
        self.checks[target] = (measured, is_met)


def setup_django(bench_url: str) -> None:
    os.environ["DATABASE_URL"] = bench_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rm6.settings.local")
    os.environ["DJANGO_DEBUG"] = "0"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(BASE_DIR))
    import django

    django.setup()
    from django.core.management import call_command

    restore_shipped_indexes()
    call_command("migrate", verbosity=0)

    # Every message the measured code sends, such as those record_activity
    # schedules on commit, goes to the bench queue, which is deleted at the end.
    from rm6.celery import app as celery_app

    celery_app.conf.task_routes = {"*": {"queue": BENCH_QUEUE}}


@contextmanager
def stopwatch():
    """Yield a list that holds the elapsed seconds once the block ends."""
    elapsed = [0.0]
    start = time.perf_counter()
    try:
        yield elapsed
    finally:
        elapsed[0] = time.perf_counter() - start


# Data set ----------------------------------------------------------------


def _dataset_is_complete(cursor, sizes: Sizes) -> bool:
    cursor.execute(
        "CREATE TABLE IF NOT EXISTS bench_dataset (key text PRIMARY KEY, value text)"
    )
    cursor.execute("SELECT value FROM bench_dataset WHERE key = 'complete'")
    row = cursor.fetchone()
    expected = f"{DATASET_VERSION}:{sizes.accounts}:{sizes.members}:{sizes.events}"
    return row is not None and row[0] == expected


def generate_dataset(sizes: Sizes) -> None:
    """Replace the bench database's accounts, members and events."""
    from django.db import connection

    with connection.cursor() as cursor:
        print("emptying the bench tables", flush=True)
        cursor.execute("DELETE FROM bench_dataset")
        cursor.execute(
            "TRUNCATE lifecycle_activityevent, lifecycle_healthscore, "
            "lifecycle_healthscoresnapshot, lifecycle_accounthealthscore, "
            "lifecycle_accounthealthscoresnapshot, membership_member, "
            "membership_account, auth_user RESTART IDENTITY CASCADE"
        )

        with stopwatch() as elapsed:
            _insert_accounts(cursor, sizes)
            _insert_members(cursor, sizes)
        print(f"accounts and members: {elapsed[0]:.1f} s", flush=True)

        indexes = _drop_event_indexes(cursor)
        with stopwatch() as elapsed:
            _insert_events(cursor, sizes)
        print(f"events: {elapsed[0]:.1f} s", flush=True)
        with stopwatch() as elapsed:
            for definition in indexes:
                cursor.execute(definition)
        print(f"event indexes rebuilt: {elapsed[0]:.1f} s", flush=True)

    # VACUUM cannot run inside a transaction block, and sets the visibility
    # map that index-only scans need.
    connection.set_autocommit(True)
    with connection.cursor() as cursor, stopwatch() as elapsed:
        cursor.execute("VACUUM ANALYZE")
    print(f"vacuum analyze: {elapsed[0]:.1f} s", flush=True)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO bench_dataset VALUES ('complete', %s)",
            [f"{DATASET_VERSION}:{sizes.accounts}:{sizes.members}:{sizes.events}"],
        )


def _insert_accounts(cursor, sizes: Sizes) -> None:
    cursor.execute(
        """
        INSERT INTO membership_account
            (name, external_id, email_domains, segment, cs_tier, arr, time_zone,
             is_sso_required, created_at, updated_at)
        SELECT 'Account ' || i, '', ARRAY['account' || i || '.test'],
               (ARRAY['smb', 'mid_market', 'enterprise'])[1 + i %% 3],
               (ARRAY['tech_touch', 'pooled', 'high_touch'])[1 + i %% 3],
               1000 * (1 + i %% 200), 'UTC', false, now(), now()
        FROM generate_series(1, %(accounts)s) AS i
        """,
        {"accounts": sizes.accounts},
    )


def _insert_members(cursor, sizes: Sizes) -> None:
    # The first accounts get one member each; the rest of the members go to
    # accounts with a power-law skew, so low account ids are the big ones.
    # The last `empty_accounts` accounts get no members at all.
    cursor.execute(
        """
        INSERT INTO auth_user
            (password, is_superuser, username, first_name, last_name, email,
             is_staff, is_active, date_joined)
        SELECT '!', false, 'bench' || i, '', '', 'bench' || i || '@bench.test',
               false, true, now()
        FROM generate_series(1, %(members)s) AS i
        """,
        {"members": sizes.members},
    )
    cursor.execute(
        """
        INSERT INTO membership_member
            (user_id, account_id, display_name, role, lifecycle_stage, time_zone,
             external_id, created_at, bio, deactivated_at, deactivation_reason,
             email_notifications, headline, in_app_notifications, locale,
             show_account, show_activity, show_bio, show_headline)
        SELECT u.id,
               (SELECT min(id) FROM membership_account) - 1 + CASE
                   WHEN u.rn <= %(filled)s THEN u.rn
                   ELSE 1 + floor(%(filled)s * power(random(), 2.5))::int
               END,
               '', CASE WHEN u.rn %% 50 = 0 THEN 'admin' ELSE 'member' END,
               'adopting', 'UTC', '', now(), '',
               CASE WHEN random() < %(deactivated)s THEN now() END, '',
               'daily', '', true, 'en', false, true, true, true
        FROM (SELECT id, row_number() OVER (ORDER BY id) AS rn FROM auth_user) u
        """,
        {
            "filled": sizes.accounts - sizes.empty_accounts,
            "deactivated": sizes.deactivated_share,
        },
    )


def _drop_event_indexes(cursor) -> list[str]:
    """Drop the event table's secondary indexes; return their definitions.

    Building an index once after the load is much faster than maintaining it
    row by row during it.
    """
    cursor.execute(
        """
        SELECT i.indexname, i.indexdef
        FROM pg_indexes i
        WHERE i.tablename = 'lifecycle_activityevent'
          AND NOT EXISTS (
              SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)
        """
    )
    indexes = cursor.fetchall()
    for name, _definition in indexes:
        cursor.execute(f'DROP INDEX "{name}"')
    return [definition for _name, definition in indexes]


def _kind_case() -> str:
    """Return a CASE expression that picks a kind from `r`, a uniform 0-1 value."""
    branches = []
    upper = 0.0
    for name, share in EVENT_KINDS[:-1]:
        upper += share
        branches.append(f"WHEN r < {upper:.4f} THEN '{name}'")
    return f"CASE {' '.join(branches)} ELSE '{EVENT_KINDS[-1][0]}' END"


def _insert_events(cursor, sizes: Sizes) -> None:
    # Events come in time order, as a live table fills, so that the table's
    # physical order follows occurred_at and recorded_at. Active members are
    # picked with a power-law skew: a few members have hundreds of events in
    # the window and many have a handful. Members past the active share get
    # no events at all.
    cursor.execute("SELECT min(id) FROM membership_member")
    first_member = cursor.fetchone()[0]
    active = int(sizes.members * (1 - sizes.inactive_share))
    chunk = 1_000_000
    for start in range(0, sizes.events, chunk):
        stop = min(start + chunk, sizes.events)
        with stopwatch() as elapsed:
            cursor.execute(
                f"""
                INSERT INTO lifecycle_activityevent
                    (member_id, account_id, kind, subject_id, occurred_at,
                     recorded_at, campaign_id, play_id, utm_source, utm_medium,
                     utm_campaign, utm_term, utm_content, properties)
                SELECT m.id, m.account_id, {_kind_case()}, '', g.at,
                       g.at + interval '2 seconds', '', '', '', '', '', '', '',
                       '{{}}'::jsonb
                FROM (
                    SELECT i,
                           random() AS r,
                           %(first_member)s
                               + floor(%(active)s * power(random(), 2))::bigint
                               AS member_id,
                           now() - %(span)s
                               + %(span)s * (i::float8 / %(total)s)
                               + random() * interval '1 minute' AS at
                    FROM generate_series(%(start)s, %(stop)s - 1) AS i
                ) g
                JOIN membership_member m ON m.id = g.member_id
                ORDER BY g.i
                """,
                {
                    "first_member": first_member,
                    "active": active,
                    "span": timedelta(days=sizes.days),
                    "total": sizes.events,
                    "start": start,
                    "stop": stop,
                },
            )
        print(f"  events {stop:>11,}: {elapsed[0]:.1f} s", flush=True)


# Event indexes -------------------------------------------------------------


def restore_shipped_indexes() -> None:
    """Undo the index switch of earlier versions of this script.

    Those versions measured covering indexes named bench_event_* in place of
    some of the migrations' indexes, and left the bench database that way.
    The migrations drop the replaced indexes by name, so they are rebuilt
    from the definitions kept in bench_dataset before migrating, and the
    bench_event_* indexes are dropped.
    """
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('bench_dataset') IS NOT NULL")
        if not cursor.fetchone()[0]:
            return
        cursor.execute(
            "SELECT key, value FROM bench_dataset WHERE key LIKE 'shipped_index:%%'"
        )
        for key, definition in cursor.fetchall():
            print(f"restoring index {key.removeprefix('shipped_index:')}", flush=True)
            cursor.execute(
                definition.replace("CREATE INDEX ", "CREATE INDEX IF NOT EXISTS ", 1)
            )
        for name in [
            "bench_event_member_cover",
            "bench_event_account_cover",
            "bench_event_recorded_brin",
        ]:
            cursor.execute(f'DROP INDEX IF EXISTS "{name}"')
        cursor.execute("DELETE FROM bench_dataset WHERE key LIKE 'shipped_index:%%'")


def list_event_indexes() -> list[str]:
    """Return the event table's index definitions, as the migrations made them."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexdef FROM pg_indexes "
            "WHERE tablename = 'lifecycle_activityevent' ORDER BY indexname"
        )
        return [row[0] for row in cursor.fetchall()]


# Measurements --------------------------------------------------------------


class SqlTimer:
    """A Django execute wrapper that adds up the time spent in the database.

    Commits count too: a commit waits for the transaction's WAL to be flushed.
    """

    def __init__(self) -> None:
        self.seconds = 0.0
        self.statements = 0

    def time_commit(self, commit):
        def timed_commit():
            start = time.perf_counter()
            try:
                return commit()
            finally:
                self.seconds += time.perf_counter() - start

        return timed_commit

    def __call__(self, execute, sql, params, many, context):
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - start
            self.statements += 1


@contextmanager
def sql_timer():
    from django.db import connection

    timer = SqlTimer()
    connection._commit = timer.time_commit(connection._commit)
    try:
        with connection.execute_wrapper(timer):
            yield timer
    finally:
        del connection._commit


def full_member_pass(now) -> tuple[float, float, int, int]:
    """Rescore every member in batches, as workers do; return the timings.

    Returns wall seconds, SQL seconds, members scored and batches.
    """
    from apps.lifecycle.scoring import iter_id_batches, refresh_member_health_scores

    scored = 0
    batches = 0
    with sql_timer() as timer, stopwatch() as wall:
        for ids in iter_id_batches("member"):
            scored += refresh_member_health_scores(member_ids=ids, now=now)
            batches += 1
    return wall[0], timer.seconds, scored, batches


def parallel_full_member_pass(now, workers: int) -> tuple[float, int]:
    """Rescore every member with `workers` workers sharing the batches.

    Each worker is a thread with a database connection of its own, as each
    Celery worker process has, and takes the next batch when it is done with
    one, as workers take the next message. Returns wall seconds and members
    scored, the listing of the batches included.
    """
    from concurrent.futures import ThreadPoolExecutor
    from queue import Empty, SimpleQueue

    from django.db import connection

    from apps.lifecycle.scoring import iter_id_batches, refresh_member_health_scores

    def work(batches: SimpleQueue) -> int:
        scored = 0
        try:
            while True:
                try:
                    ids = batches.get_nowait()
                except Empty:
                    return scored
                scored += refresh_member_health_scores(member_ids=ids, now=now)
        finally:
            connection.close()

    batches: SimpleQueue = SimpleQueue()
    with ThreadPoolExecutor(max_workers=workers) as pool, stopwatch() as wall:
        for ids in iter_id_batches("member"):
            batches.put(ids)
        scored = sum(pool.map(work, [batches] * workers))
    return wall[0], scored


def explain_member_batch() -> dict[str, float]:
    """Return where one batch of the full pass spends its time, in milliseconds.

    Runs the batch's scoring statement under EXPLAIN ANALYZE in a transaction
    that is rolled back, and reads the time of its main steps from the plan.
    """
    import json

    from django.db import connection, transaction
    from django.utils import timezone

    from apps.lifecycle import registry
    from apps.lifecycle.scoring import get_scorecard_spec, iter_id_batches
    from apps.lifecycle.scoring.statements import (
        build_lock_statement,
        build_refresh_statement,
    )

    batches = list(iter_id_batches("member"))
    ids = batches[len(batches) // 2]
    statement = build_refresh_statement(
        get_scorecard_spec("member"),
        now=timezone.now(),
        inactive_kinds=registry.list_inactive_kind_names(),
    )
    params = {**statement.params, "subject_ids": ids}
    lock_sql, lock_params = build_lock_statement("member")
    with transaction.atomic(), connection.cursor() as cursor:
        # As in the nightly pass, the batch's scores are the previous day's,
        # so the statement stores them as that day's closing snapshots.
        cursor.execute(
            "UPDATE lifecycle_healthscore "
            "SET computed_at = computed_at - interval '1 day' "
            "WHERE member_id = ANY(%s)",
            [ids],
        )
        with stopwatch() as lock:
            cursor.execute(lock_sql, {**params, **lock_params})
            params["events_read_until"] = cursor.fetchone()[1]
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + statement.sql, params)
        plan = cursor.fetchone()[0]
        transaction.set_rollback(True)
    plan = json.loads(plan) if isinstance(plan, str) else plan
    root = plan[0]["Plan"]
    steps = {p.get("Subplan Name", ""): p for p in root.get("Plans", [])}

    def total(name: str) -> float:
        return steps[name]["Actual Total Time"] if name in steps else 0.0

    def find(node: dict, node_type: str) -> float:
        if node.get("Node Type") == node_type:
            return node["Actual Total Time"]
        return max(
            (find(child, node_type) for child in node.get("Plans", [])), default=0
        )

    banded = total("CTE banded")
    upserted = total("CTE upserted")
    return {
        "lock the batch's score rows": lock[0] * 1000,
        "plan the statement": plan[0]["Planning Time"],
        "read and aggregate the events": find(steps["CTE banded"], "Aggregate"),
        "normalise, weigh and band": banded - find(steps["CTE banded"], "Aggregate"),
        "build components, upsert scores": upserted - banded,
        "store the previous day's closing snapshots": total("CTE closing"),
        "find and record band changes": (
            plan[0]["Execution Time"] - upserted - total("CTE closing")
        ),
    }


def start_new_day() -> None:
    """Make the next pass the day's first, as the nightly pass usually is.

    Every score is dated back a day and that day's snapshots are deleted, so
    the pass stores each previous score as the day's closing snapshot. The
    score tables are vacuumed, as autovacuum does between two nightly passes.
    """
    from django.db import connection
    from django.utils import timezone

    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE lifecycle_healthscore "
            "SET computed_at = computed_at - interval '1 day', "
            "events_read_until = events_read_until - interval '1 day'"
        )
        cursor.execute(
            "DELETE FROM lifecycle_healthscoresnapshot WHERE day = %s",
            [timezone.now().date() - timedelta(days=1)],
        )
        cursor.execute("VACUUM ANALYZE lifecycle_healthscore")
        cursor.execute("VACUUM ANALYZE lifecycle_healthscoresnapshot")


def full_account_pass(now) -> tuple[float, float, int]:
    from apps.lifecycle.scoring import iter_id_batches, refresh_account_health_scores

    scored = 0
    with sql_timer() as timer, stopwatch() as wall:
        for ids in iter_id_batches("account"):
            scored += refresh_account_health_scores(account_ids=ids, now=now)
    return wall[0], timer.seconds, scored


def baseline_pass(*, is_index_only: bool = False) -> tuple[float, int]:
    """Time the minimal per-member count over the same 30-day window.

    With `is_index_only`, the planner may use neither sequential nor bitmap
    scans, which leaves an index-only scan of an index on
    (member_id, occurred_at), the fastest plan on this data.
    """
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS bench_baseline "
            "(member_id bigint, events bigint)"
        )
        cursor.execute("TRUNCATE bench_baseline")
        if is_index_only:
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("SET LOCAL enable_bitmapscan = off")
        with stopwatch() as elapsed:
            cursor.execute(
                "INSERT INTO bench_baseline "
                "SELECT member_id, count(*) FROM lifecycle_activityevent "
                "WHERE occurred_at >= now() - interval '30 days' "
                "GROUP BY member_id"
            )
            rows = cursor.rowcount
    return elapsed[0], rows


def add_new_events(share: float) -> int:
    """Record 3 new events now for `share` of the members; return the members.

    Each run takes another slice of the members (ids with another remainder),
    counted in a table of the bench database. Members that got the bench's
    events in an earlier run may already sit in the band those events lead
    to, and a slice never used before has band changes to record, as fresh
    activity does.
    """
    from django.db import connection

    every = round(1 / share)
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS bench_incremental_run "
            "(id serial PRIMARY KEY, ran_at timestamptz NOT NULL DEFAULT now())"
        )
        cursor.execute("INSERT INTO bench_incremental_run DEFAULT VALUES RETURNING id")
        remainder = cursor.fetchone()[0] % every
        cursor.execute(
            """
            INSERT INTO lifecycle_activityevent
                (member_id, account_id, kind, subject_id, occurred_at, recorded_at,
                 campaign_id, play_id, utm_source, utm_medium, utm_campaign,
                 utm_term, utm_content, properties)
            SELECT m.id, m.account_id, 'product.report_exported', '', now(), now(),
                   '', '', '', '', '', '', '', '{}'
            FROM membership_member m
            CROSS JOIN generate_series(1, 3)
            WHERE m.id %% %(every)s = %(remainder)s
            """,
            {"every": every, "remainder": remainder},
        )
        cursor.execute(
            "SELECT count(*) FROM membership_member "
            "WHERE id %% %(every)s = %(remainder)s",
            {"every": every, "remainder": remainder},
        )
        return cursor.fetchone()[0]


def decay_check() -> tuple[float, int]:
    """Time the hourly look for decayed member scores; return seconds and count.

    The listing reads no event here (it starts now), so it times the read
    of the score table that the look for decayed scores adds.
    """
    from django.utils import timezone

    from apps.lifecycle.scoring import list_stale_member_ids

    with stopwatch() as elapsed:
        found = list_stale_member_ids(events_since=timezone.now(), include_decayed=True)
    return elapsed[0], len(found)


def incremental_member_pass() -> tuple[float, float, int, int]:
    """Refresh the stale members as the beat task does.

    Returns wall and SQL seconds, members scored and statements run.
    """
    from apps.lifecycle.scoring import refresh_stale_member_scores

    with sql_timer() as timer, stopwatch() as wall:
        scored = refresh_stale_member_scores()
    return wall[0], timer.seconds, scored, timer.statements


@dataclass
class IncrementalRun:
    wall: float
    sql: float
    statements: int
    rescored: int
    touched: int
    band_changes: int


def measure_incremental_pass() -> IncrementalRun:
    """Give 1 % of the members new events, then time the incremental pass."""
    from apps.lifecycle.models import ActivityEvent

    # The beat runs the incremental pass every minute, so one has run
    # shortly before the new events arrive. Autovacuum summarizes each filled
    # range of the recorded_at BRIN index within a minute or so
    # (autosummarize), so the ranges filled before that pass are summarized,
    # and those of the new events are not.
    summarize_recorded_ranges()
    incremental_member_pass()
    touched = add_new_events(0.01)
    before = ActivityEvent.objects.order_by("-pk").values_list("pk", flat=True)[0]
    wall, sql, rescored, statements = incremental_member_pass()
    band_changes = ActivityEvent.objects.filter(
        pk__gt=before, kind="lifecycle.health_band_changed"
    ).count()
    return IncrementalRun(wall, sql, statements, rescored, touched, band_changes)


def summarize_recorded_ranges() -> None:
    """Summarize the filled ranges of the recorded_at BRIN index, as autovacuum does."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT brin_summarize_new_values('activityevent_recorded_brin'::regclass)"
        )


def open_broker_connection() -> None:
    """Publish one empty message, as a running worker has done long before."""
    from apps.lifecycle.tasks import refresh_member_scores_task

    refresh_member_scores_task.apply_async(kwargs={"member_ids": []}, queue=BENCH_QUEUE)


def publish_batches() -> tuple[float, float, int]:
    """Publish and consume one refresh message per batch of member ids.

    Messages go to a queue of their own on REDIS_URL, so no worker takes
    them; they are consumed here and the queue is deleted afterwards.
    Returns the publish seconds, the consume seconds and the message count.
    """
    from apps.lifecycle.scoring import iter_id_batches
    from apps.lifecycle.tasks import refresh_member_scores_task
    from rm6.celery import app as celery_app

    batches = list(iter_id_batches("member"))
    # Messages sent earlier in the run, such as the band changes' trigger
    # messages, are dropped, so the first message consumed is the one below.
    with celery_app.connection_for_write() as connection:
        connection.default_channel.client.delete(BENCH_QUEUE)
    # A first message opens the broker connection, as a running worker or
    # beat process already has.
    open_broker_connection()
    with stopwatch() as publish:
        for ids in batches:
            refresh_member_scores_task.apply_async(
                kwargs={"member_ids": ids}, queue=BENCH_QUEUE
            )
    with celery_app.connection_for_read() as connection:
        queue = connection.SimpleQueue(BENCH_QUEUE)
        queue.get(timeout=10).ack()
        with stopwatch() as consume:
            for _ in batches:
                queue.get(timeout=10).ack()
        queue.close()
    return publish[0], consume[0], len(batches)


def record_activity_costs(calls: int) -> dict[str, list[float]]:
    """Time record_activity as a request pays for it; return seconds per call.

    "record_activity, own transaction" runs each call in a transaction of its
    own, with its commit and its on-commit callbacks. A request that records
    an event usually writes something else too and commits anyway, so the
    call is also timed inside such a transaction: one small insert into a
    table of the bench's own, with and without the event. The difference is
    what recording the event adds to that request. "ORM insert only" is
    `ActivityEvent.objects.create` in its own transaction.
    """
    import random

    from django.db import connection, transaction

    from apps.lifecycle.models import ActivityEvent
    from apps.lifecycle.services import record_activity
    from apps.membership.models import Member

    rng = random.Random(7)
    member_ids = list(Member.objects.values_list("pk", flat=True))
    members = list(
        Member.objects.filter(pk__in=rng.sample(member_ids, 200)).select_related("user")
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS bench_request_write "
            "(id bigserial PRIMARY KEY, member_id bigint, at timestamptz)"
        )
    times: dict[str, list[float]] = {
        "record_activity, own transaction": [],
        "ORM insert only, own transaction": [],
        "request write alone": [],
        "request write + record_activity": [],
    }

    def run(name: str, call) -> None:
        for index in range(calls):
            member = members[index % len(members)]
            start = time.perf_counter()
            with transaction.atomic():
                call(member)
            times[name].append(time.perf_counter() - start)

    def record(member) -> None:
        record_activity(member=member, kind="product.report_exported")

    def insert(member) -> None:
        ActivityEvent.objects.create(
            member=member,
            account_id=member.account_id,
            kind="product.report_exported",
            occurred_at=datetime.now(UTC),
        )

    def request_write(member) -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO bench_request_write (member_id, at) VALUES (%s, now())",
                [member.pk],
            )

    def request_write_and_record(member) -> None:
        request_write(member)
        record(member)

    # Interleaved in rounds, so that a change in the machine's load weighs
    # on every variant alike.
    rounds = 10
    for _ in range(rounds):
        run("record_activity, own transaction", record)
        run("ORM insert only, own transaction", insert)
        run("request write alone", request_write)
        run("request write + record_activity", request_write_and_record)
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE bench_request_write")
    return times


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def measure(results: Results, repeats: int) -> None:
    from django.db import connection
    from django.utils import timezone

    from apps.lifecycle.models import ActivityEvent

    results.notes.append(
        "Event table indexes, as the migrations create them: "
        + "; ".join(d.split(" USING ", 1)[1] for d in list_event_indexes())
    )
    first_new_event = ActivityEvent.objects.order_by("-pk").values_list(
        "pk", flat=True
    )[0]

    # A warm-up pass fills the caches and makes sure every member has a
    # score, so the timed passes update rows as the nightly pass does.
    full_member_pass(timezone.now())
    full = []
    parallel = []
    baselines = []
    index_only_baselines = []
    # Celery starts one worker process per CPU unless configured otherwise,
    # and the baseline's plan runs on as many processes (a leader and its
    # workers).
    workers = os.cpu_count() or 1
    for _ in range(repeats):
        start_new_day()
        baselines.append(baseline_pass())
        index_only_baselines.append(baseline_pass(is_index_only=True))
        full.append(full_member_pass(timezone.now()))
        start_new_day()
        parallel.append(parallel_full_member_pass(timezone.now(), workers))
    full_wall = statistics.median(f[0] for f in full)
    full_sql = statistics.median(f[1] for f in full)
    scored = full[0][2]
    batches = full[0][3]
    base_seconds = statistics.median(b[0] for b in baselines)
    base_rows = baselines[0][1]
    full_rate = scored / full_sql
    base_rate = base_rows / base_seconds
    fast_seconds = statistics.median(b[0] for b in index_only_baselines)
    fast_rate = base_rows / fast_seconds
    parallel_wall = statistics.median(p[0] for p in parallel)
    parallel_rate = parallel[0][1] / parallel_wall
    results.add(
        "full member rescore, wall",
        f"{full_wall:.2f} s",
        f"{scored:,} members in {batches} batches, one worker, median of {repeats}",
    )
    results.add(
        "full member rescore, SQL",
        f"{full_sql:.2f} s",
        f"{full_rate:,.0f} members/s, one worker",
    )
    results.add(
        f"full member rescore, {workers} workers, wall",
        f"{parallel_wall:.2f} s",
        f"{parallel_rate:,.0f} members/s, batches listed and shared as "
        f"messages are, median of {repeats}",
    )
    results.add(
        "baseline INSERT ... GROUP BY",
        f"{base_seconds:.2f} s",
        f"{base_rows:,} members, {base_rate:,.0f} members/s",
    )
    results.check(
        "full rescore SQL time at most 5 s",
        f"{full_sql:.2f} s",
        full_sql <= 5,
    )
    results.add(
        "baseline with an index-only scan forced",
        f"{fast_seconds:.2f} s",
        f"{fast_rate:,.0f} members/s",
    )
    results.add(
        "one worker against the baseline",
        f"{full_rate / base_rate:.2f}",
        f"{full_rate / fast_rate:.2f} against the index-only baseline",
    )
    results.check(
        f"full rescore at least half the baseline's members/s, planner's plan "
        f"({workers} workers)",
        f"{parallel_rate / base_rate:.2f} of the baseline",
        parallel_rate >= base_rate / 2,
    )
    # The target compares with the baseline as the planner runs it. Forcing
    # the index-only plan shows the fastest plan on this data, for reference.
    results.add(
        f"{workers} workers against the index-only baseline",
        f"{parallel_rate / fast_rate:.2f}",
    )

    for step, milliseconds in explain_member_batch().items():
        results.add(f"one batch of 5,000: {step}", f"{milliseconds:.1f} ms")

    account_wall, account_sql, accounts = full_account_pass(timezone.now())
    results.add(
        "full account rescore, SQL",
        f"{account_sql:.2f} s",
        f"{accounts:,} accounts, wall {account_wall:.2f} s",
    )

    incremental = [measure_incremental_pass() for _ in range(repeats)]
    incremental_wall = statistics.median(i.wall for i in incremental)
    typical = min(incremental, key=lambda i: abs(i.wall - incremental_wall))
    share = incremental_wall / full_wall
    decay_seconds, decayed = decay_check()
    results.add(
        "hourly look for decayed scores",
        f"{decay_seconds * 1000:.1f} ms",
        f"{decayed:,} found; the incremental passes of the other minutes skip it",
    )
    results.add(
        "incremental pass, 1 % new events",
        f"{incremental_wall:.3f} s",
        f"median of {repeats} slices, "
        f"{min(i.wall for i in incremental) * 1000:.0f} to "
        f"{max(i.wall for i in incremental) * 1000:.0f} ms; the median one: "
        f"{typical.rescored:,} rescored of {typical.touched:,} with events, "
        f"SQL {typical.sql * 1000:.1f} ms in {typical.statements} statements, "
        f"{typical.band_changes:,} band changes recorded",
    )
    results.add(
        "time per rescored member, incremental against full",
        f"{typical.wall / typical.rescored * 1e6:.0f} µs",
        f"{full_wall / scored * 1e6:.0f} µs in the full pass",
    )
    results.check(
        "incremental pass at most 1 % of a full pass",
        f"{share * 100:.2f} %",
        share <= 0.01,
    )

    publish, consume, messages = publish_batches()
    job = publish + consume + full_wall
    messaging = (publish + consume) / job
    results.add(
        "Celery publish + consume",
        f"{(publish + consume) * 1000:.1f} ms",
        f"{messages} messages of up to 5,000 ids; {messaging * 100:.2f} % of the job",
    )
    results.check(
        "Celery messaging under 5 % of the job",
        f"{messaging * 100:.2f} %",
        messaging < 0.05,
    )

    costs = record_activity_costs(200)
    for name, values in costs.items():
        mean = statistics.fmean(values) * 1000
        p95 = percentile(values, 0.95) * 1000
        results.add(name, f"{mean:.3f} ms", f"p95 {p95:.3f} ms, {len(values):,} calls")
    added = statistics.fmean(costs["request write + record_activity"]) - (
        statistics.fmean(costs["request write alone"])
    )
    results.add(
        "added to a request by record_activity",
        f"{added * 1000:.3f} ms",
        "mean difference of the two request variants",
    )
    results.check(
        "record_activity adds at most 1 ms to the request (mean)",
        f"{added * 1000:.3f} ms",
        added <= 0.001,
    )
    own = statistics.fmean(costs["record_activity, own transaction"])
    results.check(
        "record_activity in a transaction of its own at most 1 ms (mean)",
        f"{own * 1000:.3f} ms",
        own <= 0.001,
    )

    # Leave the data set as generated, so later runs measure the same data.
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM lifecycle_activityevent WHERE id > %s", [first_new_event]
        )
        cursor.execute("VACUUM ANALYZE lifecycle_activityevent")


def purge_bench_queue() -> None:
    """Delete the bench queue, and the stale listing's times from the cache."""
    from django.core.cache import cache

    from apps.lifecycle.scoring.refresh import _checked_key, _decay_checked_key
    from rm6.celery import app as celery_app

    cache.delete_many(
        [
            _checked_key(level) if is_events else _decay_checked_key(level)
            for level in ("member", "account")
            for is_events in (True, False)
        ]
    )

    with celery_app.connection_for_write() as connection:
        client = connection.default_channel.client
        bindings = client.keys(f"_kombu.binding*.{BENCH_QUEUE}")
        client.delete(BENCH_QUEUE, *bindings)


def write_report(
    results: Results, machine: list[str], sizes: Sizes, load, end_load
) -> None:
    rows = "\n".join(f"| {name} | {cell} |" for name, cell in results.rows.items())
    checks = "\n".join(
        f"| {target} | {measured}, {'met' if is_met else 'missed'} |"
        for target, (measured, is_met) in results.checks.items()
    )
    notes = "\n".join(f"- {note}" for note in results.notes)
    machine_lines = "\n".join(f"- {line}" for line in machine)
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    section = f"""## Scoring

Measured by `bench/scoring.py` on {when}, with this command:

```
DATABASE_URL=postgres://… REDIS_URL=redis://… .venv/bin/python bench/scoring.py
```

Machine:

{machine_lines}
- Load average (1, 5, 15 min): {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f} at
  the start, {end_load[0]:.2f}, {end_load[1]:.2f}, {end_load[2]:.2f} at the end.
  Other processes shared the machine, so figures vary between runs.

Data set, generated with SQL in a database of its own:

- {sizes.accounts:,} accounts, {sizes.empty_accounts} of them without members
- {sizes.members:,} members with their users, {sizes.deactivated_share:.0%} of
  them deactivated
- {sizes.events:,} events over {sizes.days} days, in time order, spread over
  the members with a power-law skew; {sizes.inactive_share:.0%} of the members
  have none, and 2 % of the events are health band changes, which do not
  count as activity
- the default scorecards that the migrations create

The event table has the indexes the migrations create, listed at the end.

| measurement | value |
| --- | --- |
{rows}

| target | result |
| --- | --- |
{checks}

{notes}
"""
    text = REPORT_PATH.read_text() if REPORT_PATH.exists() else "# Benchmarks\n"
    start = text.find("## Scoring\n")
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + 1)
        text = text[:start] + section + (text[end + 1 :] if end != -1 else "")
    REPORT_PATH.write_text(text)
    print(f"\nwritten to {REPORT_PATH}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database", default="rm6_bench", help="Name of the bench database."
    )
    parser.add_argument(
        "--rebuild", action="store_true", help="Regenerate the data set."
    )
    parser.add_argument(
        "--generate-only",
        action="store_true",
        help="Build the data set and stop before measuring.",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="Number of timed full passes and baselines; the median is reported.",
    )
    parser.add_argument(
        "--no-report",
        action="store_true",
        help="Print the figures without writing docs/benchmarks.md.",
    )
    args = parser.parse_args()

    database_url = os.environ.get("DATABASE_URL")
    if not database_url or not os.environ.get("REDIS_URL"):
        parser.error("set DATABASE_URL and REDIS_URL to a PostgreSQL and a Redis")
    server_url, bench_url = database_urls(database_url, args.database)
    create_database(server_url, args.database)
    setup_django(bench_url)

    from django.db import connection

    sizes = Sizes()
    with connection.cursor() as cursor:
        is_complete = _dataset_is_complete(cursor, sizes)
    if args.rebuild or not is_complete:
        generate_dataset(sizes)
    else:
        print("reusing the data set in the bench database", flush=True)
    if args.generate_only:
        return

    load = os.getloadavg()
    results = Results()
    try:
        measure(results, args.repeats)
    finally:
        purge_bench_queue()

    print()
    for target, (measured, is_met) in results.checks.items():
        result = "met   " if is_met else "MISSED"
        print(f"  {result} {target}: {measured}")
    if not args.no_report:
        write_report(
            results,
            machine_description(
                database_settings=[
                    "shared_buffers",
                    "work_mem",
                    "max_parallel_workers_per_gather",
                    "jit",
                ],
                services=["Broker: Redis on the same machine"],
            ),
            sizes,
            load,
            os.getloadavg(),
        )


if __name__ == "__main__":
    main()
