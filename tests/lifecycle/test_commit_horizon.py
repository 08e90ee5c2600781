"""Events whose transaction commits late are still scored and still trigger plays.

Each test keeps an event in an open transaction on a second connection (a
thread), runs a refresh, a stale listing or a play sweep on the main one, and
only then commits the event. Readers that compared `recorded_at` with the
time they ran would miss it.
"""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from apps.lifecycle.horizon import MAX_TRANSACTION_AGE, read_commit_horizon
from apps.lifecycle.models import Enrolment, HealthScore
from apps.lifecycle.plays.triggers import SWEPT_UNTIL_KEY, sweep_event_triggers
from apps.lifecycle.scoring import (
    list_stale_member_ids,
    refresh_member_health_scores,
    refresh_stale_member_scores,
)
from apps.lifecycle.scoring.refresh import _checked_key
from apps.lifecycle.services import record_activity
from tests import factories
from tests.plays.factories import PlayFactory

pytestmark = pytest.mark.django_db(transaction=True)

WAIT = 20


@pytest.fixture(autouse=True)
def forget_positions():
    keys = [_checked_key("member"), _checked_key("account"), SWEPT_UNTIL_KEY]
    cache.delete_many(keys)
    yield
    cache.delete_many(keys)


@contextmanager
def event_committed_later(member, kind: str = "product.report_exported") -> Iterator:
    """Record an event in another connection's transaction; commit on exit."""
    inserted = threading.Event()
    release = threading.Event()
    errors: list[BaseException] = []

    def record() -> None:
        try:
            with transaction.atomic():
                record_activity(member=member, kind=kind)
                inserted.set()
                assert release.wait(WAIT), "the test never released the event"
        except BaseException as error:  # reported to the test below
            errors.append(error)
            inserted.set()
        finally:
            connection.close()

    thread = threading.Thread(target=record)
    thread.start()
    assert inserted.wait(WAIT), "the event was never inserted"
    try:
        yield
    finally:
        release.set()
        thread.join(WAIT)
    assert not errors, errors


def test_late_commit_makes_score_stale():
    member = factories.MemberFactory()
    refresh_member_health_scores(member_ids=[member.pk])
    assert list_stale_member_ids() == []

    with event_committed_later(member):
        # This refresh starts after the event's insert and cannot see it.
        refresh_member_health_scores(member_ids=[member.pk])
        assert HealthScore.objects.get(member=member).score == 0

    assert list_stale_member_ids() == [member.pk]
    refresh_member_health_scores(member_ids=[member.pk])
    assert HealthScore.objects.get(member=member).score > 0
    assert list_stale_member_ids() == []


def test_refreshes_stored_while_transaction_open():
    """An open transaction keeps the horizon still, and refreshes still store."""
    member, other = factories.MemberFactory.create_batch(2)
    refresh_member_health_scores(member_ids=[member.pk])

    with event_committed_later(other):
        factories.ActivityEventFactory.create_batch(5, member=member)
        assert refresh_member_health_scores(member_ids=[member.pk]) == 1
        first = HealthScore.objects.get(member=member).score
        factories.ActivityEventFactory.create_batch(10, member=member)
        assert refresh_member_health_scores(member_ids=[member.pk]) == 1
        second = HealthScore.objects.get(member=member).score

    assert 0 < first < second


def test_event_slightly_ahead_is_scored():
    """An event a client clock put ahead is read by the refresh, so it counts."""
    member = factories.MemberFactory()
    ahead = timezone.now() + timedelta(minutes=4)
    factories.ActivityEventFactory.create_batch(20, member=member, occurred_at=ahead)

    refresh_member_health_scores(member_ids=[member.pk])

    score = HealthScore.objects.get(member=member)
    assert score.components["activity"]["value"] == 20
    assert score.components["recency"]["value"] == 0


def test_late_commit_scored_by_next_pass():
    member = factories.MemberFactory()
    refresh_member_health_scores(member_ids=[member.pk])
    refresh_stale_member_scores()

    with event_committed_later(member):
        assert refresh_stale_member_scores() == 0

    assert refresh_stale_member_scores() == 1
    assert HealthScore.objects.get(member=member).score > 0


def test_sweep_enrols_late_commit_once():
    play = PlayFactory()
    member = factories.MemberFactory()
    sweep_event_triggers()

    with event_committed_later(member):
        assert sweep_event_triggers() == 0

    assert sweep_event_triggers() == 1
    assert sweep_event_triggers() == 0
    assert Enrolment.objects.filter(play=play, member=member).count() == 1


def test_horizon_waits_for_open_transaction():
    member = factories.MemberFactory()
    before_insert = timezone.now()

    with event_committed_later(member):
        horizon = read_commit_horizon()

    # Back to the start of the other transaction, which began after
    # before_insert, and never further than MAX_TRANSACTION_AGE.
    assert before_insert - timedelta(seconds=1) <= horizon <= timezone.now()
    assert read_commit_horizon() > horizon
    assert horizon >= timezone.now() - MAX_TRANSACTION_AGE


def test_recorded_at_index_summarizes_itself(db):
    """Readers of new events scan every unsummarized BRIN range.

    autosummarize lets autovacuum summarize each range once it fills, so the
    scanned tail stays short between two VACUUMs of the event table.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reloptions FROM pg_class "
            "WHERE relname = 'activityevent_recorded_brin'"
        )
        options = set(cursor.fetchone()[0])

    assert "autosummarize=on" in options
    assert "pages_per_range=32" in options
