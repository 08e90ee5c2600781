import importlib
import logging
import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.apps import apps as django_apps
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from apps.lifecycle import registry
from apps.lifecycle.models import (
    AccountHealthScore,
    AccountHealthScoreSnapshot,
    ActivityEvent,
    HealthScore,
    Scorecard,
    ScorecardMeasure,
)
from apps.lifecycle.scoring import (
    DEFAULT_ACCOUNT_SCORECARD,
    DEFAULT_MEMBER_SCORECARD,
    MeasureSpec,
    describe_measure,
    get_scorecard_spec,
    list_stale_account_ids,
    list_stale_member_ids,
    refresh_account_health_scores,
    refresh_member_health_scores,
    refresh_stale_member_scores,
)
from apps.lifecycle.scoring import refresh as scoring_refresh
from apps.lifecycle.scoring.measures import (
    MAX_MEASURES,
    MAX_THRESHOLD,
    MIN_THRESHOLD_GAP,
)
from apps.lifecycle.tasks import (
    rescore_all_accounts_task,
    rescore_all_members_task,
    rescore_stale_accounts_task,
)
from rm6.celery import app as celery_app
from tests import factories

Kind = ScorecardMeasure.Kind
BAND_CHANGED = "lifecycle.health_band_changed"


@pytest.fixture
def eager_celery():
    """Run tasks sent with .delay() at once, in this process and transaction."""
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture
def clean_stale_checked():
    """Forget, after the test, when the stale listings last ran."""
    yield
    cache.delete_many(
        [
            scoring_refresh._checked_key("member"),
            scoring_refresh._checked_key("account"),
        ]
    )


@pytest.fixture
def clean_handlers(monkeypatch):
    """Let a test subscribe handlers without leaking them into other tests."""
    monkeypatch.setattr(registry, "_band_change_handlers", [])
    handlers = registry._handlers.copy()
    handlers[BAND_CHANGED] = []
    monkeypatch.setattr(registry, "_handlers", handlers)


def use_scorecard(level: str, *measures: dict) -> Scorecard:
    """Make a scorecard with these measures the active one of its level."""
    Scorecard.objects.filter(level=level, is_active=True).update(is_active=False)
    scorecard = Scorecard.objects.create(
        name=f"Test {level} scorecard", level=level, is_active=True
    )
    for position, fields in enumerate(measures):
        ScorecardMeasure.objects.create(
            scorecard=scorecard,
            position=position,
            **{"weight": 1, "window_days": 30, **fields},
        )
    return scorecard


def add_events(member, count, *, now, days_ago=1.0, kind="product.report_exported"):
    factories.ActivityEventFactory.create_batch(
        count,
        member=member,
        kind=kind,
        occurred_at=now - timedelta(days=days_ago),
    )


def score_of(member, now) -> HealthScore:
    refresh_member_health_scores(member_ids=[member.pk], now=now)
    return HealthScore.objects.get(member=member)


def account_score_of(account, now) -> AccountHealthScore:
    refresh_account_health_scores(account_ids=[account.pk], now=now)
    return AccountHealthScore.objects.get(account=account)


# Member measures ------------------------------------------------------------


def test_event_count_named_kinds_and_families(db):
    use_scorecard(
        "member",
        {
            "kind": Kind.EVENT_COUNT,
            "label": "Replies and usage",
            "event_kinds": ["community.reply_posted", "product.*"],
            "window_days": 7,
            "zero_at": 0,
            "full_at": 10,
        },
    )
    member = factories.MemberFactory()
    now = timezone.now()
    add_events(member, 3, now=now, kind="community.reply_posted")
    add_events(member, 2, now=now, kind="product.dashboard_viewed")
    add_events(member, 1, now=now, kind="membership.signed_in")
    add_events(member, 4, now=now, days_ago=8, kind="community.reply_posted")

    score = score_of(member, now)

    assert score.components == {
        "replies_and_usage": {
            "label": "Replies and usage",
            "kind": "event_count",
            "value": 5,
            "score": 50,
            "weight": 1.0,
            "position": 0,
        }
    }
    assert score.score == 50
    assert score.band == "yellow"


def test_event_count_without_kinds_skips_inactive_kinds(db):
    use_scorecard(
        "member", {"kind": Kind.EVENT_COUNT, "label": "All", "zero_at": 0, "full_at": 4}
    )
    member = factories.MemberFactory()
    now = timezone.now()
    add_events(member, 1, now=now, kind="membership.signed_in")
    add_events(member, 2, now=now, kind=BAND_CHANGED)

    score = score_of(member, now)

    assert score.components["all"]["value"] == 1
    assert score.score == 25


