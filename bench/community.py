"""Benchmark the community pages on a generated data set of production size.

Run with DATABASE_URL and REDIS_URL set:

    .venv/bin/python bench/community.py [--rebuild] [--no-report]

The script creates its own database (rm6_bench_community by default) on the
server of DATABASE_URL and migrates it. It fills it with SQL
(generate_series, never the ORM per row): 100,000 members with their users,
10 spaces, 100,000 topics and 1,000,000 replies, 60,000 of them under one
long topic. Generation takes about a minute, so a database that already
contains the data set is reused, and --rebuild regenerates it.

It then starts gunicorn on 127.0.0.1 with the production settings plus one
bench-only view (bench/community_settings.py), and measures in the same run:

- requests per second and latency of the anonymous topic page and of a
  minimal Django view that reads 12 rows and renders them;
- the first page and page 1,000 of the long topic's replies;
- the SQL query counts of the space page, topic page, search and the API
  lists, each at two sizes.

The figures are printed and, unless --no-report, written to the "Community"
section of docs/benchmarks.md.
"""

import argparse
import os
import secrets
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from benchsupport import create_database, database_urls, machine_description

BASE_DIR = Path(__file__).resolve().parent.parent
REPORT_PATH = BASE_DIR / "docs" / "benchmarks.md"
SECTION_TITLE = "## Community"
SETTINGS_MODULE = "bench.community_settings"
DATASET_VERSION = "1"

# Words for generated titles and bodies, so that full-text search has
# realistic matches: each word is in about one post in 20.
WORDS = [
    "export",
    "import",
    "report",
    "dashboard",
    "billing",
    "invoice",
    "login",
    "sso",
    "saml",
    "oidc",
    "webhook",
    "api",
    "token",
    "limit",
    "quota",
    "error",
    "timeout",
    "retry",
    "sync",
    "crm",
    "salesforce",
    "hubspot",
    "segment",
    "event",
    "filter",
    "chart",
    "widget",
    "permission",
    "role",
    "admin",
    "user",
    "account",
    "workspace",
    "project",
    "template",
    "schedule",
    "email",
    "notification",
    "digest",
    "upload",
    "csv",
    "pdf",
    "search",
    "index",
    "cache",
    "slow",
    "fast",
    "upgrade",
    "release",
    "version",
    "mobile",
    "browser",
    "plugin",
    "integration",
    "mapping",
    "field",
    "custom",
    "workflow",
]


@dataclass
class Sizes:
    accounts: int = 1_000
    members: int = 100_000
    spaces: int = 10
    tags: int = 100
    topics: int = 100_000
    replies: int = 1_000_000
    long_topic_replies: int = 60_000
    days: int = 365
    hidden_share: float = 0.01

    def key(self) -> str:
        return (
            f"{DATASET_VERSION}:{self.members}:{self.topics}:{self.replies}:"
            f"{self.long_topic_replies}"
        )


@dataclass
class Results:
    """Measurements and target checks."""

    rows: dict[str, str] = field(default_factory=dict)
    checks: dict[str, tuple[str, bool]] = field(default_factory=dict)
    query_counts: list[tuple[str, str, int, str, int]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, name: str, value: str, detail: str = "") -> None:
        self.rows[name] = f"{value} ({detail})" if detail else value
        print(f"  {name:<52} {value:>12}  {detail}", flush=True)

    def check(self, target: str, measured: str, is_met: bool) -> None:
        self.checks[target] = (measured, is_met)


def setup_django(bench_url: str) -> None:
    os.environ["DATABASE_URL"] = bench_url
    os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS_MODULE
    # The server and this process only need a key that stays the same
    # between them for one run.
    os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(40))
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(BASE_DIR))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def stopwatch_seconds(start: float) -> float:
    return time.perf_counter() - start


# Data set ----------------------------------------------------------------


