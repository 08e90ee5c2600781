from datetime import UTC, date, datetime, timedelta

import pytest
from django.utils import timezone

from apps.lifecycle.models import Enrolment, Play
from apps.lifecycle.plays.schedules import (
    count_new_schedule_subjects,
    evaluate_play_schedule,
    evaluate_scheduled_triggers,
)
from apps.membership.models import Member
from tests import factories
from tests.plays.factories import PlayFactory

pytestmark = pytest.mark.django_db


def _utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def _enrolled(play) -> list[tuple[str, str]]:
    return list(
        Enrolment.objects.filter(play=play)
        .order_by("pk")
        .values_list("subject_key", "occurrence_key")
    )


def _account_play(trigger, days: int, **fields) -> Play:
    return PlayFactory(
        trigger=trigger,
        trigger_event_kind="",
        trigger_days=days,
        subject_level=Play.SubjectLevel.ACCOUNT,
        **fields,
    )


def _question(author, *, hours_ago: float, topic_id: int):
    return factories.ActivityEventFactory(
        member=author,
        kind="community.question_posted",
        subject_id=str(topic_id),
        occurred_at=timezone.now() - timedelta(hours=hours_ago),
    )


def _reply(author, *, topic_id: int, is_own_topic: bool = False):
    return factories.ActivityEventFactory(
        member=author,
        kind="community.reply_posted",
        properties={"topic_id": topic_id, "is_own_topic": is_own_topic},
    )


def _unanswered_play(**fields) -> Play:
    return PlayFactory(
        trigger=Play.Trigger.UNANSWERED_QUESTION,
        trigger_event_kind="",
        trigger_hours=4,
        **fields,
    )


def test_unanswered_question_enrols_author_once():
    play = _unanswered_play()
    author = factories.MemberFactory()
    _question(author, hours_ago=5, topic_id=41)

    first = evaluate_play_schedule(play=play)
    second = evaluate_play_schedule(play=play)

    assert first == 1
    assert second == 0
    assert _enrolled(play) == [(f"member:{author.pk}", "41")]


def test_unanswered_preview_counts_as_runner():
    draft = _unanswered_play(status=Play.Status.DRAFT, activated_at=None)
    paused = _unanswered_play(
        status=Play.Status.PAUSED, activated_at=timezone.now() - timedelta(hours=2)
    )
    active = _unanswered_play(activated_at=timezone.now() - timedelta(hours=2))
    _question(factories.MemberFactory(), hours_ago=5, topic_id=41)
    _question(factories.MemberFactory(), hours_ago=7, topic_id=42)
    now = timezone.now()

    # Topic 41's deadline passed an hour ago, after the activation; topic
    # 42's passed three hours ago, before it.
    assert count_new_schedule_subjects(play=draft, now=now) == 0
    assert count_new_schedule_subjects(play=paused, now=now) == 0
    assert count_new_schedule_subjects(play=active, now=now) == 1
    assert evaluate_play_schedule(play=active, now=now) == 1
    assert count_new_schedule_subjects(play=active, now=now) == 0


def test_unanswered_question_waits_for_deadline():
    play = _unanswered_play()
    _question(factories.MemberFactory(), hours_ago=3, topic_id=41)

    assert evaluate_play_schedule(play=play) == 0


def test_unanswered_question_answered_by_other_member_skipped():
    play = _unanswered_play()
    _question(factories.MemberFactory(), hours_ago=5, topic_id=41)
    _reply(factories.MemberFactory(), topic_id=41)

    assert evaluate_play_schedule(play=play) == 0


def test_unanswered_question_own_reply_still_unanswered():
    play = _unanswered_play()
    author = factories.MemberFactory()
    _question(author, hours_ago=5, topic_id=41)
    _reply(author, topic_id=41, is_own_topic=True)
    _reply(factories.MemberFactory(), topic_id=42)

    assert evaluate_play_schedule(play=play) == 1


def test_unanswered_question_deadline_before_activation_skipped():
    play = _unanswered_play(activated_at=timezone.now() - timedelta(hours=1))
    _question(factories.MemberFactory(), hours_ago=6, topic_id=41)

    assert evaluate_play_schedule(play=play) == 0


