from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from apps.lifecycle.models import ActivityEvent, HealthScore, HealthScoreSnapshot
from apps.lifecycle.scoring import (
    band_for,
    list_stale_member_ids,
    refresh_member_health_scores,
)
from apps.lifecycle.scoring.refresh import _checked_key
from apps.lifecycle.tasks import rescore_all_members_task, rescore_stale_members_task
from rm6.celery import app as celery_app
from tests import factories


@pytest.fixture
def eager_celery():
    """Run tasks sent with .delay() at once, in this process and transaction.

    Afterwards, forget when the stale listing last ran, which it keeps in the
    cache.
    """
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous
    cache.delete_many([_checked_key("member"), _checked_key("account")])


def _events(member, count, *, days_ago=1, kind="product.report_exported"):
    when = timezone.now() - timedelta(days=days_ago)
    factories.ActivityEventFactory.create_batch(
        count, member=member, kind=kind, occurred_at=when
    )


def test_band_for_boundaries():
    assert band_for(39) == "red"
    assert band_for(40) == "yellow"
    assert band_for(69) == "yellow"
    assert band_for(70) == "green"


def test_refresh_scores_member_without_events_is_zero_red(db):
    member = factories.MemberFactory()

    refresh_member_health_scores(member_ids=[member.pk])

    score = HealthScore.objects.get(member=member)
    assert score.score == 0
    assert score.band == "red"
    assert score.components["activity"]["value"] == 0


def test_refresh_scores_full_activity_today_is_100(db):
    member = factories.MemberFactory()
    _events(member, 20, days_ago=0)

    refresh_member_health_scores(member_ids=[member.pk])

    assert HealthScore.objects.get(member=member).score == 100


def test_refresh_scores_weights_activity_and_recency(db):
    member = factories.MemberFactory()
    now = timezone.now()
    # 10 events 16.5 days ago: activity 50, recency (30 - 16.5) / 27 = 50.
    factories.ActivityEventFactory.create_batch(
        10, member=member, occurred_at=now - timedelta(days=16, hours=12)
    )

    refresh_member_health_scores(member_ids=[member.pk], now=now)

    score = HealthScore.objects.get(member=member)
    assert score.components["activity"]["score"] == 50
    assert score.components["recency"]["score"] == 50
    assert score.score == 50
    assert score.band == "yellow"


def test_refresh_scores_ignores_events_outside_window_and_inactive_kinds(db):
    member = factories.MemberFactory()
    _events(member, 20, days_ago=31)
    _events(member, 20, days_ago=0, kind="lifecycle.health_band_changed")

    refresh_member_health_scores(member_ids=[member.pk])

    assert HealthScore.objects.get(member=member).score == 0


def test_refresh_on_the_same_day_writes_no_snapshot(db):
    member = factories.MemberFactory()

    refresh_member_health_scores(member_ids=[member.pk])
    _events(member, 20, days_ago=0)
    refresh_member_health_scores(member_ids=[member.pk])

    assert not HealthScoreSnapshot.objects.filter(member=member).exists()


def test_new_day_stores_closing_snapshot(db):
    member = factories.MemberFactory()
    morning = (timezone.now() - timedelta(days=1)).replace(hour=9, minute=0)
    factories.ActivityEventFactory.create_batch(
        20, member=member, occurred_at=morning + timedelta(hours=1)
    )

    refresh_member_health_scores(member_ids=[member.pk], now=morning)
    assert HealthScore.objects.get(member=member).score == 0
    refresh_member_health_scores(
        member_ids=[member.pk], now=morning.replace(hour=23, minute=59)
    )
    refresh_member_health_scores(member_ids=[member.pk])
    refresh_member_health_scores(member_ids=[member.pk])

    snapshots = list(HealthScoreSnapshot.objects.filter(member=member))
    assert [(s.day, s.score, s.band) for s in snapshots] == [
        (morning.date(), 100, "green")
    ]