def _dataset_is_complete(cursor, sizes: Sizes) -> bool:
    cursor.execute(
        "CREATE TABLE IF NOT EXISTS bench_dataset (key text PRIMARY KEY, value text)"
    )
    cursor.execute("SELECT value FROM bench_dataset WHERE key = 'complete'")
    row = cursor.fetchone()
    return row is not None and row[0] == sizes.key()


def generate_dataset(sizes: Sizes) -> None:
    """Replace the bench database's members, spaces, topics and replies."""
    from django.db import connection, transaction

    # One transaction for the load, so that a failure leaves no table without
    # its indexes. VACUUM cannot run inside a transaction block.
    with transaction.atomic(), connection.cursor() as cursor:
        print("emptying the bench tables", flush=True)
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS bench_dataset "
            "(key text PRIMARY KEY, value text)"
        )
        cursor.execute("DELETE FROM bench_dataset")
        cursor.execute(
            "TRUNCATE community_reply, community_topic, community_topic_tags, "
            "community_tag, community_space, community_memberstats, "
            "lifecycle_activityevent, membership_member, membership_account, "
            "auth_user, django_session RESTART IDENTITY CASCADE"
        )
        # Foreign keys and the search-vector triggers stay off for the load:
        # the statements below produce valid references and compute
        # search_vector with the triggers' own expressions.
        cursor.execute("SET LOCAL session_replication_role = replica")
        indexes = _drop_secondary_indexes(
            cursor, ["community_topic", "community_reply"]
        )
        steps = [
            ("accounts, members", _insert_members),
            ("spaces and tags", _insert_spaces_and_tags),
            ("topics", _insert_topics),
            ("replies", _insert_replies),
            ("counters", _update_counters),
        ]
        for label, step in steps:
            start = time.perf_counter()
            step(cursor, sizes)
            print(f"{label}: {stopwatch_seconds(start):.1f} s", flush=True)
        cursor.execute("SET LOCAL session_replication_role = DEFAULT")

        start = time.perf_counter()
        for definition in indexes:
            cursor.execute(definition)
        print(f"indexes rebuilt: {stopwatch_seconds(start):.1f} s", flush=True)
        cursor.execute(
            "INSERT INTO bench_dataset VALUES ('complete', %s)", [sizes.key()]
        )

    with connection.cursor() as cursor:
        start = time.perf_counter()
        cursor.execute("VACUUM ANALYZE")
        print(f"vacuum analyze: {stopwatch_seconds(start):.1f} s", flush=True)


def _drop_secondary_indexes(cursor, tables: list[str]) -> list[str]:
    """Drop the tables' indexes that back no constraint; return their definitions.

    Building an index once after the load is much faster than maintaining it
    row by row during it.
    """
    cursor.execute(
        """
        SELECT i.indexname, i.indexdef
        FROM pg_indexes i
        WHERE i.tablename = ANY(%s)
          AND NOT EXISTS (
              SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)
        """,
        [tables],
    )
    indexes = cursor.fetchall()
    for name, _definition in indexes:
        cursor.execute(f'DROP INDEX "{name}"')
    return [definition for _name, definition in indexes]