# Europe/Paris moves from UTC+1 to UTC+2 at 01:00 UTC on 2026-03-29;
# America/New_York moves from UTC-4 to UTC-5 at 06:00 UTC on 2026-11-01.
RENEWAL_CASES = [
    # The window opens at local midnight of 2026-03-29, 23:00 UTC the day
    # before (still UTC+1).
    ("Europe/Paris", date(2026, 4, 8), 10, _utc(2026, 3, 28, 22, 59), False),
    ("Europe/Paris", date(2026, 4, 8), 10, _utc(2026, 3, 28, 23, 0), True),
    # One day later the offset is UTC+2: local midnight is 22:00 UTC.
    ("Europe/Paris", date(2026, 4, 9), 10, _utc(2026, 3, 29, 21, 59), False),
    ("Europe/Paris", date(2026, 4, 9), 10, _utc(2026, 3, 29, 22, 0), True),
    # Local midnight of 2026-11-01 is still UTC-4: 04:00 UTC.
    ("America/New_York", date(2026, 11, 11), 10, _utc(2026, 11, 1, 3, 59), False),
    ("America/New_York", date(2026, 11, 11), 10, _utc(2026, 11, 1, 4, 0), True),
    # Local midnight of 2026-11-02 is UTC-5: 05:00 UTC.
    ("America/New_York", date(2026, 11, 12), 10, _utc(2026, 11, 2, 4, 59), False),
    ("America/New_York", date(2026, 11, 12), 10, _utc(2026, 11, 2, 5, 0), True),
    # The window closes after the renewal date, local time.
    ("America/New_York", date(2026, 11, 1), 10, _utc(2026, 11, 2, 4, 59), True),
    ("America/New_York", date(2026, 11, 1), 10, _utc(2026, 11, 2, 5, 0), False),
]


@pytest.mark.parametrize(
    ("time_zone", "renewal_date", "days", "now", "is_due"), RENEWAL_CASES
)
def test_renewal_window_opens_at_local_midnight(
    time_zone, renewal_date, days, now, is_due
):
    play = _account_play(Play.Trigger.RENEWAL_WINDOW, days)
    account = factories.AccountFactory(time_zone=time_zone, renewal_date=renewal_date)

    evaluate_play_schedule(play=play, now=now)

    expected = [(f"account:{account.pk}", renewal_date.isoformat())] if is_due else []
    assert _enrolled(play) == expected


def test_renewal_window_member_play_enrols_matching_members():
    play = PlayFactory(
        trigger=Play.Trigger.RENEWAL_WINDOW,
        trigger_event_kind="",
        trigger_days=30,
        audience_roles=[Member.Role.ADMIN],
    )
    account = factories.AccountFactory(
        time_zone="Europe/Paris", renewal_date=date(2026, 4, 20)
    )
    admin = factories.MemberFactory(account=account, role=Member.Role.ADMIN)
    factories.MemberFactory(account=account, role=Member.Role.MEMBER)

    evaluate_play_schedule(play=play, now=_utc(2026, 3, 29, 12))
    evaluate_play_schedule(play=play, now=_utc(2026, 3, 30, 12))

    assert _enrolled(play) == [(f"member:{admin.pk}", "2026-04-20")]
    assert Enrolment.objects.get(play=play).account == account


def _last_active(account, at: datetime, kind: str = "product.report_exported"):
    member = factories.MemberFactory(account=account)
    factories.ActivityEventFactory(member=member, kind=kind, occurred_at=at)


STAGNANT_CASES = [
    # Last activity 10:00 local (UTC+1) on 2026-03-20; ten days later,
    # 10:00 local is UTC+2, so the account is stagnant from 08:00 UTC.
    ("Europe/Paris", _utc(2026, 3, 20, 9), _utc(2026, 3, 30, 7, 59), None),
    ("Europe/Paris", _utc(2026, 3, 20, 9), _utc(2026, 3, 30, 8), "2026-03-30"),
    # Last activity 10:00 local (UTC-4) on 2026-10-25; ten days later,
    # 10:00 local is UTC-5, so the account is stagnant from 15:00 UTC.
    ("America/New_York", _utc(2026, 10, 25, 14), _utc(2026, 11, 4, 14, 59), None),
    ("America/New_York", _utc(2026, 10, 25, 14), _utc(2026, 11, 4, 15), "2026-11-04"),
]


