"""The stale pass: one transaction per page that lists, locks and scores."""

import logging
import threading
import time
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import OperationalError, connection, connections, transaction
from django.utils import timezone

from apps.lifecycle import registry
from apps.lifecycle.models import (
    AccountHealthScore,
    HealthScore,
    Scorecard,
    ScorecardMeasure,
)
from apps.lifecycle.scoring import (
    list_stale_member_ids,
    refresh_member_health_scores,
    refresh_stale_account_scores,
    refresh_stale_member_scores,
    statements,
)
from apps.lifecycle.scoring import refresh as scoring_refresh
from apps.lifecycle.scoring.measures import Kind
from apps.lifecycle.tasks import (
    refresh_member_scores_task,
    rescore_stale_members_task,
)
from apps.membership.models import DataSourceRun
from tests import factories

WAIT = 20
LEVELS = ("member", "account")


@pytest.fixture(autouse=True)
def forget_stale_passes():
    """Start and end with no stored place in the events and no decay look."""
    keys = [
        key(level)
        for level in LEVELS
        for key in (scoring_refresh._checked_key, scoring_refresh._decay_checked_key)
    ]
    cache.delete_many(keys)
    yield
    cache.delete_many(keys)


def add_events(member, count=1):
    factories.ActivityEventFactory.create_batch(
        count,
        member=member,
        kind="product.report_exported",
        occurred_at=timezone.now() - timedelta(hours=1),
    )


def test_pass_pages_through_every_stale_member(db):
    members = factories.MemberFactory.create_batch(5)

    assert refresh_stale_member_scores(batch_size=2) == 5

    assert HealthScore.objects.filter(member__in=members).count() == 5
    assert list_stale_member_ids() == []


def test_pass_scores_unscored_member_with_activity(db):
    """An unscored member below the highest scored id is found by its events."""
    active, quiet, scored = factories.MemberFactory.create_batch(3)
    refresh_member_health_scores(member_ids=[scored.pk])
    assert refresh_stale_member_scores() == 0
    add_events(active, 2)

    assert refresh_stale_member_scores() == 1

    assert HealthScore.objects.get(member=active).components["activity"]["value"] == 2
    assert not HealthScore.objects.filter(member=quiet).exists()


def test_pass_skips_members_scored_after_their_events(db):
    fresh, stale = factories.MemberFactory.create_batch(2)
    refresh_member_health_scores(member_ids=[fresh.pk, stale.pk])
    refresh_stale_member_scores()
    add_events(fresh)
    add_events(stale)
    refresh_member_health_scores(member_ids=[fresh.pk])
    fresh_scored_at = HealthScore.objects.get(member=fresh).computed_at

    assert refresh_stale_member_scores(batch_size=1) == 1

    assert HealthScore.objects.get(member=fresh).computed_at == fresh_scored_at
    assert HealthScore.objects.get(member=stale).components["activity"]["value"] == 1


def test_pass_scores_accounts_of_active_members(db):
    quiet, active = factories.AccountFactory.create_batch(2)
    member = factories.MemberFactory(account=active)
    refresh_stale_account_scores()
    quiet_scored_at = AccountHealthScore.objects.get(account=quiet).computed_at
    add_events(member, 3)

    assert refresh_stale_account_scores() == 1
    assert refresh_stale_account_scores() == 0
    assert AccountHealthScore.objects.get(account=quiet).computed_at == quiet_scored_at


def test_pass_query_count_fixed(db, django_assert_num_queries):
    # Each pass scores a page of new members: the scorecard, the horizon
    # (two statements), the page's lock and its scoring. In the test's
    # transaction, the page's transaction adds a savepoint and its release.
    factories.MemberFactory.create_batch(2)
    with django_assert_num_queries(7):
        assert refresh_stale_member_scores() == 2

    factories.MemberFactory.create_batch(30)
    with django_assert_num_queries(7):
        assert refresh_stale_member_scores() == 30


def test_pass_without_a_computable_measure_keeps_its_place(db, caplog, monkeypatch):
    # The portal registers this source at start-up; the test removes it.
    monkeypatch.delitem(registry._measure_sources, "course_completions")
    Scorecard.objects.filter(level="member").update(is_active=False)
    scorecard = Scorecard.objects.create(name="Courses only", level="member")
    ScorecardMeasure.objects.create(
        scorecard=scorecard,
        kind=Kind.COURSE_COMPLETIONS,
        label="Courses",
        weight=1,
        window_days=30,
        zero_at=0,
        full_at=3,
        position=0,
    )
    Scorecard.objects.filter(pk=scorecard.pk).update(is_active=True)
    factories.MemberFactory()

    with caplog.at_level(logging.ERROR, logger="apps.lifecycle.scoring"):
        assert refresh_stale_member_scores() == 0

    assert "has no measure that can be computed" in caplog.text
    assert cache.get(scoring_refresh._checked_key("member")) is None


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("reason", ["new events", "decayed"])
def test_pass_rechecks_locked_rows(reason):
    """The pass tests staleness again once a score row is locked, and goes on.

    With one member per page, the pass waits for the held member, finds it
    no longer stale, and takes the next stale member into the page instead.
    """
    held, waiting = factories.MemberFactory.create_batch(2)
    now = timezone.now()
    ids = [held.pk, waiting.pk]
    if reason == "decayed":
        refresh_member_health_scores(member_ids=ids, now=now - timedelta(days=2))
    else:
        refresh_member_health_scores(member_ids=ids, now=now - timedelta(hours=2))
        refresh_stale_member_scores()
        add_events(held, 2)
        add_events(waiting, 2)
    # Earlier than the pass's time, so a second scoring would replace it.
    held_scored_at = timezone.now()
    holding = threading.Event()
    release = threading.Event()
    results: dict[str, object] = {}

    def score_and_hold():
        try:
            with transaction.atomic():
                refresh_member_health_scores(member_ids=[held.pk], now=held_scored_at)
                holding.set()
                release.wait(WAIT)
        except Exception as error:  # reported by the main thread
            results["holder"] = error
        finally:
            holding.set()
            connection.close()

    def run_pass():
        try:
            results["pass"] = refresh_stale_member_scores(batch_size=1)
        except Exception as error:  # reported by the main thread
            results["pass"] = error
        finally:
            connection.close()

    holder = threading.Thread(target=score_and_hold)
    holder.start()
    assert holding.wait(WAIT)
    passer = threading.Thread(target=run_pass)
    passer.start()
    try:
        wait_for_lock_wait()
    finally:
        release.set()
        holder.join(WAIT)
        passer.join(WAIT)

    assert "holder" not in results
    assert results["pass"] == 1
    assert HealthScore.objects.get(member=held).computed_at == held_scored_at
    assert HealthScore.objects.get(member=waiting).computed_at > held_scored_at