def _insert_members(cursor, sizes: Sizes) -> None:
    cursor.execute(
        """
        INSERT INTO membership_account
            (name, external_id, email_domains, segment, cs_tier, arr, time_zone,
             is_sso_required, created_at, updated_at)
        SELECT 'Account ' || i, '', ARRAY['account' || i || '.test'],
               'mid_market', 'pooled', 10000, 'UTC', false, now(), now()
        FROM generate_series(1, %(accounts)s) AS i
        """,
        {"accounts": sizes.accounts},
    )
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
             external_id, created_at, bio, deactivation_reason,
             email_notifications, headline, in_app_notifications, locale,
             show_account, show_activity, show_bio, show_headline)
        SELECT u.id, 1 + u.id %% %(accounts)s, 'Member ' || u.id,
               'member', 'adopting', 'UTC', '', now(), '', '', 'daily', '',
               true, 'en', false, true, true, true
        FROM auth_user u
        ORDER BY u.id
        """,
        {"accounts": sizes.accounts},
    )


def _insert_spaces_and_tags(cursor, sizes: Sizes) -> None:
    # Space 1, which contains the long topic, and most others are public; one is
    # for members only and one is private to account 1, so the visibility
    # filters have rows to remove.
    cursor.execute(
        """
        INSERT INTO community_space
            (name, slug, description, visibility, account_id, kind_label,
             position, topic_count, reply_count, solution_count, created_at)
        SELECT 'Space ' || i, 'space-' || i, 'Questions about area ' || i,
               CASE WHEN i = %(spaces)s THEN 'account'
                    WHEN i = %(spaces)s - 1 THEN 'members'
                    ELSE 'public' END,
               CASE WHEN i = %(spaces)s THEN 1 END,
               '', i, 0, 0, 0, now()
        FROM generate_series(1, %(spaces)s) AS i
        """,
        {"spaces": sizes.spaces},
    )
    cursor.execute(
        """
        INSERT INTO community_tag (name, slug, description, topic_count)
        SELECT 'tag ' || i, 'tag-' || i, '', 0
        FROM generate_series(1, %(tags)s) AS i
        """,
        {"tags": sizes.tags},
    )


def _words_sql(count_expression: str) -> str:
    """Return SQL for `count_expression` random words joined by spaces.

    The count refers to the outer row, so PostgreSQL evaluates the subquery
    per row instead of once.
    """
    words = "ARRAY[" + ", ".join(f"'{word}'" for word in WORDS) + "]"
    return (
        f"array_to_string(ARRAY(SELECT ({words})[1 + floor(random() * "
        f"{len(WORDS)})::int] FROM generate_series(1, {count_expression})), ' ')"
    )


def _insert_topics(cursor, sizes: Sizes) -> None:
    # Topics arrive in time order over `days`. Topic 1 is the long topic, in
    # space 1; the others rotate over the spaces, and `hidden_share` of them
    # are hidden.
    cursor.execute(
        f"""
        INSERT INTO community_topic
            (space_id, author_id, kind, title, body, reply_count, vote_score,
             kudos_count, idea_status, official_response, is_locked, is_hidden,
             created_at, last_activity_at, search_vector)
        SELECT t.space_id, t.author_id, t.kind, t.title, t.body, 0, 0, 0, '', '',
               false, t.is_hidden, t.created_at, t.created_at,
               setweight(to_tsvector('english', t.title), 'A')
               || setweight(to_tsvector('english', t.body), 'B')
        FROM (
            SELECT i,
                   1 + (i - 1) %% %(spaces)s AS space_id,
                   1 + floor(random() * %(members)s)::bigint AS author_id,
                   (ARRAY['question', 'question', 'discussion', 'idea'])
                       [1 + i %% 4] AS kind,
                   initcap({_words_sql("5 + i %% 4")}) || '?' AS title,
                   {_words_sql("30 + i %% 20")} AS body,
                   i > 1 AND random() < %(hidden)s AS is_hidden,
                   now() - %(days)s * interval '1 day'
                       + (i::float8 / %(topics)s) * %(days)s * interval '1 day'
                       AS created_at
            FROM generate_series(1, %(topics)s) AS i
        ) t
        ORDER BY t.i
        """,
        {
            "spaces": sizes.spaces,
            "members": sizes.members,
            "hidden": sizes.hidden_share,
            "days": sizes.days,
            "topics": sizes.topics,
        },
    )
    cursor.execute(
        """
        INSERT INTO community_topic_tags (topic_id, tag_id)
        SELECT t.id, 1 + (t.id * 7 + n * 13) %% %(tags)s
        FROM community_topic t
        CROSS JOIN generate_series(0, 1) AS n
        WHERE n < t.id %% 3
        """,
        {"tags": sizes.tags},
    )


def _insert_replies(cursor, sizes: Sizes) -> None:
    # The long topic's replies come one minute apart after it; every other
    # reply goes to a random topic, within 30 days of it. Each chunk is
    # inserted in time order, so a topic's replies are spread over the table
    # as in a live forum.
    cursor.execute(
        f"""
        INSERT INTO community_reply
            (topic_id, author_id, body, vote_score, kudos_count, is_hidden,
             created_at, search_vector)
        SELECT 1, 1 + floor(random() * %(members)s)::bigint, r.body, 0, 0,
               random() < %(hidden)s, r.created_at,
               to_tsvector('english', r.body)
        FROM (
            SELECT i, {_words_sql("10 + i %% 30")} AS body,
                   t.created_at + i * interval '1 minute' AS created_at
            FROM generate_series(1, %(long)s) AS i
            CROSS JOIN (SELECT created_at FROM community_topic WHERE id = 1) t
        ) r
        ORDER BY r.i
        """,
        {
            "members": sizes.members,
            "hidden": sizes.hidden_share,
            "long": sizes.long_topic_replies,
        },
    )
    others = sizes.replies - sizes.long_topic_replies
    chunk = 200_000
    for start in range(0, others, chunk):
        stop = min(start + chunk, others)
        begun = time.perf_counter()
        cursor.execute(
            f"""
            INSERT INTO community_reply
                (topic_id, author_id, body, vote_score, kudos_count, is_hidden,
                 created_at, search_vector)
            SELECT r.topic_id, r.author_id, r.body, 0, 0, r.is_hidden,
                   least(t.created_at + r.delay, now()),
                   to_tsvector('english', r.body)
            FROM (
                SELECT i,
                       2 + floor(random() * (%(topics)s - 1))::bigint AS topic_id,
                       1 + floor(random() * %(members)s)::bigint AS author_id,
                       {_words_sql("10 + i %% 30")} AS body,
                       random() < %(hidden)s AS is_hidden,
                       random() * interval '30 days' AS delay
                FROM generate_series(%(start)s, %(stop)s - 1) AS i
            ) r
            JOIN community_topic t ON t.id = r.topic_id
            ORDER BY least(t.created_at + r.delay, now())
            """,
            {
                "topics": sizes.topics,
                "members": sizes.members,
                "hidden": sizes.hidden_share,
                "start": start,
                "stop": stop,
            },
        )
        print(
            f"  replies {stop + sizes.long_topic_replies:>11,}: "
            f"{stopwatch_seconds(begun):.1f} s",
            flush=True,
        )


def _update_counters(cursor, sizes: Sizes) -> None:
    # The counters count published replies only, as the services keep them.
    cursor.execute(
        """
        UPDATE community_topic t
        SET reply_count = r.published,
            last_activity_at = greatest(t.created_at, r.last_at),
            first_reply_at = r.first_at
        FROM (
            SELECT topic_id,
                   count(*) FILTER (WHERE NOT is_hidden) AS published,
                   max(created_at) AS last_at,
                   min(created_at) AS first_at
            FROM community_reply
            GROUP BY topic_id
        ) r
        WHERE r.topic_id = t.id
        """
    )
    cursor.execute(
        """
        UPDATE community_space s
        SET topic_count = c.topics, reply_count = c.replies
        FROM (
            SELECT space_id,
                   count(*) FILTER (WHERE NOT is_hidden) AS topics,
                   sum(reply_count) FILTER (WHERE NOT is_hidden) AS replies
            FROM community_topic
            GROUP BY space_id
        ) c
        WHERE c.space_id = s.id
        """
    )
    cursor.execute(
        """
        UPDATE community_tag g
        SET topic_count = c.topics
        FROM (
            SELECT tag_id, count(*) AS topics
            FROM community_topic_tags
            GROUP BY tag_id
        ) c
        WHERE c.tag_id = g.id
        """
    )


# Server and load ---------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """gunicorn with the bench settings on 127.0.0.1, stopped by its own pid."""

    def __init__(self, bench_url: str, workers: int) -> None:
        self.port = _free_port()
        self.workers = workers
        self.base_url = f"http://127.0.0.1:{self.port}"
        environment = {
            **os.environ,
            "DATABASE_URL": bench_url,
            "DJANGO_SETTINGS_MODULE": SETTINGS_MODULE,
        }
        self.process = subprocess.Popen(
            [
                str(BASE_DIR / ".venv" / "bin" / "gunicorn"),
                "rm6.wsgi:application",
                "--chdir",
                str(BASE_DIR),
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(workers),
                "--log-level",
                "warning",
            ],
            env=environment,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(self.base_url + "/healthz", timeout=5):
                    break
            except OSError as error:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.stop()
                    raise RuntimeError(
                        "gunicorn did not start; see its output above"
                    ) from error
                time.sleep(0.5)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class Load:
    """Latencies in seconds and the wall time of the requests to one URL."""

    latencies: list[float] = field(default_factory=list)
    wall: float = 0.0

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.wall

    def percentile(self, share: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]

    def describe(self) -> str:
        return (
            f"p50 {self.percentile(0.5) * 1000:.1f} ms, "
            f"p95 {self.percentile(0.95) * 1000:.1f} ms, "
            f"{len(self.latencies):,} requests"
        )


def fetch(url: str) -> float:
    """GET the URL with a new connection, as gunicorn's sync workers close each."""
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=30) as response:
        response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {url} returned status {response.status}")
    return time.perf_counter() - start