def test_event_count_clamps_above_full_at(db):
    use_scorecard(
        "member", {"kind": Kind.EVENT_COUNT, "label": "A", "zero_at": 0, "full_at": 10}
    )
    member = factories.MemberFactory()
    now = timezone.now()
    add_events(member, 15, now=now)

    score = score_of(member, now)

    assert score.components["a"]["value"] == 15
    assert score.components["a"]["score"] == 100
    assert score.score == 100


def test_event_count_clamps_below_zero_at(db):
    use_scorecard(
        "member", {"kind": Kind.EVENT_COUNT, "label": "A", "zero_at": 5, "full_at": 10}
    )
    member = factories.MemberFactory()
    now = timezone.now()
    add_events(member, 2, now=now)

    score = score_of(member, now)

    assert score.components["a"]["score"] == 0
    assert score.score == 0


def test_threshold_bounds_score_without_overflow(db):
    use_scorecard(
        "member",
        {
            "kind": Kind.EVENT_COUNT,
            "label": "Wide",
            "zero_at": -MAX_THRESHOLD,
            "full_at": MAX_THRESHOLD,
        },
        {
            "kind": Kind.EVENT_COUNT,
            "label": "Narrow",
            "zero_at": 0,
            "full_at": MIN_THRESHOLD_GAP,
        },
    )
    member = factories.MemberFactory()
    now = timezone.now()
    add_events(member, 3, now=now)

    score = score_of(member, now)

    assert score.components["wide"]["score"] == 50
    assert score.components["narrow"]["score"] == 100
    assert score.score == 75


def test_scorecard_of_max_measures_scores(db):
    measures = [
        {"kind": Kind.EVENT_COUNT, "label": f"M{n}", "zero_at": 0, "full_at": 4}
        for n in range(MAX_MEASURES)
    ]
    use_scorecard("member", *measures)
    member = factories.MemberFactory()
    now = timezone.now()
    add_events(member, 2, now=now)

    score = score_of(member, now)

    assert len(score.components) == MAX_MEASURES
    assert score.components[f"m{MAX_MEASURES - 1}"]["score"] == 50
    assert score.score == 50


def test_days_since_activity_less_is_better(db):
    use_scorecard(
        "member",
        {
            "kind": Kind.DAYS_SINCE_ACTIVITY,
            "label": "Recency",
            "window_days": 10,
            "zero_at": 10,
            "full_at": 0,
        },
    )
    member = factories.MemberFactory()
    now = timezone.now()
    add_events(member, 1, now=now, days_ago=2.5)
    add_events(member, 1, now=now, days_ago=6)

    score = score_of(member, now)

    assert score.components["recency"]["value"] == 2.5
    assert score.components["recency"]["score"] == 75
    assert score.score == 75


def test_days_since_activity_none_in_window_counts_window(db):
    use_scorecard(
        "member",
        {
            "kind": Kind.DAYS_SINCE_ACTIVITY,
            "label": "Recency",
            "window_days": 10,
            "zero_at": 10,
            "full_at": 0,
        },
    )
    member = factories.MemberFactory()
    now = timezone.now()
    add_events(member, 1, now=now, days_ago=11)

    score = score_of(member, now)

    assert score.components["recency"]["value"] == 10
    assert score.score == 0


def test_days_since_activity_shorter_window_counts_window(db):
    """A recency window shorter than another measure's still scores 0 when idle."""
    use_scorecard(
        "member",
        {"kind": Kind.EVENT_COUNT, "label": "Activity", "zero_at": 0, "full_at": 20},
        {
            "kind": Kind.DAYS_SINCE_ACTIVITY,
            "label": "Recency",
            "window_days": 7,
            "zero_at": 7,
            "full_at": 1,
        },
    )
    member = factories.MemberFactory()
    now = timezone.now()
    add_events(member, 2, now=now, days_ago=17)

    score = score_of(member, now)

    assert score.components["activity"]["value"] == 2
    assert score.components["recency"]["value"] == 7
    assert score.components["recency"]["score"] == 0


