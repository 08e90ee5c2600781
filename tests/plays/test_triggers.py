from datetime import timedelta

import pytest
from django.utils import timezone

from apps.lifecycle.ingestion.held import release_held_events
from apps.lifecycle.ingestion.ingest import ingest_segment_messages
from apps.lifecycle.ingestion.messages import expand_body
from apps.lifecycle.ingestion.sources import create_segment_source
from apps.lifecycle.models import ActivityEvent, Enrolment, HeldUsageEvent, Play
from apps.lifecycle.models.events import MAX_CLOCK_SKEW
from apps.lifecycle.plays.triggers import (
    MAX_TRIGGER_EVENT_AGE,
    dispatch_account_band_change,
    evaluate_account_band_change,
    evaluate_event_triggers,
    sweep_event_triggers,
)
from apps.lifecycle.registry import BandChange, list_band_change_handlers
from apps.lifecycle.scoring import refresh_member_health_scores
from apps.lifecycle.services import ingest_events, record_activity
from apps.lifecycle.tasks import (
    evaluate_account_band_change_task,
    evaluate_event_triggers_task,
)
from apps.membership.models import Member
from tests import factories
from tests.ingestion.helpers import track
from tests.plays.factories import PlayFactory, PlayStepFactory

pytestmark = pytest.mark.django_db


def _event(member, kind="product.report_exported", **fields):
    return factories.ActivityEventFactory(member=member, kind=kind, **fields)


def _enrolled(play) -> list[tuple[str, str]]:
    return list(
        Enrolment.objects.filter(play=play)
        .order_by("pk")
        .values_list("subject_key", "occurrence_key")
    )


def test_event_trigger_enrols_once_per_event():
    play = PlayFactory()
    member = factories.MemberFactory()
    events = [_event(member), _event(member)]
    event_ids = [e.pk for e in events]

    first = evaluate_event_triggers(event_ids=event_ids)
    second = evaluate_event_triggers(event_ids=event_ids)

    assert first == 2
    assert second == 0
    assert _enrolled(play) == [
        (f"member:{member.pk}", str(events[0].pk)),
        (f"member:{member.pk}", str(events[1].pk)),
    ]


def test_event_trigger_keeps_member_account_on_enrolment():
    play = PlayFactory()
    member = factories.MemberFactory()

    evaluate_event_triggers(event_ids=[_event(member).pk])

    enrolment = Enrolment.objects.get(play=play)
    assert enrolment.member == member
    assert enrolment.account == member.account
    assert enrolment.status == Enrolment.Status.ACTIVE
    assert enrolment.next_run_at is not None


@pytest.mark.parametrize(
    "play_fields",
    [
        {"status": Play.Status.DRAFT, "activated_at": None},
        {"status": Play.Status.PAUSED},
        {"trigger_event_kind": "product.dashboard_opened"},
    ],
    ids=["draft", "paused", "other-kind"],
)
def test_event_trigger_ignores_non_matching_play(play_fields):
    play = PlayFactory(**play_fields)

    created = evaluate_event_triggers(event_ids=[_event(factories.MemberFactory()).pk])

    assert created == 0
    assert _enrolled(play) == []


def test_event_trigger_ignores_events_before_activation():
    event = _event(factories.MemberFactory())
    play = PlayFactory(activated_at=timezone.now() + timedelta(seconds=1))

    created = evaluate_event_triggers(event_ids=[event.pk])

    assert created == 0
    assert _enrolled(play) == []


def test_event_trigger_ignores_event_occurred_before_activation():
    activated_at = timezone.now() - timedelta(hours=2)
    play = PlayFactory(activated_at=activated_at)
    member = factories.MemberFactory()
    event = _event(
        member, occurred_at=activated_at - MAX_CLOCK_SKEW - timedelta(seconds=1)
    )

    created = evaluate_event_triggers(event_ids=[event.pk])

    assert created == 0
    assert _enrolled(play) == []