def run_load(url: str, *, requests: int, concurrency: int, into: Load) -> None:
    """Send `requests` GETs from `concurrency` threads; add the timings to `into`."""
    remaining = iter(range(requests))
    lock = threading.Lock()
    latencies: list[float] = []

    def work() -> None:
        while True:
            with lock:
                if next(remaining, None) is None:
                    return
            elapsed = fetch(url)
            with lock:
                latencies.append(elapsed)

    threads = [threading.Thread(target=work) for _ in range(concurrency)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    into.wall += time.perf_counter() - start
    into.latencies.extend(latencies)


# Measurements --------------------------------------------------------------


def pick_typical_topic() -> tuple[int, int]:
    """Return a public question with the median reply count, and that count."""
    from django.db.models import Q

    from apps.community.models import Space, Topic

    topics = Topic.objects.filter(
        ~Q(pk=1),
        space__visibility=Space.Visibility.PUBLIC,
        kind=Topic.Kind.QUESTION,
        is_hidden=False,
        deleted_at__isnull=True,
    )
    median = sorted(topics.values_list("reply_count", flat=True)[:2000])[1000]
    topic = topics.filter(reply_count=median).order_by("pk").first()
    return topic.pk, median


def deep_page_cursor(topic_id: int, page: int) -> str:
    """Return the `after` cursor of reply page `page` as an anonymous reader sees it.

    The bench finds it with OFFSET once; a reader gets there by following
    the next-page links.
    """
    from apps.community.models import Topic
    from apps.community.pagination import encode_cursor
    from apps.community.selectors import list_topic_replies
    from apps.community.views import REPLIES_PER_PAGE

    replies = list_topic_replies(topic=Topic.objects.get(pk=topic_id))
    last_of_previous = replies.order_by("created_at", "id")[
        (page - 1) * REPLIES_PER_PAGE - 1
    ]
    return encode_cursor((last_of_previous.created_at, last_of_previous.pk))


def explain_reply_page(topic_id: int, cursor: str | None) -> tuple[float, int]:
    """Return the execution time in ms and shared buffers of one reply page query."""
    import json

    from django.db import connection
    from django.http import QueryDict

    from apps.community.models import Topic
    from apps.community.pagination import KeysetPage, PageRequest
    from apps.community.selectors import list_topic_replies
    from apps.community.views import REPLIES_PER_PAGE, REPLY_ORDERING

    query = QueryDict(f"after={cursor}" if cursor else "")
    captured = []

    def capture(execute, sql, params, many, context):
        captured.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(capture):
        KeysetPage(
            list_topic_replies(topic=Topic.objects.get(pk=topic_id)),
            ordering=REPLY_ORDERING,
            per_page=REPLIES_PER_PAGE,
            request=PageRequest.from_query(query),
        )
    sql, params = captured[-1]
    with connection.cursor() as cursor_:
        cursor_.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, params)
        plan = cursor_.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    buffers = plan[0]["Plan"].get("Shared Hit Blocks", 0) + plan[0]["Plan"].get(
        "Shared Read Blocks", 0
    )
    return plan[0]["Execution Time"], buffers