def test_days_since_activity_other_kinds_only_counts_window(db):
    """Events that only another measure counts leave recency at the window."""
    use_scorecard(
        "member",
        {
            "kind": Kind.PRODUCT_USAGE,
            "label": "Usage",
            "event_kinds": ["product.report_exported"],
            "zero_at": 0,
            "full_at": 6,
        },
        {
            "kind": Kind.DAYS_SINCE_ACTIVITY,
            "label": "Recency",
            "event_kinds": ["membership.signed_in"],
            "window_days": 30,
            "zero_at": 30,
            "full_at": 0,
        },
    )
    member = factories.MemberFactory()
    now = timezone.now()
    add_events(member, 3, now=now, days_ago=0.5)

    score = score_of(member, now)

    assert score.components["usage"]["value"] == 3
    assert score.components["recency"]["value"] == 30
    assert score.components["recency"]["score"] == 0


def test_days_since_activity_event_ahead_counts_zero(db):
    """An event a client clock put slightly ahead counts as activity now."""
    use_scorecard(
        "member",
        {
            "kind": Kind.DAYS_SINCE_ACTIVITY,
            "label": "Recency",
            "window_days": 10,
            "zero_at": 10,
            "full_at": 0,
        },
    )
    member = factories.MemberFactory()
    now = timezone.now()
    factories.ActivityEventFactory(
        member=member,
        kind="product.report_exported",
        occurred_at=now + timedelta(minutes=2),
    )

    score = score_of(member, now)

    assert score.components["recency"]["value"] == 0
    assert score.components["recency"]["score"] == 100


def test_product_usage_counts_product_kinds_only(db):
    use_scorecard(
        "member",
        {"kind": Kind.PRODUCT_USAGE, "label": "Usage", "zero_at": 0, "full_at": 6},
    )
    member = factories.MemberFactory()
    now = timezone.now()
    add_events(member, 3, now=now, kind="product.report_exported")
    add_events(member, 2, now=now, kind="membership.signed_in")

    score = score_of(member, now)

    assert score.components["usage"]["value"] == 3
    assert score.score == 50


def test_weights_average_measures(db):
    use_scorecard(
        "member",
        {
            "kind": Kind.PRODUCT_USAGE,
            "label": "Usage",
            "weight": 3,
            "zero_at": 0,
            "full_at": 1,
        },
        {
            "kind": Kind.EVENT_COUNT,
            "label": "Replies",
            "event_kinds": ["community.reply_posted"],
            "weight": 1,
            "zero_at": 0,
            "full_at": 1,
        },
    )
    member = factories.MemberFactory()
    now = timezone.now()
    add_events(member, 1, now=now)

    score = score_of(member, now)

    assert score.components["usage"]["score"] == 100
    assert score.components["replies"]["score"] == 0
    assert score.score == 75


def test_score_rounds_half_away_from_zero(db):
    use_scorecard(
        "member",
        {"kind": Kind.PRODUCT_USAGE, "label": "Usage", "zero_at": 0, "full_at": 1},
        {
            "kind": Kind.EVENT_COUNT,
            "label": "Replies",
            "event_kinds": ["community.reply_posted"],
            "zero_at": 0,
            "full_at": 100,
        },
    )
    member = factories.MemberFactory()
    now = timezone.now()
    add_events(member, 1, now=now)
    add_events(member, 1, now=now, kind="community.reply_posted")

    score = score_of(member, now)

    # (100 + 1) / 2 = 50.5, which rounds to 51; rounding to even gives 50.
    assert score.score == 51


def test_onboarding_share_counts_published_steps_done(db):
    use_scorecard(
        "member",
        {
            "kind": Kind.ONBOARDING_SHARE,
            "label": "Onboarding",
            "zero_at": 0,
            "full_at": 100,
        },
    )
    for kind in ["community.question_posted", "community.reply_posted"]:
        factories.OnboardingStepFactory(completion_kind=kind)
    for kind in ["community.topic_viewed", "membership.signed_in"]:
        factories.OnboardingStepFactory(completion_kind=kind)
    factories.OnboardingStepFactory(
        completion_kind="product.report_exported", is_published=False
    )
    member = factories.MemberFactory()
    now = timezone.now()
    add_events(member, 2, now=now, days_ago=200, kind="community.question_posted")
    add_events(member, 1, now=now, kind="community.reply_posted")
    add_events(member, 1, now=now, kind="product.report_exported")

    score = score_of(member, now)

    assert score.components["onboarding"]["value"] == 50.0
    assert score.score == 50