def test_event_trigger_allows_clock_skew_at_activation():
    activated_at = timezone.now() - timedelta(hours=2)
    play = PlayFactory(activated_at=activated_at)
    member = factories.MemberFactory()
    event = _event(member, occurred_at=activated_at - MAX_CLOCK_SKEW)

    created = evaluate_event_triggers(event_ids=[event.pk])

    assert created == 1
    assert _enrolled(play) == [(f"member:{member.pk}", str(event.pk))]


def test_event_trigger_ignores_event_older_than_max_age():
    play = PlayFactory(activated_at=timezone.now() - timedelta(days=60))
    member = factories.MemberFactory()
    too_old = _event(
        member,
        occurred_at=timezone.now() - MAX_TRIGGER_EVENT_AGE - timedelta(seconds=1),
    )
    recent = _event(
        member,
        occurred_at=timezone.now() - MAX_TRIGGER_EVENT_AGE + timedelta(minutes=1),
    )

    created = evaluate_event_triggers(event_ids=[too_old.pk, recent.pk])

    assert created == 1
    assert _enrolled(play) == [(f"member:{member.pk}", str(recent.pk))]


def test_event_trigger_measures_age_from_recording():
    """An event recorded soon after it occurred may be evaluated much later."""
    play = PlayFactory(activated_at=timezone.now() - timedelta(days=60))
    member = factories.MemberFactory()
    two_days_ago = timezone.now() - timedelta(days=2)
    event = _event(member, occurred_at=two_days_ago, recorded_at=two_days_ago)

    created = evaluate_event_triggers(event_ids=[event.pk])

    assert created == 1
    assert _enrolled(play) == [(f"member:{member.pk}", str(event.pk))]


def test_backfilled_batch_recorded_but_triggers_nothing(
    django_capture_on_commit_callbacks,
):
    play = PlayFactory(activated_at=timezone.now() - timedelta(days=400))
    member = factories.MemberFactory()
    rows = [
        {
            "member_id": member.pk,
            "kind": "product.report_exported",
            "occurred_at": timezone.now() - timedelta(days=330),
            "idempotency_key": "backfill-1",
        }
    ]

    with django_capture_on_commit_callbacks(execute=True):
        ingest_events(rows=rows)

    event = ActivityEvent.objects.get(idempotency_key="backfill-1")
    assert event.member == member
    assert evaluate_event_triggers(event_ids=[event.pk]) == 0
    assert sweep_event_triggers() == 0
    assert _enrolled(play) == []


def test_released_held_usage_triggers_nothing():
    play = PlayFactory(activated_at=timezone.now() - timedelta(days=60))
    source, _write_key = create_segment_source(name="Product")
    weeks_ago = (timezone.now() - timedelta(weeks=3)).isoformat()
    body = {
        "batch": [
            track(f"m-{number}", user_id="u-9", timestamp=weeks_ago)
            for number in range(3)
        ]
    }
    received_at = timezone.now()
    messages = expand_body(body, message_type=None, received_at=received_at)
    ingest_segment_messages(source=source, messages=messages, received_at=received_at)
    assert HeldUsageEvent.objects.count() == 3
    member = factories.MemberFactory(external_id="u-9")

    released = release_held_events(member=member)

    event_ids = list(
        ActivityEvent.objects.filter(member=member).values_list("pk", flat=True)
    )
    assert released.recorded == 3
    assert len(event_ids) == 3
    assert evaluate_event_triggers(event_ids=event_ids) == 0
    assert sweep_event_triggers() == 0
    assert _enrolled(play) == []


def test_feature_first_use_ignores_backfilled_first_use():
    """The first use was long ago, so neither it nor a later use fires."""
    play = PlayFactory(
        trigger=Play.Trigger.FEATURE_FIRST_USE,
        activated_at=timezone.now() - timedelta(days=400),
    )
    member = factories.MemberFactory()
    backfilled = _event(member, occurred_at=timezone.now() - timedelta(days=330))
    later = _event(member)

    created = evaluate_event_triggers(event_ids=[backfilled.pk, later.pk])

    assert created == 0
    assert _enrolled(play) == []


