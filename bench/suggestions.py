"""Benchmark the case form's suggestions with four members typing at once.

Run with DATABASE_URL and REDIS_URL set:

    .venv/bin/python bench/suggestions.py [--rebuild] [--no-report]

The script creates its own database (rm6_bench_suggestions by default) on
the server of DATABASE_URL, migrates it and fills it with SQL: 100,000
knowledge base articles and 100,000 solved community questions (each with
its accepted reply), plus 20,000 unsolved questions, in spaces of every
visibility. Titles and bodies are drawn from a vocabulary of support words
with a power-law skew, so a few words match tens of thousands of rows, as
"export" or "error" would. A database that already holds the data set is
reused; --rebuild regenerates it. No other database is touched.

Four processes then each sign in as their own member, open a case attempt
and type case subjects the way the case form sends them: one request per
pause in typing, for "exp", "export", "export rep", "export report" and so
on. Each request goes through the whole Django stack (middleware, session,
view, template) by Django's test client, in the process's own database
connection. Between requests a typer waits the form's htmx delay (250 ms by
default). The figures are printed and, unless --no-report, written to the
"Case form suggestions" section of docs/benchmarks.md.
"""

import argparse
import datetime
import multiprocessing
import os
import random
import statistics
import sys
import time
from pathlib import Path

from benchsupport import create_database, database_urls, machine_description

BASE_DIR = Path(__file__).resolve().parent.parent
REPORT_PATH = BASE_DIR / "docs" / "benchmarks.md"
SECTION_TITLE = "## Case form suggestions"
# Analysis written below the figures; update it when the figures change.
ANALYSIS = """
What changed since the run of 2026-12-04 19:44 UTC (p50 39.8 ms, p95 110.1
ms, load average 2.5 to 2.8), from EXPLAIN (ANALYZE, BUFFERS) on this data
set:

- Articles match `suggest_vector`, a generated column of the title (weight
  A) and the summary (weight B), with a GIN index limited to published
  articles, the filter every member query carries. PostgreSQL 15 used to
  scan the published articles through their review-date index and test each
  row's whole vector (1,600 rows for `'export' & 'rep':*`, 10 ms). It now
  reads the GIN index (868 entries, 1 to 6 ms). A word that occurs only in
  an article's body no longer brings the article up.
- One SQL statement records what was shown: it updates the attempt, inserts
  the new answers with ON CONFLICT DO NOTHING and returns every row. It
  replaces a transaction of three statements. A request now runs 7
  queries on a cache miss: session, user, the attempt with its member, the
  viewer's restricted spaces, the two searches and the record.
- Ranked results are cached in Redis for 30 s, keyed by the typed words and
  by what the viewer may see (article audience, the account spaces and
  private groups the member reads, the spaces they moderate). A hit reads
  the rows again by primary key through the visibility filters. Here the
  four typers type different subjects, so the cache seldom hits. It saves
  the search when members type the same words.
- Solved questions match their own `suggest_vector`, a generated column of
  the title only, with a GIN index limited to solved questions (kind
  question with an accepted reply), the filter the query carries. They used
  the community app's index of title and body, whose posting lists for
  common words and short prefixes are long: `'exp':*` listed 62,315
  questions and the topic query took 15.8 ms. It now lists 6,408 and takes
  4.2 ms (`'export' & 'rep':*`: 13,300 entries and 11.4 ms before, 123
  and 1.3 ms now; measured at 20:30 UTC, load average 2.6, best of three
  EXPLAIN runs with a warm cache). The solved test is again
  `accepted_reply_id IS NOT NULL`: it equals the index condition, so
  PostgreSQL drops it from the plan and reads no accepted-reply index. A
  word that occurs only in a question's body no longer brings the question
  up, and more texts with several words take the any-word fallback. The
  search alone (typer 1's texts, one at a time, after the run) measured p50
  9.0 and p95 25.5 ms in the run of 20:21 UTC, p50 8.0 and p95 18.7 ms in
  the run above.
- Setting the accepted replies had moved every solved question behind the
  unsolved ones in the table. The script now clusters the topics by id after
  generating them, as a live forum has them mixed by age. The existing bench
  database was clustered by hand with the same command.

What limits it now:

- Django's own work: about 13 ms of Python CPU time a request (middleware,
  session, ORM query building, template), measured in one process. Planning
  costs about 1 ms a search (0.7 to 1.1 ms in the EXPLAIN runs above).
- The article search for common words, 1 to 6 ms, and the any-word fallback,
  which runs two more searches.
- The shared machine. Four typers on 2 CPUs leave little headroom, so the
  load of other processes moves p95. Before the title-only question vector,
  three runs between 20:07 and 20:21 UTC measured p95 46.9 ms, 89.8 ms and
  58.8 ms. Their load averages were 0.7 at the start, 1.0 rising to 2.9, and
  1.1 to 1.3. The target was met in one run of three. With it, two runs starting at
  20:39 and 20:41 UTC measured p50 24.0 and 27.2 ms, p95 41.1 and 44.7 ms,
  p99 50.5 and 55.5 ms (load average 0.56 to 0.53, then 0.56 to 0.35), both
  meeting the target. The second is the run above. Those two ran at a lower
  load than the earlier three, so part of the gain comes from the machine.
  No run at a load average of 2 or more was made after the change, and the
  target may be missed there. The change before this one (article vector,
  solved test, one-statement record, cache) was also timed in one process
  typing the same 725 texts one at a time, at a load average of about 2.8.
  It measured p50 29.1 and 25.3 ms, p95 60.4 and 52.9 ms, before and after.
  That is an estimate of about 12 % a request, because the load moved
  between the runs.
"""
DATASET_VERSION = "3"
ARTICLES = 100_000
SOLVED_QUESTIONS = 100_000
UNSOLVED_QUESTIONS = 20_000
TYPERS = 4
TARGET_P95_MS = 50.0