def test_onboarding_share_without_published_steps_is_no_data(db):
    use_scorecard(
        "member",
        {
            "kind": Kind.ONBOARDING_SHARE,
            "label": "Onboarding",
            "zero_at": 0,
            "full_at": 100,
        },
        {"kind": Kind.PRODUCT_USAGE, "label": "Usage", "zero_at": 0, "full_at": 1},
    )
    member = factories.MemberFactory()
    now = timezone.now()
    add_events(member, 1, now=now)

    score = score_of(member, now)

    assert score.components["onboarding"]["value"] is None
    assert score.components["onboarding"]["score"] == 0
    assert score.score == 50


def test_measure_without_source_is_skipped_and_logged(db, caplog, monkeypatch):
    # The portal registers this source at start-up; the test removes it.
    monkeypatch.delitem(registry._measure_sources, "course_completions")
    use_scorecard(
        "member",
        {
            "kind": Kind.COURSE_COMPLETIONS,
            "label": "Courses",
            "zero_at": 0,
            "full_at": 3,
        },
        {"kind": Kind.PRODUCT_USAGE, "label": "Usage", "zero_at": 0, "full_at": 2},
    )
    member = factories.MemberFactory()
    now = timezone.now()
    add_events(member, 1, now=now)

    with caplog.at_level(logging.WARNING, logger="apps.lifecycle.scoring"):
        score = score_of(member, now)

    assert list(score.components) == ["usage"]
    assert score.score == 50
    assert "no source registered for kind course_completions" in caplog.text


def test_scorecard_with_only_unusable_measures_scores_nothing(db, caplog, monkeypatch):
    # The portal registers this source at start-up; the test removes it.
    monkeypatch.delitem(registry._measure_sources, "course_completions")
    use_scorecard(
        "member",
        {
            "kind": Kind.COURSE_COMPLETIONS,
            "label": "Courses",
            "zero_at": 0,
            "full_at": 3,
        },
    )
    member = factories.MemberFactory()

    with caplog.at_level(logging.ERROR, logger="apps.lifecycle.scoring"):
        scored = refresh_member_health_scores(member_ids=[member.pk])

    assert scored == 0
    assert not HealthScore.objects.exists()
    assert "has no measure that can be computed" in caplog.text


def test_label_with_sql_is_stored_as_text(db):
    label = "Usage'); DROP TABLE lifecycle_healthscore; --"
    use_scorecard(
        "member",
        {"kind": Kind.PRODUCT_USAGE, "label": label, "zero_at": 0, "full_at": 1},
    )
    member = factories.MemberFactory()

    score = score_of(member, timezone.now())

    assert score.components["usage_drop_table_lifecycle_healthscore"]["label"] == label


def test_scorecard_spec_without_active_scorecard_is_default(db):
    Scorecard.objects.update(is_active=False)

    assert get_scorecard_spec("member") == DEFAULT_MEMBER_SCORECARD
    assert get_scorecard_spec("account") == DEFAULT_ACCOUNT_SCORECARD


def test_default_scorecard_migration_matches_built_in_defaults(db):
    # Transactional tests flush the rows migrations created, so the data
    # migration's function is run again here on an empty table.
    migration = importlib.import_module(
        "apps.lifecycle.migrations.0003_default_scorecards"
    )
    Scorecard.objects.all().delete()
    migration.create_default_scorecards(django_apps, None)

    for level, default in [
        ("member", DEFAULT_MEMBER_SCORECARD),
        ("account", DEFAULT_ACCOUNT_SCORECARD),
    ]:
        spec = get_scorecard_spec(level)

        assert spec.name == default.name
        assert spec.scorecard_id is not None
        assert spec.measures == default.measures


def test_refresh_without_active_scorecard_uses_default(db):
    Scorecard.objects.update(is_active=False)
    member = factories.MemberFactory()
    now = timezone.now()
    add_events(member, 10, now=now, days_ago=16.5)

    score = score_of(member, now)

    assert set(score.components) == {"activity", "recency"}
    assert score.score == 50


# Account measures -----------------------------------------------------------