@contextmanager
def score_row_held(member):
    """Hold the member's score row locked on a second connection in the block."""
    holding = threading.Event()
    release = threading.Event()

    def hold_row():
        try:
            with transaction.atomic():
                HealthScore.objects.select_for_update().get(member=member)
                holding.set()
                release.wait(WAIT)
        finally:
            holding.set()
            connection.close()

    holder = threading.Thread(target=hold_row)
    holder.start()
    try:
        assert holding.wait(WAIT)
        yield
    finally:
        release.set()
        holder.join(WAIT)


def wait_for_lock_wait() -> None:
    """Return once a session of this database waits for a row lock."""
    deadline = time.monotonic() + WAIT
    with connections["default"].cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                return
            time.sleep(0.05)
    raise AssertionError("the pass never waited for the held score row")


def test_refresh_for_earlier_time_leaves_later_events_unread(db):
    """A refresh that waited for a lock does not mark newer events as read."""
    member = factories.MemberFactory()
    started_at = timezone.now() - timedelta(minutes=10)
    factories.ActivityEventFactory(
        member=member, kind="product.report_exported", occurred_at=timezone.now()
    )

    refresh_member_health_scores(member_ids=[member.pk], now=started_at)

    score = HealthScore.objects.get(member=member)
    assert score.components["activity"]["value"] == 0
    assert score.events_read_until == started_at
    assert list_stale_member_ids() == [member.pk]


@pytest.mark.django_db(transaction=True)
def test_pass_stops_at_a_row_locked_too_long(monkeypatch):
    """A score row held by an idle transaction stops the pass, not the workers."""
    monkeypatch.setattr(statements, "SCORE_LOCK_TIMEOUT", timedelta(seconds=0.3))
    member = factories.MemberFactory()
    refresh_member_health_scores(
        member_ids=[member.pk], now=timezone.now() - timedelta(hours=2)
    )
    refresh_stale_member_scores()
    checked = cache.get(scoring_refresh._checked_key("member"))
    add_events(member, 2)
    with score_row_held(member):
        assert rescore_stale_members_task() == 0

    run = DataSourceRun.objects.get(source=DataSourceRun.Source.SCORE_COMPUTATION)
    assert run.last_error == (
        "stale member pass failed: another transaction kept a score row locked "
        "for more than 0.3 s, so the run stopped; it is tried again"
    )
    assert cache.get(scoring_refresh._checked_key("member")) == checked
    assert rescore_stale_members_task() == 1
    assert HealthScore.objects.get(member=member).components["activity"]["value"] == 2


@pytest.mark.django_db(transaction=True)
def test_refresh_lock_timeout_raises(monkeypatch):
    """A batch refresh raises, for its task to retry, instead of waiting on."""
    monkeypatch.setattr(statements, "SCORE_LOCK_TIMEOUT", timedelta(seconds=0.3))
    member = factories.MemberFactory()
    refresh_member_health_scores(member_ids=[member.pk])
    with score_row_held(member):
        started = time.monotonic()
        with pytest.raises(OperationalError):
            refresh_member_health_scores(member_ids=[member.pk])
        assert time.monotonic() - started < WAIT / 2


@pytest.mark.django_db(transaction=True)
def test_refresh_task_records_lock_timeout(monkeypatch):
    """The freshness panel names why a batch refresh stopped, not a class name."""
    monkeypatch.setattr(statements, "SCORE_LOCK_TIMEOUT", timedelta(seconds=0.3))
    member = factories.MemberFactory()
    refresh_member_health_scores(member_ids=[member.pk])
    with score_row_held(member), pytest.raises(OperationalError):
        refresh_member_scores_task.run(member_ids=[member.pk])

    run = DataSourceRun.objects.get(source=DataSourceRun.Source.SCORE_COMPUTATION)
    assert run.last_error == (
        "member score refresh failed: another transaction kept a score row "
        "locked for more than 0.3 s, so the run stopped; it is tried again"
    )