# Support vocabulary; earlier words are drawn more often.
VOCABULARY_TEXT = """
export error report login password sync data user account settings dashboard
api integration email notification invoice billing permission role import csv
upload download file access token sso saml okta azure webhook timeout slow
failed missing chart filter search update install configure license renew
plan seat admin team workspace project task calendar mobile android ios app
browser chrome firefox safari cache session logout reset verify domain
certificate ssl proxy firewall network connection database backup restore
migration schema field column row table query sort group limit quota usage
metric alert threshold schedule cron job queue retry webhook payload header
json xml pdf excel template theme logo branding language locale timezone
currency tax payment card refund subscription trial upgrade downgrade cancel
delete archive merge duplicate contact company lead opportunity pipeline
deal stage forecast goal target campaign segment audience tag label comment
mention reply thread message chat channel video call meeting recording
transcript share link embed widget plugin extension marketplace partner
sandbox staging production deploy release version changelog bug crash freeze
blank page loading spinner redirect loop captcha twofactor authenticator
device phone sms code expired invalid locked disabled suspended deleted
restore recover history audit log trail compliance gdpr consent privacy
retention policy encryption key rotate secret vault storage bucket region
latency performance memory cpu disk scale cluster node replica failover
"""
VOCABULARY = VOCABULARY_TEXT.split()

# Made-up product terms after the support words, so the vocabulary has the
# long tail of rare words that real articles have. Drawing a word's index as
# N * random() ** SKEW gives the first word about 1 % of all draws, close to
# the most frequent content word of English text once stop words are gone.
SYLLABLE_TEXT = """
ba be bi bo bu da de di do du ka ke ki ko ku la le li lo lu ma me mi mo mu na ne
ni no nu ra re ri ro ru ta te ti to tu va ve vi vo vu
"""
SYLLABLES = SYLLABLE_TEXT.split()
PRODUCT_TERMS = 20_000
SKEW = 2.2


def build_vocabulary() -> list[str]:
    """Return the support words followed by PRODUCT_TERMS made-up terms."""
    terms = []
    for first in SYLLABLES:
        for second in SYLLABLES:
            for third in SYLLABLES:
                terms.append(f"{first}{second}{third}x")
                if len(terms) == PRODUCT_TERMS:
                    return VOCABULARY + terms
    return VOCABULARY + terms


def setup_django(bench_url: str, *, migrate: bool = False) -> None:
    os.environ["DATABASE_URL"] = bench_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rm6.settings.local")
    os.environ["DJANGO_DEBUG"] = "0"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    if str(BASE_DIR) not in sys.path:
        sys.path.insert(0, str(BASE_DIR))
    import django

    django.setup()
    if migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)


# Data set ----------------------------------------------------------------