def test_active_member_share_excludes_deactivated_members(db):
    use_scorecard(
        "account",
        {
            "kind": Kind.ACTIVE_MEMBER_SHARE,
            "label": "Active members",
            "zero_at": 0,
            "full_at": 100,
        },
    )
    account = factories.AccountFactory()
    active = factories.MemberFactory.create_batch(2, account=account)
    factories.MemberFactory(account=account)
    deactivated = factories.MemberFactory(
        account=account, deactivated_at=timezone.now()
    )
    now = timezone.now()
    for member in [*active, deactivated]:
        add_events(member, 1, now=now)
    add_events(active[0], 1, now=now, kind=BAND_CHANGED)

    score = account_score_of(account, now)

    assert score.components["active_members"]["value"] == 66.7
    assert score.components["active_members"]["score"] == 67
    assert score.score == 67


def test_active_share_skips_inactive_and_old(db):
    use_scorecard(
        "account",
        {
            "kind": Kind.ACTIVE_MEMBER_SHARE,
            "label": "Active",
            "window_days": 7,
            "zero_at": 0,
            "full_at": 100,
        },
    )
    account = factories.AccountFactory()
    first, second = factories.MemberFactory.create_batch(2, account=account)
    now = timezone.now()
    add_events(first, 1, now=now, kind=BAND_CHANGED)
    add_events(second, 1, now=now, days_ago=8)

    score = account_score_of(account, now)

    assert score.components["active"]["value"] == 0
    assert score.score == 0


def test_account_without_members_scores_zero_on_active_share(db):
    use_scorecard(
        "account",
        {
            "kind": Kind.ACTIVE_MEMBER_SHARE,
            "label": "Active",
            "weight": 1,
            "zero_at": 0,
            "full_at": 100,
        },
        {
            "kind": Kind.DAYS_SINCE_ACTIVITY,
            "label": "Recency",
            "weight": 1,
            "zero_at": 30,
            "full_at": 30.0001,
        },
    )
    account = factories.AccountFactory()

    score = account_score_of(account, timezone.now())

    assert score.components["active"]["value"] is None
    assert score.components["active"]["score"] == 0
    assert score.components["recency"]["value"] == 30
    assert score.score == 0
    assert score.band == "red"


def test_account_event_measures_aggregate_members_events(db):
    use_scorecard(
        "account",
        {"kind": Kind.EVENT_COUNT, "label": "Activity", "zero_at": 0, "full_at": 10},
        {
            "kind": Kind.DAYS_SINCE_ACTIVITY,
            "label": "Recency",
            "zero_at": 30,
            "full_at": 0,
        },
    )
    account = factories.AccountFactory()
    first, second = factories.MemberFactory.create_batch(2, account=account)
    stranger = factories.MemberFactory()
    now = timezone.now()
    add_events(first, 2, now=now, days_ago=12)
    add_events(second, 2, now=now, days_ago=3)
    add_events(stranger, 5, now=now, days_ago=0.5)

    score = account_score_of(account, now)

    assert score.components["activity"]["value"] == 4
    assert score.components["recency"]["value"] == 3.0
    assert score.components["recency"]["score"] == 90
    # (40 + 90) / 2
    assert score.score == 65


def test_account_only_kind_on_member_scorecard_is_skipped(db):
    use_scorecard(
        "member",
        {
            "kind": Kind.ACTIVE_MEMBER_SHARE,
            "label": "Active",
            "zero_at": 0,
            "full_at": 100,
        },
        {"kind": Kind.PRODUCT_USAGE, "label": "Usage", "zero_at": 0, "full_at": 1},
    )
    member = factories.MemberFactory()
    now = timezone.now()
    add_events(member, 1, now=now)

    score = score_of(member, now)

    assert list(score.components) == ["usage"]
    assert score.score == 100


def test_account_snapshot_is_the_days_closing_score(db):
    account = factories.AccountFactory()
    now = timezone.now()

    refresh_account_health_scores(account_ids=[account.pk], now=now)
    refresh_account_health_scores(account_ids=[account.pk], now=now)
    refresh_account_health_scores(account_ids=[account.pk], now=now + timedelta(days=1))
    refresh_account_health_scores(account_ids=[account.pk], now=now + timedelta(days=2))

    days = list(
        AccountHealthScoreSnapshot.objects.filter(account=account).values_list(
            "day", flat=True
        )
    )
    assert days == [(now + timedelta(days=1)).date(), now.date()]


def test_member_snapshot_is_the_days_closing_score(db):
    member = factories.MemberFactory()
    now = timezone.now()

    refresh_member_health_scores(member_ids=[member.pk], now=now - timedelta(days=2))
    add_events(member, 20, now=now, days_ago=1)
    refresh_member_health_scores(member_ids=[member.pk], now=now - timedelta(days=1))
    refresh_member_health_scores(member_ids=[member.pk], now=now)

    snapshots = list(member.health_snapshots.values_list("day", "score"))
    assert snapshots == [
        ((now - timedelta(days=1)).date(), 100),
        ((now - timedelta(days=2)).date(), 0),
    ]