@pytest.mark.parametrize(
    ("time_zone", "last_active", "now", "began_on"), STAGNANT_CASES
)
def test_stagnant_account_counts_local_days(time_zone, last_active, now, began_on):
    play = _account_play(Play.Trigger.STAGNANT_ACCOUNT, 10)
    account = factories.AccountFactory(time_zone=time_zone)
    _last_active(account, last_active)
    _last_active(account, last_active - timedelta(days=30))

    evaluate_play_schedule(play=play, now=now)

    expected = [(f"account:{account.pk}", began_on)] if began_on else []
    assert _enrolled(play) == expected


def test_stagnant_account_relapse_triggers_again():
    play = _account_play(Play.Trigger.STAGNANT_ACCOUNT, 10)
    account = factories.AccountFactory(time_zone="America/New_York")
    _last_active(account, _utc(2026, 10, 1, 14))
    evaluate_play_schedule(play=play, now=_utc(2026, 10, 20, 12))
    _last_active(account, _utc(2026, 10, 25, 14))

    evaluate_play_schedule(play=play, now=_utc(2026, 10, 30, 12))
    evaluate_play_schedule(play=play, now=_utc(2026, 11, 5, 12))

    assert _enrolled(play) == [
        (f"account:{account.pk}", "2026-10-11"),
        (f"account:{account.pk}", "2026-11-04"),
    ]


def test_stagnant_account_ignores_inactive_kinds():
    play = _account_play(Play.Trigger.STAGNANT_ACCOUNT, 10)
    account = factories.AccountFactory(time_zone="Europe/Paris")
    _last_active(account, _utc(2026, 3, 1, 9))
    _last_active(account, _utc(2026, 3, 20, 9), kind="lifecycle.health_band_changed")

    evaluate_play_schedule(play=play, now=_utc(2026, 3, 25, 12))

    assert _enrolled(play) == [(f"account:{account.pk}", "2026-03-11")]


def test_scheduled_triggers_skip_inactive_plays():
    active = _account_play(Play.Trigger.RENEWAL_WINDOW, 10)
    paused = _account_play(Play.Trigger.RENEWAL_WINDOW, 10, status=Play.Status.PAUSED)
    factories.AccountFactory(time_zone="UTC", renewal_date=date(2026, 4, 1))

    created = evaluate_scheduled_triggers(now=_utc(2026, 3, 25, 12))

    assert created == 1
    assert len(_enrolled(active)) == 1
    assert _enrolled(paused) == []


@pytest.mark.django_db(transaction=True)
def test_scheduled_triggers_survive_failing_play(caplog):
    # Admin rejects these day counts, but a row saved without the form makes
    # PostgreSQL raise "timestamp out of range" (stagnant) and Python's date
    # arithmetic raise OverflowError (renewal).
    stagnant = _account_play(Play.Trigger.STAGNANT_ACCOUNT, 2**31 - 1)
    renewal = _account_play(Play.Trigger.RENEWAL_WINDOW, 2**31 - 1)
    working = _account_play(Play.Trigger.RENEWAL_WINDOW, 10)
    factories.AccountFactory(time_zone="UTC", renewal_date=date(2026, 4, 1))

    created = evaluate_scheduled_triggers(now=_utc(2026, 3, 25, 12))

    assert created == 1
    assert len(_enrolled(working)) == 1
    assert _enrolled(stagnant) == []
    assert _enrolled(renewal) == []
    failures = [
        record.getMessage()
        for record in caplog.records
        if record.getMessage().startswith("play schedule evaluation failed")
    ]
    assert failures == [
        f"play schedule evaluation failed: play {stagnant.play_id}",
        f"play schedule evaluation failed: play {renewal.play_id}",
    ]