@pytest.mark.parametrize(
    ("trigger", "kind", "properties"),
    [
        (Play.Trigger.ACCEPTED_SOLUTION, "community.solution_accepted", {}),
        (Play.Trigger.COURSE_COMPLETED, "portal.course_completed", {}),
        (
            Play.Trigger.HEALTH_BAND_CHANGE,
            "lifecycle.health_band_changed",
            {"from": "green", "to": "red"},
        ),
    ],
)
def test_fixed_kind_trigger_ignores_old_event(trigger, kind, properties):
    play = PlayFactory(
        trigger=trigger,
        trigger_event_kind="",
        activated_at=timezone.now() - timedelta(days=60),
    )
    member = factories.MemberFactory()
    old = _event(
        member,
        kind,
        occurred_at=timezone.now() - timedelta(days=3),
        properties=properties,
    )
    new = _event(member, kind, properties=properties)

    evaluate_event_triggers(event_ids=[old.pk, new.pk])

    assert _enrolled(play) == [(f"member:{member.pk}", str(new.pk))]


def test_event_trigger_applies_audience_filters():
    play = PlayFactory(
        audience_roles=[Member.Role.CHAMPION], audience_segments=["enterprise"]
    )
    enterprise = factories.AccountFactory(segment="enterprise")
    champion = factories.MemberFactory(account=enterprise, role=Member.Role.CHAMPION)
    plain = factories.MemberFactory(account=enterprise, role=Member.Role.MEMBER)
    smb_champion = factories.MemberFactory(
        account=factories.AccountFactory(segment="smb"), role=Member.Role.CHAMPION
    )
    events = [_event(m) for m in (champion, plain, smb_champion)]

    evaluate_event_triggers(event_ids=[e.pk for e in events])

    assert _enrolled(play) == [(f"member:{champion.pk}", str(events[0].pk))]


def test_event_trigger_skips_deactivated_anonymised_and_merged_members():
    play = PlayFactory()
    survivor = factories.MemberFactory()
    members = [
        factories.MemberFactory(deactivated_at=timezone.now()),
        factories.MemberFactory(anonymised_at=timezone.now()),
        factories.MemberFactory(merged_into=survivor),
    ]

    created = evaluate_event_triggers(event_ids=[_event(m).pk for m in members])

    assert created == 0
    assert _enrolled(play) == []


def test_first_sign_in_enrols_once():
    veteran = factories.MemberFactory()
    _event(
        veteran, "membership.signed_in", occurred_at=timezone.now() - timedelta(days=9)
    )
    newcomer = factories.MemberFactory()
    play = PlayFactory(trigger=Play.Trigger.FIRST_SIGN_IN, trigger_event_kind="")
    later_events = [
        _event(veteran, "membership.signed_in"),
        _event(newcomer, "membership.signed_in"),
    ]

    evaluate_event_triggers(event_ids=[e.pk for e in later_events])
    again = _event(newcomer, "membership.signed_in")
    evaluate_event_triggers(event_ids=[again.pk])

    assert _enrolled(play) == [(f"member:{newcomer.pk}", "first")]


def test_feature_first_use_enrols_once_for_many_uses():
    play = PlayFactory(trigger=Play.Trigger.FEATURE_FIRST_USE)
    member = factories.MemberFactory()
    now = timezone.now()
    events = [_event(member, occurred_at=now - timedelta(minutes=m)) for m in (3, 2, 1)]

    evaluate_event_triggers(event_ids=[e.pk for e in events])
    evaluate_event_triggers(event_ids=[_event(member).pk])

    assert _enrolled(play) == [(f"member:{member.pk}", "first")]


def test_band_change_trigger_matches_band_entered():
    play = PlayFactory(
        trigger=Play.Trigger.HEALTH_BAND_CHANGE,
        trigger_event_kind="",
        trigger_band="red",
    )
    to_red = factories.MemberFactory()
    to_green = factories.MemberFactory()
    kind = "lifecycle.health_band_changed"
    red = _event(to_red, kind, properties={"from": "yellow", "to": "red"})
    green = _event(to_green, kind, properties={"from": "yellow", "to": "green"})

    evaluate_event_triggers(event_ids=[red.pk, green.pk])

    assert _enrolled(play) == [(f"member:{to_red.pk}", str(red.pk))]