# Band changes -----------------------------------------------------------------


def test_member_band_change_handlers_once(db, clean_handlers):
    kind_calls = []
    change_calls = []
    registry.subscribe(BAND_CHANGED, kind_calls.append)
    registry.subscribe_band_change(change_calls.append)
    member = factories.MemberFactory()
    now = timezone.now()
    refresh_member_health_scores(member_ids=[member.pk], now=now)
    add_events(member, 20, now=now, days_ago=0)

    refresh_member_health_scores(member_ids=[member.pk], now=now)
    refresh_member_health_scores(member_ids=[member.pk], now=now)

    event = ActivityEvent.objects.get(kind=BAND_CHANGED)
    assert kind_calls == [event]
    assert change_calls == [
        registry.BandChange(
            level="member",
            subject_id=member.pk,
            account_id=member.account_id,
            previous_band="red",
            band="green",
            score=100,
            changed_at=now,
            event_id=event.pk,
        )
    ]


def test_first_score_is_no_band_change(db, clean_handlers):
    change_calls = []
    registry.subscribe_band_change(change_calls.append)
    member = factories.MemberFactory()
    add_events(member, 20, now=timezone.now(), days_ago=0)

    refresh_member_health_scores(member_ids=[member.pk])

    assert change_calls == []
    assert not ActivityEvent.objects.filter(kind=BAND_CHANGED).exists()


def test_account_band_change_calls_handlers_without_event(db, clean_handlers):
    change_calls = []
    registry.subscribe_band_change(change_calls.append)
    account = factories.AccountFactory()
    member = factories.MemberFactory(account=account)
    now = timezone.now()
    refresh_account_health_scores(account_ids=[account.pk], now=now)
    add_events(member, 200, now=now, days_ago=0)

    refresh_account_health_scores(account_ids=[account.pk], now=now)

    assert change_calls == [
        registry.BandChange(
            level="account",
            subject_id=account.pk,
            account_id=account.pk,
            previous_band="red",
            band="green",
            score=100,
            changed_at=now,
        )
    ]
    assert not ActivityEvent.objects.filter(kind=BAND_CHANGED).exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_refreshes_record_one_band_change():
    member = factories.MemberFactory()
    refresh_member_health_scores(member_ids=[member.pk])
    add_events(member, 20, now=timezone.now(), days_ago=0)
    first_scored = threading.Event()
    release_first = threading.Event()
    errors = []

    def first() -> None:
        try:
            with transaction.atomic():
                refresh_member_health_scores(member_ids=[member.pk])
                first_scored.set()
                release_first.wait(10)
        except Exception as exc:  # A thread cannot raise into the test.
            errors.append(exc)
        finally:
            connection.close()

    def second() -> None:
        try:
            first_scored.wait(10)
            refresh_member_health_scores(member_ids=[member.pk])
        except Exception as exc:  # A thread cannot raise into the test.
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    first_scored.wait(10)
    # Give the second refresh time to reach the row lock before the first
    # commits. It then reads the band the first stored, so the change is
    # reported once; without the lock it would compare with the old band.
    threading.Event().wait(0.5)
    release_first.set()
    for thread in threads:
        thread.join(20)

    assert errors == []
    assert ActivityEvent.objects.filter(kind=BAND_CHANGED).count() == 1


def test_refresh_keeps_later_score(db):
    member = factories.MemberFactory()
    now = timezone.now()
    refresh_member_health_scores(member_ids=[member.pk], now=now)
    add_events(member, 20, now=now, days_ago=2)

    assert (
        refresh_member_health_scores(
            member_ids=[member.pk], now=now - timedelta(days=1)
        )
        == 0
    )
    stored = HealthScore.objects.get(member=member)
    assert (stored.score, stored.computed_at) == (0, now)
    assert not member.health_snapshots.exists()
    assert not ActivityEvent.objects.filter(kind=BAND_CHANGED).exists()