def _dataset_key() -> str:
    return f"{DATASET_VERSION}:{ARTICLES}:{SOLVED_QUESTIONS}:{UNSOLVED_QUESTIONS}"


def dataset_is_complete() -> bool:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS bench_dataset "
            "(key text PRIMARY KEY, value text)"
        )
        cursor.execute("SELECT value FROM bench_dataset WHERE key = 'complete'")
        row = cursor.fetchone()
    return row is not None and row[0] == _dataset_key()


def generate_dataset() -> None:
    """Replace the bench database's members, spaces, topics and articles."""
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM bench_dataset")
        cursor.execute(
            "TRUNCATE portal_suggestion, portal_caseattempt, portal_articleversion, "
            "portal_article, community_reply, community_topic, community_space, "
            "community_searchlog, membership_member, membership_account, auth_user "
            "RESTART IDENTITY CASCADE"
        )
        _insert_people(cursor)
        _insert_articles(cursor)
        print(f"articles: {time.perf_counter() - started:.0f} s", flush=True)
        _insert_questions(cursor)
        print(f"questions: {time.perf_counter() - started:.0f} s", flush=True)

    connection.set_autocommit(True)
    with connection.cursor() as cursor:
        # Setting the accepted replies rewrote every solved question at the
        # end of the table, behind the unsolved ones. A live forum has them
        # mixed by age, so put the rows back in id order.
        cursor.execute("CLUSTER community_topic USING community_topic_pkey")
        cursor.execute("VACUUM ANALYZE")
        cursor.execute(
            "INSERT INTO bench_dataset VALUES ('complete', %s)", [_dataset_key()]
        )
    connection.set_autocommit(False)
    print(f"data set ready: {time.perf_counter() - started:.0f} s", flush=True)


def _insert_people(cursor) -> None:
    cursor.execute(
        """
        INSERT INTO membership_account
            (name, external_id, email_domains, segment, cs_tier, arr, time_zone,
             is_sso_required, created_at, updated_at)
        SELECT 'Account ' || i, '', ARRAY['account' || i || '.test'],
               'mid_market', 'pooled', 50000, 'UTC', false, now(), now()
        FROM generate_series(1, 100) AS i
        """
    )
    cursor.execute(
        """
        INSERT INTO auth_user
            (password, is_superuser, username, first_name, last_name, email,
             is_staff, is_active, date_joined)
        SELECT '!', false, 'typer' || i, '', '', 'typer' || i || '@bench.test',
               false, true, now()
        FROM generate_series(1, 1000) AS i
        """
    )
    cursor.execute(
        """
        INSERT INTO membership_member
            (user_id, account_id, display_name, role, lifecycle_stage, time_zone,
             external_id, created_at, bio, deactivation_reason,
             email_notifications, headline, in_app_notifications, locale,
             show_account, show_activity, show_bio, show_headline)
        SELECT u.id, (SELECT min(id) FROM membership_account) + u.id % 100,
               'Typer ' || u.id, 'member', 'adopting', 'UTC', '', now(), '', '',
               'daily', '', true, 'en', false, true, true, true
        FROM auth_user u
        """
    )
    # Forty spaces: public, members-only, one per account for ten accounts,
    # and private groups whose members hold guardian's view_space permission.
    cursor.execute(
        """
        INSERT INTO community_space
            (name, slug, description, visibility, account_id, position,
             topic_count, created_at, kind_label, reply_count, solution_count)
        SELECT 'Space ' || i, 'space-' || i, '',
               (ARRAY['public', 'members', 'account', 'private'])[1 + i % 4],
               CASE WHEN i % 4 = 2
                    THEN (SELECT min(id) FROM membership_account) + i END,
               i, 0, now(), '', 0, 0
        FROM generate_series(0, 39) AS i
        """
    )