@pytest.mark.parametrize(
    ("trigger", "kind"),
    [
        (Play.Trigger.ACCEPTED_SOLUTION, "community.solution_accepted"),
        (Play.Trigger.COURSE_COMPLETED, "portal.course_completed"),
    ],
)
def test_fixed_kind_trigger_matches_its_kind(trigger, kind):
    play = PlayFactory(trigger=trigger, trigger_event_kind="")
    member = factories.MemberFactory()
    event = _event(member, kind)

    evaluate_event_triggers(event_ids=[event.pk, _event(member).pk])

    assert _enrolled(play) == [(f"member:{member.pk}", str(event.pk))]


def test_account_level_event_play_enrols_account():
    play = PlayFactory(
        subject_level=Play.SubjectLevel.ACCOUNT, audience_cs_tiers=["pooled"]
    )
    account = factories.AccountFactory(cs_tier="pooled")
    member = factories.MemberFactory(account=account)
    high_touch = factories.MemberFactory(
        account=factories.AccountFactory(cs_tier="high_touch")
    )
    events = [_event(member), _event(high_touch)]

    evaluate_event_triggers(event_ids=[e.pk for e in events])

    enrolment = Enrolment.objects.get(play=play)
    assert enrolment.subject_key == f"account:{account.pk}"
    assert enrolment.member is None
    assert enrolment.account == account


def test_sweep_enrols_recent_events_written_without_dispatch():
    play = PlayFactory(
        trigger=Play.Trigger.HEALTH_BAND_CHANGE, trigger_event_kind="", trigger_band=""
    )
    member = factories.MemberFactory()
    kind = "lifecycle.health_band_changed"
    # Written like the scorer writes band changes: a bulk insert, no dispatch.
    # The second was recorded before the sweep window.
    recent, _ = ActivityEvent.objects.bulk_create(
        [
            ActivityEvent(
                member=member,
                account=member.account,
                kind=kind,
                occurred_at=timezone.now(),
                properties={"from": "green", "to": "yellow"},
            ),
            ActivityEvent(
                member=member,
                account=member.account,
                kind=kind,
                occurred_at=timezone.now() - timedelta(hours=2),
                recorded_at=timezone.now() - timedelta(hours=2),
                properties={"from": "yellow", "to": "green"},
            ),
        ]
    )

    first = sweep_event_triggers()
    second = sweep_event_triggers()

    assert first == 1
    assert second == 0
    assert _enrolled(play) == [(f"member:{member.pk}", str(recent.pk))]


def test_sweep_enrols_band_change_the_scorer_recorded():
    play = PlayFactory(
        trigger=Play.Trigger.HEALTH_BAND_CHANGE,
        trigger_event_kind="",
        trigger_band="green",
    )
    member = factories.MemberFactory()
    refresh_member_health_scores(member_ids=[member.pk])
    for _ in range(20):
        _event(member, occurred_at=timezone.now())

    refresh_member_health_scores(member_ids=[member.pk])

    # The refresh sends no message: the sweep finds its band change event.
    change = ActivityEvent.objects.get(kind="lifecycle.health_band_changed")
    assert change.properties["to"] == "green"
    assert _enrolled(play) == []
    assert sweep_event_triggers() == 1
    assert _enrolled(play) == [(f"member:{member.pk}", str(change.pk))]


def test_sweep_enrols_event_recorded_now_that_occurred_long_ago():
    play = PlayFactory()
    member = factories.MemberFactory()
    event = record_activity(
        member=member,
        kind="product.report_exported",
        occurred_at=timezone.now() - timedelta(hours=6),
    )

    assert sweep_event_triggers() == 1
    assert sweep_event_triggers() == 0
    assert _enrolled(play) == [(f"member:{member.pk}", str(event.pk))]


def test_sweep_starts_where_the_previous_sweep_stopped():
    play = PlayFactory()
    member = factories.MemberFactory()
    _event(member)
    assert sweep_event_triggers() == 1
    # Recorded before the stored position but after the play's activation:
    # the previous sweep saw it, so this sweep does not read it.
    _event(member, recorded_at=timezone.now() - timedelta(minutes=5))
    later = _event(member)

    assert sweep_event_triggers() == 1
    assert (f"member:{member.pk}", str(later.pk)) in _enrolled(play)
    assert len(_enrolled(play)) == 2