def measure_http(
    results: Results, server: Server, *, rounds: int, requests: int
) -> None:
    topic_id, reply_count = pick_typical_topic()
    urls = {
        "minimal view (12 rows)": "/bench/minimal/",
        "topic page, anonymous": f"/community/t/{topic_id}/",
    }
    concurrency = server.workers
    loads = {name: Load() for name in urls}
    for url in urls.values():
        run_load(server.base_url + url, requests=50, concurrency=1, into=Load())
    # Rounds alternate between the two URLs, so that a change in the load of
    # the shared machine affects both alike.
    for _ in range(rounds):
        for name, url in urls.items():
            run_load(
                server.base_url + url,
                requests=requests,
                concurrency=concurrency,
                into=loads[name],
            )
    minimal = loads["minimal view (12 rows)"]
    topic = loads["topic page, anonymous"]
    detail = f"{concurrency} client threads, {concurrency} gunicorn workers"
    results.add(
        "minimal view (12 rows)",
        f"{minimal.rate:,.0f} req/s",
        f"{minimal.describe()}; {detail}",
    )
    results.add(
        "topic page, anonymous",
        f"{topic.rate:,.0f} req/s",
        f"topic {topic_id}, {reply_count} replies; {topic.describe()}; {detail}",
    )
    ratio = topic.rate / minimal.rate
    results.check(
        "topic page at least 1/4 of the minimal view's requests per second",
        f"{ratio:.2f} of the minimal view",
        ratio >= 0.25,
    )
    p95 = topic.percentile(0.95)
    results.check(
        "topic page p95 at most 100 ms",
        f"{p95 * 1000:.1f} ms",
        p95 <= 0.100,
    )