class TextMaker:
    """Draw words from the vocabulary with the power-law skew, reproducibly."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)
        self.words = build_vocabulary()
        count = len(self.words)
        # P(index < k) = (k / N) ** (1 / SKEW) when index = N * random() ** SKEW.
        self.cumulative = [((k + 1) / count) ** (1 / SKEW) for k in range(count)]

    def text(self, count: int) -> str:
        return " ".join(
            self.random.choices(self.words, cum_weights=self.cumulative, k=count)
        )


def _insert_articles(cursor) -> None:
    maker = TextMaker(seed=1)
    columns = (
        "title, slug, summary, body, audience, review_interval_days, reviewed_on, "
        "review_due_on, is_published, published_at, helpful_count, "
        "not_helpful_count, view_count, created_at, updated_at"
    )
    today = datetime.date.today()
    now = datetime.datetime.now(datetime.UTC)
    with cursor.copy(f"COPY portal_article ({columns}) FROM STDIN") as copy:
        for i in range(1, ARTICLES + 1):
            copy.write_row(
                (
                    maker.text(3 + i % 4).title(),
                    f"article-{i}",
                    maker.text(12),
                    maker.text(80 + i % 60),
                    "public" if i % 2 == 0 else "members",
                    180,
                    today,
                    today + datetime.timedelta(days=180),
                    i % 20 != 0,
                    now,
                    0,
                    0,
                    0,
                    now,
                    now,
                )
            )
    # The same expression as the knowledge service's build_search_vector.
    cursor.execute(
        """
        UPDATE portal_article SET search_vector =
            setweight(to_tsvector('english', coalesce(title, '')), 'A')
            || setweight(to_tsvector('english', coalesce(summary, '')), 'B')
            || setweight(to_tsvector('english', coalesce(body, '')), 'C')
        """
    )


def _insert_questions(cursor) -> None:
    # TRUNCATE ... RESTART IDENTITY numbered the spaces 1 to 40, the members
    # 1 to 1,000, and numbers these topics from 1.
    maker = TextMaker(seed=2)
    now = datetime.datetime.now(datetime.UTC)
    columns = (
        "space_id, author_id, kind, title, body, reply_count, vote_score, "
        "kudos_count, idea_status, official_response, is_locked, is_hidden, "
        "created_at, last_activity_at"
    )
    with cursor.copy(f"COPY community_topic ({columns}) FROM STDIN") as copy:
        for i in range(1, SOLVED_QUESTIONS + UNSOLVED_QUESTIONS + 1):
            created_at = now - datetime.timedelta(minutes=i)
            copy.write_row(
                (
                    1 + i % 40,
                    1 + i % 1000,
                    "question",
                    maker.text(4 + i % 5).title(),
                    maker.text(40 + i % 40),
                    1,
                    0,
                    0,
                    "",
                    "",
                    False,
                    i % 50 == 0,
                    created_at,
                    created_at,
                )
            )
    columns = (
        "topic_id, author_id, body, vote_score, kudos_count, is_hidden, created_at"
    )
    with cursor.copy(f"COPY community_reply ({columns}) FROM STDIN") as copy:
        for i in range(1, SOLVED_QUESTIONS + 1):
            copy.write_row((i, 1 + i % 1000, maker.text(30), 0, 0, False, now))
    cursor.execute(
        """
        UPDATE community_topic t
        SET accepted_reply_id = r.id, solved_at = r.created_at
        FROM community_reply r
        WHERE r.topic_id = t.id
        """
    )


def grant_private_groups(member_ids: list[int]) -> None:
    """Let the typers read half of the private groups, through guardian."""
    from django.db.models import Q

    from apps.community.models import Space
    from apps.community.services.access import add_space_member
    from apps.membership.models import Member

    spaces = Space.objects.filter(visibility=Space.Visibility.PRIVATE).order_by("id")
    for member in Member.objects.filter(Q(pk__in=member_ids)):
        for space in spaces[::2]:
            add_space_member(space=space, member=member)


# Typing --------------------------------------------------------------------


def build_subjects(seed: int, count: int) -> list[str]:
    """Return case subjects: most from article titles, some vague, some unknown.

    Seven in ten start from a real article title, so they match. Two in ten
    are support words that rarely occur together, which sends
    the search to its any-word fallback. One in ten is made-up words that
    match nothing.
    """
    from django.db import connection

    rng = random.Random(seed)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT lower(title) FROM portal_article ORDER BY random() LIMIT %s",
            [count],
        )
        titles = [row[0] for row in cursor.fetchall()]
    subjects = []
    for number in range(count):
        draw = rng.random()
        if draw < 0.7:
            subjects.append(titles[number])
        elif draw < 0.9:
            subjects.append(" ".join(rng.sample(VOCABULARY[-80:], 3)))
        else:
            subjects.append(f"zorblat{number} quixotic{seed} flummox")
    return subjects


def keystroke_pauses(subject: str) -> list[str]:
    """Return the texts the form sends while the subject is typed.

    The member pauses (and htmx fires) after every third letter of a word
    and at the end of each word.
    """
    texts = []
    typed = ""
    for word in subject.split():
        for end in range(3, len(word), 3):
            texts.append((typed + word[:end]).strip())
        typed += word + " "
        texts.append(typed.strip())
    return texts


def run_typer(arguments: tuple) -> dict:
    """Type every subject as one member and return the request timings."""
    bench_url, member_id, subjects, think_seconds = arguments
    setup_django(bench_url)
    from django.test import Client
    from django.urls import reverse

    from apps.membership.models import Member
    from apps.portal.models import CaseAttempt

    member = Member.objects.select_related("user").get(pk=member_id)
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(member.user)
    url = reverse("portal:case_suggestions")
    timings = []
    statuses = {}
    for subject in subjects:
        # One attempt per subject, as a member who opens the form per case.
        attempt = CaseAttempt.objects.create(member=member, started_at=_now())
        for text in keystroke_pauses(subject):
            started = time.perf_counter()
            response = client.get(url, {"q": text, "attempt": attempt.pk})
            timings.append((time.perf_counter() - started) * 1000)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            if think_seconds:
                time.sleep(think_seconds)
    return {"timings": timings, "statuses": statuses}


def _now():
    from django.utils import timezone

    return timezone.now()


def time_selector_alone(member_id: int, subjects: list[str]) -> list[float]:
    """Time the suggestion search alone, one request at a time, in this process.

    Beside the concurrent figures, this separates the cost of the search
    queries from the time requests spend waiting for a CPU. It bypasses the
    cache, which the run has filled with these very texts.
    """
    from apps.membership.models import Member
    from apps.portal.selectors.suggestions import (
        SUGGESTION_LIMIT,
        search_case_suggestions,
    )

    member = Member.objects.get(pk=member_id)
    timings = []
    for subject in subjects:
        for text in keystroke_pauses(subject):
            started = time.perf_counter()
            search_case_suggestions(text, member=member, limit=SUGGESTION_LIMIT)
            timings.append((time.perf_counter() - started) * 1000)
    return timings


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))
    return ordered[index]


def warm_up(bench_url: str, member_id: int) -> None:
    """Read the indexes once, so the first typer does not pay for a cold cache."""
    run_typer((bench_url, member_id, ["export report csv", "login sso"], 0))


def write_report(lines: list[str]) -> None:
    section = "\n".join([SECTION_TITLE, "", *lines]).rstrip("\n") + "\n"
    text = REPORT_PATH.read_text() if REPORT_PATH.exists() else "# Benchmarks\n"
    start = text.find(SECTION_TITLE + "\n")
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + 1)
        text = text[:start] + section + ("\n" + text[end + 1 :] if end != -1 else "")
    REPORT_PATH.write_text(text)
    print(f"\nwritten to {REPORT_PATH}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database",
        default="rm6_bench_suggestions",
        help="Name of the bench database, created if missing.",
    )
    parser.add_argument("--rebuild", action="store_true", help="Regenerate the data.")
    parser.add_argument(
        "--subjects",
        type=int,
        default=40,
        help="Case subjects each typer types; each sends 5 to 15 requests.",
    )
    parser.add_argument(
        "--think-ms",
        type=float,
        default=250,
        help="Milliseconds a typer waits between requests (the htmx delay).",
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
    setup_django(bench_url, migrate=True)

    from apps.membership.models import Member

    if args.rebuild or not dataset_is_complete():
        generate_dataset()
    else:
        print("reusing the data set in the bench database", flush=True)
    member_ids = list(
        Member.objects.order_by("id").values_list("pk", flat=True)[:TYPERS]
    )
    grant_private_groups(member_ids)

    from django.db import connection

    connection.close()
    warm_up(bench_url, member_ids[0])
    jobs = [
        (
            bench_url,
            member_id,
            build_subjects(seed, args.subjects),
            args.think_ms / 1000,
        )
        for seed, member_id in enumerate(member_ids)
    ]
    connection.close()

    load = os.getloadavg()
    started = time.perf_counter()
    context = multiprocessing.get_context("spawn")
    with context.Pool(TYPERS) as pool:
        outcomes = pool.map(run_typer, jobs)
    wall = time.perf_counter() - started
    end_load = os.getloadavg()

    sequential = time_selector_alone(member_ids[0], jobs[0][2])

    timings = [value for outcome in outcomes for value in outcome["timings"]]
    statuses: dict[int, int] = {}
    for outcome in outcomes:
        for code, count in outcome["statuses"].items():
            statuses[code] = statuses.get(code, 0) + count
    p50 = statistics.median(timings)
    p95 = percentile(timings, 0.95)
    p99 = percentile(timings, 0.99)
    is_met = p95 <= TARGET_P95_MS
    print(
        f"requests {len(timings)}, p50 {p50:.1f} ms, p95 {p95:.1f} ms, "
        f"p99 {p99:.1f} ms, max {max(timings):.1f} ms, statuses {statuses}",
        flush=True,
    )
    print(
        f"search alone, one at a time: p50 {statistics.median(sequential):.1f} ms, "
        f"p95 {percentile(sequential, 0.95):.1f} ms",
        flush=True,
    )
    print(f"target p95 <= {TARGET_P95_MS:.0f} ms: {'met' if is_met else 'MISSED'}")

    if args.no_report:
        return
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    responses = ", ".join(
        f"{code}: {count:,}" for code, count in sorted(statuses.items())
    )
    machine = "\n".join(
        f"- {line}"
        for line in machine_description(
            database_settings=["shared_buffers", "work_mem", "jit"],
            services=[],
        )
    )
    write_report(
        [
            f"Measured by `bench/suggestions.py` on {when}, with this command:",
            "",
            "```",
            "DATABASE_URL=postgres://… REDIS_URL=redis://… "
            f".venv/bin/python bench/suggestions.py --subjects {args.subjects} "
            f"--think-ms {args.think_ms:g}",
            "```",
            "",
            "Machine:",
            "",
            machine,
            f"- Load average (1, 5, 15 min): {load[0]:.2f}, {load[1]:.2f}, "
            f"{load[2]:.2f} at the start, {end_load[0]:.2f}, {end_load[1]:.2f}, "
            f"{end_load[2]:.2f} at the end. Other processes shared the machine,",
            "  so figures vary between runs.",
            "",
            "Data set, generated with SQL in a database of its own:",
            "",
            f"- {ARTICLES:,} knowledge base articles (5 % unpublished, half public "
            "and half members-only), 80 to 140 body words each",
            f"- {SOLVED_QUESTIONS:,} solved community questions with their "
            f"accepted replies, and {UNSOLVED_QUESTIONS:,} unsolved ones, in 40 "
            "spaces of every visibility (2 % of the topics hidden)",
            f"- words drawn from a vocabulary of {len(VOCABULARY)} support terms "
            f"followed by {PRODUCT_TERMS:,} made-up product terms, with a power-law "
            f"skew (index = N * random() ** {SKEW}): the most common word is about "
            "1 % of all words and occurs in about two articles in three",
            "",
            f"{TYPERS} processes type {args.subjects} case subjects each, at the "
            "same time, through Django's test client (the whole request stack, no "
            "network). A request goes out after every third letter of a word and "
            f"at each word's end, {args.think_ms:g} ms apart. Seven subjects in "
            "ten come from article titles, two in ten are rare word combinations "
            "that take the any-word fallback, and one in ten matches nothing.",
            "",
            "| measurement | value |",
            "| --- | --- |",
            f"| requests | {len(timings):,} in {wall:.1f} s |",
            f"| p50 | {p50:.1f} ms |",
            f"| p95 | {p95:.1f} ms |",
            f"| p99 | {p99:.1f} ms |",
            f"| max | {max(timings):.1f} ms |",
            "| search alone (selector without its cache, typer 1's texts, one at a "
            f"time, after the run): p50 | {statistics.median(sequential):.1f} ms |",
            f"| search alone: p95 | {percentile(sequential, 0.95):.1f} ms |",
            f"| responses | {responses} |",
            "",
            "| target | result |",
            "| --- | --- |",
            f"| p95 at most {TARGET_P95_MS:.0f} ms with {TYPERS} members typing | "
            f"{p95:.1f} ms, {'met' if is_met else 'missed'} |",
            "",
            *ANALYSIS.strip().splitlines(),
        ]
    )


if __name__ == "__main__":
    main()