def test_record_activity_sends_no_message(django_capture_on_commit_callbacks):
    PlayFactory()
    member = factories.MemberFactory()

    with django_capture_on_commit_callbacks() as callbacks:
        record_activity(member=member, kind="product.report_exported")

    assert callbacks == []


def test_ingest_events_dispatches_one_evaluation_per_batch(
    monkeypatch, django_capture_on_commit_callbacks
):
    sent = []
    monkeypatch.setattr(
        evaluate_event_triggers_task, "delay", lambda **kwargs: sent.append(kwargs)
    )
    members = [factories.MemberFactory() for _ in range(3)]
    rows = [
        {
            "member_id": member.pk,
            "kind": "product.report_exported",
            "occurred_at": timezone.now(),
            "idempotency_key": key,
        }
        for member, key in zip(members, ["a", "b", None], strict=True)
    ]

    with django_capture_on_commit_callbacks(execute=True):
        ingest_events(rows=rows)

    event_ids = sorted(ActivityEvent.objects.values_list("pk", flat=True))
    assert sent == [{"event_ids": event_ids}]
    assert len(event_ids) == 3


def _account_band_play(**fields) -> Play:
    return PlayFactory(
        trigger=Play.Trigger.HEALTH_BAND_CHANGE,
        trigger_event_kind="",
        subject_level=Play.SubjectLevel.ACCOUNT,
        **fields,
    )


def test_account_band_change_enrols_account_in_matching_plays():
    red_play = _account_band_play(trigger_band="red")
    green_play = _account_band_play(trigger_band="green")
    account = factories.AccountFactory()
    changed_at = timezone.now()

    first = evaluate_account_band_change(
        account_id=account.pk, band="red", changed_at=changed_at
    )
    second = evaluate_account_band_change(
        account_id=account.pk, band="red", changed_at=changed_at
    )

    assert (first, second) == (1, 0)
    assert _enrolled(red_play) == [
        (f"account:{account.pk}", f"red:{changed_at.isoformat()}")
    ]
    assert _enrolled(green_play) == []


def test_account_band_play_ignores_member_band_events():
    play = _account_band_play(trigger_band="")
    member = factories.MemberFactory()
    event = _event(member, "lifecycle.health_band_changed", properties={"to": "red"})

    evaluate_event_triggers(event_ids=[event.pk])

    assert _enrolled(play) == []


def test_account_band_change_hook_dispatches_after_commit(
    monkeypatch, django_capture_on_commit_callbacks
):
    sent = []
    monkeypatch.setattr(
        evaluate_account_band_change_task, "delay", lambda **kwargs: sent.append(kwargs)
    )
    changed_at = timezone.now()
    changes = [
        BandChange(
            level=level,
            subject_id=7,
            account_id=7,
            previous_band="green",
            band="red",
            score=20,
            changed_at=changed_at,
        )
        for level in ("member", "account")
    ]

    with django_capture_on_commit_callbacks(execute=True):
        for change in changes:
            dispatch_account_band_change(change)

    assert dispatch_account_band_change in list_band_change_handlers()
    assert sent == [
        {"account_id": 7, "band": "red", "changed_at": changed_at.isoformat()}
    ]


def test_activation_uses_database_clock(monkeypatch, admin_user):
    from apps.lifecycle.plays import services as play_services
    from apps.lifecycle.plays.services import activate_play

    play = PlayFactory(status=Play.Status.DRAFT, activated_at=None)
    PlayStepFactory(play=play, position=1)
    # An app server whose clock runs a minute ahead of the database's.
    ahead = timezone.now() + timedelta(minutes=1)
    monkeypatch.setattr(play_services.timezone, "now", lambda: ahead)

    activate_play(play=play, actor=admin_user)
    event = _event(factories.MemberFactory())
    created = evaluate_event_triggers(event_ids=[event.pk])

    play.refresh_from_db()
    assert play.activated_at < ahead
    assert play.activated_at <= event.recorded_at
    assert created == 1