def measure_in_process(results: Results, *, rounds: int, requests: int) -> None:
    """Time both URLs through Django's test client, without HTTP or a server.

    This is the CPU cost of the view, middleware and templates alone, so it
    shows how much of the difference between the two URLs is the page's
    own work.
    """
    from django.test import Client

    topic_id, _ = pick_typical_topic()
    urls = {
        "minimal view": "/bench/minimal/",
        "topic page, anonymous": f"/community/t/{topic_id}/",
    }
    client = Client()
    timings: dict[str, list[float]] = {name: [] for name in urls}
    for url in urls.values():
        for _ in range(20):
            client.get(url)
    for _ in range(rounds):
        for name, url in urls.items():
            for _ in range(requests):
                start = time.perf_counter()
                client.get(url)
                timings[name].append(time.perf_counter() - start)
    for name, values in timings.items():
        results.add(
            f"{name}, in process",
            f"{statistics.median(values) * 1000:.2f} ms",
            f"median of {len(values):,} requests through the test client",
        )


def measure_deep_page(
    results: Results, server: Server, *, rounds: int, requests: int
) -> None:
    from apps.community.views import REPLIES_PER_PAGE

    deep_page = 1000
    cursor = deep_page_cursor(1, deep_page)
    urls = {
        "long topic, page 1": "/community/t/1/",
        f"long topic, page {deep_page:,}": f"/community/t/1/?after={cursor}",
    }
    loads = {name: Load() for name in urls}
    for url in urls.values():
        run_load(server.base_url + url, requests=20, concurrency=1, into=Load())
    for _ in range(rounds):
        for name, url in urls.items():
            run_load(
                server.base_url + url,
                requests=requests,
                concurrency=1,
                into=loads[name],
            )
    first, deep = loads.values()
    for name, load in loads.items():
        results.add(
            name,
            f"{load.percentile(0.5) * 1000:.1f} ms",
            f"{REPLIES_PER_PAGE} replies a page; {load.describe()}, one client",
        )
    for name, page_cursor in [("page 1", None), (f"page {deep_page:,}", cursor)]:
        milliseconds, buffers = explain_reply_page(1, page_cursor)
        results.add(
            f"long topic, {name}: reply query",
            f"{milliseconds:.2f} ms",
            f"EXPLAIN ANALYZE, {buffers} shared buffers",
        )
    ratio = deep.percentile(0.5) / first.percentile(0.5)
    results.check(
        f"page {deep_page:,} of the long topic as fast as page 1 (p50 within 20 %)",
        f"{ratio:.2f} times page 1",
        ratio <= 1.2,
    )