def test_refresh_updates_a_score_without_index_writes(db):
    """A refresh that keeps the band is a heap-only (HOT) update.

    Every refresh changes computed_at, so an index on it, or on any other
    column a refresh always changes, would make each update write an entry
    in every index of the table.
    """
    member = factories.MemberFactory()
    refresh_member_health_scores(member_ids=[member.pk])
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_stat_get_xact_tuples_updated(%(t)s::regclass),"
            " pg_stat_get_xact_tuples_hot_updated(%(t)s::regclass)",
            {"t": HealthScore._meta.db_table},
        )
        before = cursor.fetchone()
        refresh_member_health_scores(member_ids=[member.pk])
        cursor.execute(
            "SELECT pg_stat_get_xact_tuples_updated(%(t)s::regclass),"
            " pg_stat_get_xact_tuples_hot_updated(%(t)s::regclass)",
            {"t": HealthScore._meta.db_table},
        )
        after = cursor.fetchone()

    assert (after[0] - before[0], after[1] - before[1]) == (1, 1)


@pytest.mark.parametrize(
    ("member_ids", "message"),
    [
        (["abc"], "invalid member id 'abc'"),
        ([None], "invalid member id None"),
        ([True], "invalid member id True"),
        ([0], "invalid member id 0"),
        ([2**63], f"invalid member id {2**63}"),
    ],
)
def test_refresh_rejects_bad_ids(db, member_ids, message):
    with pytest.raises(ValueError, match=message):
        refresh_member_health_scores(member_ids=member_ids)

    assert not HealthScore.objects.exists()


@pytest.mark.parametrize(
    "now", [timezone.now().date(), timezone.now().replace(tzinfo=None), "today"]
)
def test_refresh_rejects_bad_now(db, now):
    member = factories.MemberFactory()

    with pytest.raises(ValueError, match="pass a timezone-aware datetime"):
        refresh_member_health_scores(member_ids=[member.pk], now=now)


def test_refresh_scores_records_band_change_event(db):
    member = factories.MemberFactory()
    refresh_member_health_scores(member_ids=[member.pk])
    _events(member, 20, days_ago=0)

    refresh_member_health_scores(member_ids=[member.pk])

    change = ActivityEvent.objects.get(kind="lifecycle.health_band_changed")
    assert change.member_id == member.pk
    assert change.properties == {"from": "red", "to": "green", "score": 100}


def test_refresh_scores_same_band_records_no_event(db):
    member = factories.MemberFactory()

    refresh_member_health_scores(member_ids=[member.pk])
    refresh_member_health_scores(member_ids=[member.pk])

    assert not ActivityEvent.objects.filter(
        kind="lifecycle.health_band_changed"
    ).exists()


def test_refresh_scores_query_count_does_not_grow_with_members(
    db, django_assert_num_queries
):
    few = [m.pk for m in factories.MemberFactory.create_batch(2)]
    many = [m.pk for m in factories.MemberFactory.create_batch(30)]
    for pk in many:
        factories.ActivityEventFactory(member_id=pk)

    # A savepoint, the scorecard, the row lock, the scoring statement and the
    # savepoint's release.
    with django_assert_num_queries(5):
        refresh_member_health_scores(member_ids=few)
    with django_assert_num_queries(5):
        refresh_member_health_scores(member_ids=many)


def test_list_stale_member_ids_finds_unscored_and_newly_active(db):
    scored, fresh_events, unscored = factories.MemberFactory.create_batch(3)
    refresh_member_health_scores(member_ids=[scored.pk, fresh_events.pk])
    _events(fresh_events, 1, days_ago=0)

    stale = list_stale_member_ids()

    assert stale == sorted([fresh_events.pk, unscored.pk])


def test_list_stale_member_ids_finds_decayed_scores(db):
    member = factories.MemberFactory()
    refresh_member_health_scores(
        member_ids=[member.pk], now=timezone.now() - timedelta(days=2)
    )

    assert list_stale_member_ids() == [member.pk]


def test_rescore_stale_members_task_leaves_nothing_stale(db, eager_celery):
    factories.MemberFactory.create_batch(3)

    assert rescore_stale_members_task() == 3
    assert list_stale_member_ids() == []


def test_rescore_all_members_task_scores_everyone(db, eager_celery):
    factories.MemberFactory.create_batch(4)

    assert rescore_all_members_task() == 4
    assert HealthScore.objects.count() == 4