def test_refresh_copies_replaced_score(db):
    member = factories.MemberFactory()
    refresh_member_health_scores(member_ids=[member.pk])
    add_events(member, 20, now=timezone.now(), days_ago=0)

    assert refresh_member_health_scores(member_ids=[member.pk]) == 1

    stored = HealthScore.objects.get(member=member)
    assert (stored.score, stored.band) == (100, "green")
    assert (stored.previous_score, stored.previous_band) == (0, "red")
    assert ActivityEvent.objects.filter(kind=BAND_CHANGED).count() == 1


# Staleness ------------------------------------------------------------------


def test_list_stale_member_ids_only_stale_members(db):
    scored, active, inactive_kind, decayed, unscored = (
        factories.MemberFactory.create_batch(5)
    )
    now = timezone.now()
    refresh_member_health_scores(
        member_ids=[scored.pk, active.pk, inactive_kind.pk], now=now
    )
    refresh_member_health_scores(member_ids=[decayed.pk], now=now - timedelta(days=2))
    add_events(active, 1, now=now, days_ago=5)
    add_events(inactive_kind, 1, now=now, kind=BAND_CHANGED)

    stale = list_stale_member_ids(now=now + timedelta(minutes=1))

    assert stale == [active.pk, decayed.pk, unscored.pk]


def test_stale_pass_reads_events_since_last_pass(db, clean_stale_checked):
    scored_at = timezone.now() - timedelta(hours=3)
    seen, fresh = factories.MemberFactory.create_batch(2)
    refresh_member_health_scores(member_ids=[seen.pk, fresh.pk], now=scored_at)
    # As if the refresh had run three hours ago.
    HealthScore.objects.update(events_read_until=scored_at)
    add_events(seen, 1, now=timezone.now())
    ActivityEvent.objects.filter(member=seen).update(
        recorded_at=timezone.now() - timedelta(hours=2)
    )
    add_events(fresh, 1, now=timezone.now())
    checked_at = timezone.now() - timedelta(hours=1)
    cache.set(scoring_refresh._checked_key("member"), checked_at)
    now = timezone.now()

    assert list_stale_member_ids(now=now) == [seen.pk, fresh.pk]

    assert refresh_stale_member_scores(now=now) == 1

    assert HealthScore.objects.get(member=fresh).computed_at == now
    assert HealthScore.objects.get(member=seen).computed_at == scored_at
    # The pass stores the commit horizon it read before listing, which
    # with no other transaction open is the database clock's time.
    stored = cache.get(scoring_refresh._checked_key("member"))
    assert now - timedelta(seconds=5) <= stored <= timezone.now()


def test_decay_look_runs_hourly(db):
    now = timezone.now()
    decayed = factories.MemberFactory()
    refresh_member_health_scores(member_ids=[decayed.pk], now=now - timedelta(days=2))
    cache.set(scoring_refresh._checked_key("member"), now - timedelta(minutes=1))
    cache.set(scoring_refresh._decay_checked_key("member"), now - timedelta(minutes=59))

    assert refresh_stale_member_scores(now=now) == 0
    assert list_stale_member_ids(now=now, include_decayed=False) == []

    later = now + timedelta(minutes=1)
    assert refresh_stale_member_scores(now=later) == 1
    assert HealthScore.objects.get(member=decayed).computed_at == later
    assert cache.get(scoring_refresh._decay_checked_key("member")) == later
    assert refresh_stale_member_scores(now=later) == 0


def test_decay_look_after_cache_flush(db):
    now = timezone.now()
    decayed = factories.MemberFactory()
    refresh_member_health_scores(member_ids=[decayed.pk], now=now - timedelta(days=2))

    assert refresh_stale_member_scores(now=now) == 1


def test_list_stale_member_ids_pages_by_id(db):
    members = factories.MemberFactory.create_batch(3)

    first_page = list_stale_member_ids(limit=2)
    second_page = list_stale_member_ids(after_id=first_page[-1], limit=2)

    assert first_page == [members[0].pk, members[1].pk]
    assert second_page == [members[2].pk]


def test_list_stale_account_ids_only_stale_accounts(db):
    quiet, active, decayed, unscored = factories.AccountFactory.create_batch(4)
    member = factories.MemberFactory(account=active)
    now = timezone.now()
    refresh_account_health_scores(account_ids=[quiet.pk, active.pk], now=now)
    refresh_account_health_scores(account_ids=[decayed.pk], now=now - timedelta(days=2))
    add_events(member, 1, now=now)

    stale = list_stale_account_ids(now=now + timedelta(minutes=1))

    assert stale == [active.pk, decayed.pk, unscored.pk]