def count_queries(client, url: str) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.get(url)
    with CaptureQueriesContext(connection) as context:
        response = client.get(url)
    if response.status_code != 200:
        raise RuntimeError(f"GET {url} returned status {response.status_code}")
    return len(context.captured_queries)


def measure_query_counts(results: Results) -> None:
    """Count each page's queries on a small list and on a full one.

    The small lists live in a space created inside a transaction that is
    rolled back, so the data set stays as generated.
    """
    from django.db import transaction
    from django.test import Client
    from django.utils import timezone

    from apps.community.models import Reply, Space, Topic
    from apps.membership.models import Member

    member = Member.objects.select_related("user").get(pk=2)
    anonymous = Client()
    signed_in = Client()
    signed_in.force_login(member.user)

    with transaction.atomic():
        now = timezone.now()
        space = Space.objects.create(
            name="Small", slug="bench-small", visibility=Space.Visibility.PUBLIC
        )
        topic = Topic.objects.create(
            space=space,
            author=member,
            title="Zyxwv quartz question",
            body="One reply only.",
            created_at=now,
            last_activity_at=now,
        )
        Reply.objects.create(topic=topic, author=member, body="Yes.", created_at=now)
        cases = [
            ("space page", "/community/bench-small/", "/community/space-1/"),
            ("topic page", f"/community/t/{topic.pk}/", "/community/t/1/"),
            ("search", "/community/search/?q=zyxwv", "/community/search/?q=export"),
            (
                "API spaces list",
                "/api/v1/community/spaces/?page_size=1",
                "/api/v1/community/spaces/?page_size=100",
            ),
            (
                "API topics list",
                "/api/v1/community/topics/?space=bench-small",
                "/api/v1/community/topics/?page_size=100",
            ),
            (
                "API replies list",
                f"/api/v1/community/topics/{topic.pk}/replies/",
                "/api/v1/community/topics/1/replies/?page_size=100",
            ),
        ]
        for name, small_url, large_url in cases:
            viewers = [("member", signed_in)]
            if not name.startswith("API"):
                viewers.insert(0, ("anonymous", anonymous))
            for viewer, client in viewers:
                small = count_queries(client, small_url)
                large = count_queries(client, large_url)
                results.query_counts.append((name, viewer, small, large_url, large))
                print(
                    f"  queries: {name:<18} {viewer:<10} small {small:>3}  "
                    f"large {large:>3}",
                    flush=True,
                )
        transaction.set_rollback(True)

    unequal = [
        f"{name} ({viewer}): {small} and {large}"
        for name, viewer, small, _url, large in results.query_counts
        if small != large
    ]
    results.check(
        "space page, topic page, search and API lists: the same query count "
        "on a small and a full list",
        "; ".join(unequal) if unequal else "equal on every page, see below",
        not unequal,
    )


def write_report(
    results: Results, machine: list[str], sizes: Sizes, load, end_load
) -> None:
    rows = "\n".join(f"| {name} | {cell} |" for name, cell in results.rows.items())
    checks = "\n".join(
        f"| {target} | {measured}, {'met' if is_met else 'missed'} |"
        for target, (measured, is_met) in results.checks.items()
    )
    counts = "\n".join(
        f"| {name} | {viewer} | {small} | {large} (`{url}`) |"
        for name, viewer, small, url, large in results.query_counts
    )
    notes = "\n".join(f"- {note}" for note in results.notes)
    machine_lines = "\n".join(f"- {line}" for line in machine)
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    section = f"""{SECTION_TITLE}

Measured by `bench/community.py` on {when}, with this command:

```
DATABASE_URL=postgres://… REDIS_URL=redis://… .venv/bin/python bench/community.py
```

Machine:

{machine_lines}
- Load average (1, 5, 15 min): {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f} at
  the start, {end_load[0]:.2f}, {end_load[1]:.2f}, {end_load[2]:.2f} at the end.
  Other processes shared the machine, so figures vary between runs.

Data set, generated with SQL in a database of its own:

- {sizes.members:,} members with their users, in {sizes.accounts:,} accounts
- {sizes.spaces} spaces (one members-only, one private to an account, the
  rest public) and {sizes.tags} tags, with up to two tags a topic
- {sizes.topics:,} topics over {sizes.days} days and {sizes.replies:,}
  replies, {sizes.long_topic_replies:,} of them under topic 1, the long topic;
  {sizes.hidden_share:.0%} of the posts are hidden

The server is gunicorn with sync workers, started by the script on
127.0.0.1 with the production settings (DEBUG off, cached templates, the
whole middleware stack). `bench/community_settings.py` only adds the minimal
view, in `bench/community_urls.py`: it reads 12 replies through the ORM and
renders them with a small template. The client is the script itself, on the
same two CPUs, opening one connection a request.

| measurement | value |
| --- | --- |
{rows}

| target | result |
| --- | --- |
{checks}

SQL queries per request, counted in the same process with Django's test
client against the bench database. The small lists are in a space with one
topic and one reply, made for the count and rolled back.

| page | viewer | small list | full list |
| --- | --- | --- | --- |
{counts}

{notes}
"""
    text = REPORT_PATH.read_text() if REPORT_PATH.exists() else "# Benchmarks\n"
    start = text.find(SECTION_TITLE + "\n")
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + 1)
        # The section ends at the next "## " heading that is not its own.
        text = text[:start] + section + (text[end + 1 :] if end != -1 else "")
    REPORT_PATH.write_text(text)
    print(f"\nwritten to {REPORT_PATH}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database", default="rm6_bench_community", help="Name of the bench database."
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
        "--workers", type=int, default=2, help="gunicorn workers and client threads."
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="Alternating rounds over the compared URLs.",
    )
    parser.add_argument(
        "--requests", type=int, default=400, help="Requests per URL and round."
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
    measure_query_counts(results)
    measure_in_process(results, rounds=args.rounds, requests=args.requests // 4)
    server = Server(bench_url, workers=args.workers)
    try:
        measure_http(results, server, rounds=args.rounds, requests=args.requests)
        measure_deep_page(
            results, server, rounds=args.rounds, requests=args.requests // 4
        )
    finally:
        server.stop()

    print()
    for target, (measured, is_met) in results.checks.items():
        result = "met   " if is_met else "MISSED"
        print(f"  {result} {target}: {measured}")
    if not args.no_report:
        write_report(
            results,
            machine_description(
                database_settings=["shared_buffers", "work_mem", "jit"],
                services=[
                    "Cache and sessions: Redis and PostgreSQL on the same machine"
                ],
            ),
            sizes,
            load,
            os.getloadavg(),
        )


if __name__ == "__main__":
    main()