def test_rescore_stale_accounts_task_leaves_nothing_stale(
    db, eager_celery, clean_stale_checked
):
    factories.AccountFactory.create_batch(3)

    refreshed = rescore_stale_accounts_task()

    assert refreshed == AccountHealthScore.objects.count() == 3
    assert list_stale_account_ids() == []


def test_rescore_all_members_message_per_batch(db, monkeypatch):
    members = factories.MemberFactory.create_batch(5)
    monkeypatch.setattr(scoring_refresh, "BATCH_SIZE", 2)
    messages = []
    monkeypatch.setattr(
        "apps.lifecycle.tasks.refresh_member_scores_task.delay",
        lambda **kwargs: messages.append(kwargs),
    )

    queued = rescore_all_members_task()

    ids = [m.pk for m in members]
    assert queued == 5
    assert messages == [
        {"member_ids": ids[:2]},
        {"member_ids": ids[2:4]},
        {"member_ids": ids[4:]},
    ]


def test_rescore_all_accounts_task_scores_every_account(db, eager_celery):
    accounts = factories.AccountFactory.create_batch(3)

    queued = rescore_all_accounts_task()

    assert queued == len(accounts)
    assert AccountHealthScore.objects.count() == len(accounts)


# Query counts -----------------------------------------------------------------


def _mixed_member_scorecard() -> None:
    factories.OnboardingStepFactory()
    use_scorecard(
        "member",
        {"kind": Kind.EVENT_COUNT, "label": "Activity", "zero_at": 0, "full_at": 5},
        {
            "kind": Kind.DAYS_SINCE_ACTIVITY,
            "label": "Recency",
            "window_days": 14,
            "zero_at": 14,
            "full_at": 1,
        },
        {
            "kind": Kind.ONBOARDING_SHARE,
            "label": "Onboarding",
            "zero_at": 0,
            "full_at": 100,
        },
    )


def test_member_batch_query_count_constant(db, django_assert_num_queries):
    _mixed_member_scorecard()
    few = factories.MemberFactory.create_batch(2)
    many = factories.MemberFactory.create_batch(30)
    now = timezone.now()
    refresh_member_health_scores(member_ids=[m.pk for m in few + many], now=now)
    for member in few + many:
        add_events(member, 20, now=now, days_ago=0)

    # Savepoint, scorecard, commit horizon, the scoring statement (which
    # also records the band change events) and the savepoint's release.
    with django_assert_num_queries(5):
        refresh_member_health_scores(member_ids=[m.pk for m in few], now=now)
    with django_assert_num_queries(5):
        refresh_member_health_scores(member_ids=[m.pk for m in many], now=now)


def test_account_batch_query_count_constant(db, django_assert_num_queries):
    few = factories.AccountFactory.create_batch(2)
    many = factories.AccountFactory.create_batch(30)
    now = timezone.now()
    for account in many:
        add_events(factories.MemberFactory(account=account), 3, now=now)

    with django_assert_num_queries(5):
        refresh_account_health_scores(account_ids=[a.pk for a in few], now=now)
    with django_assert_num_queries(5):
        refresh_account_health_scores(account_ids=[a.pk for a in many], now=now)


# Descriptions -----------------------------------------------------------------


def test_describe_measure_explains_scale_and_weight():
    text = describe_measure(
        DEFAULT_MEMBER_SCORECARD.measures[1], total_weight=Decimal("1.0")
    )

    assert text == (
        "Days since the last event of kinds that count as activity, looking "
        "back 30 days at most. 3 or less scores 100 and 30 or more scores 0, "
        "linear between. Weight 0.4 (40 % of the score)."
    )


@pytest.mark.parametrize(
    ("kind", "description"),
    [
        (Kind.COURSE_COMPLETIONS, "Counts courses completed in the last 14 days."),
        (
            Kind.OPEN_CASES,
            "Counts the support cases open now (new, open or waiting on the "
            "member). The window does not apply.",
        ),
        (
            Kind.ONBOARDING_SHARE,
            "Share (%) of the published onboarding steps done, ever. The "
            "window does not apply.",
        ),
    ],
)
def test_describe_measure_states_window_use(kind, description):
    measure = MeasureSpec(
        key="m",
        kind=kind,
        label="M",
        weight=Decimal(1),
        zero_at=0,
        full_at=5,
        window_days=14,
    )

    text = describe_measure(measure)

    assert text.startswith(description + " ")
