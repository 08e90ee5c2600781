"""Event triggers: enrol the subjects of recorded events in matching plays.

Events reach `evaluate_event_triggers` in two ways. The beat task
`lifecycle.sweep_event_triggers` runs `sweep_event_triggers` every few
seconds: it reads the events recorded since its previous run, set-based, and
is the only path for events recorded through `record_activity`, which sends
no message. Batches from `ingest_events` and the scorer's band changes are
also handed over after commit in batches of ids (see `dispatch`), so they act
at once. An event evaluated twice enrols nobody twice: the enrolment's
uniqueness on (play, subject, occurrence) holds in the database.

A play matches an event when the play is active, its trigger listens to the
event's kind, and the event is new (`filter_new_events`): recorded at or
after the play's last activation, occurred no earlier than MAX_CLOCK_SKEW
before it, and occurred at most MAX_TRIGGER_EVENT_AGE before it was recorded.
Backfilled events and usage released late are recorded and scored but start
no play. The occurrence key is the event id, except for first-time triggers,
which use "first" so that the database constraint allows one enrolment per
subject ever.

Sign-in triggers count only sign-ins as a confirmed member. A sign-in
recorded while the member's sign-up email was unconfirmed carries the
UNCONFIRMED_SIGN_IN_PROPERTY (see apps.lifecycle.receivers), so it triggers
no play, whatever the trigger, and does not count as the member's first
sign-in. The check reads the event, not the member, because the member may
have confirmed by the time the sweep reads the event. A member who confirms
the address while signed in gets a sign-in recorded then.

Member band changes arrive as `lifecycle.health_band_changed` events and
trigger member-level plays. Account band changes record no event, so the
scorer's band-change hook hands them to `evaluate_account_band_change`,
which triggers account-level plays. Their occurrence key is the new band and
the time of the change.

Accepted solutions and course completions listen to fixed kinds that the
community and portal apps register when they record them. Until an app
registers the kind, no such event can be recorded (`record_activity` rejects
unknown kinds), so those plays wait without error. Admin warns about it.
"""

import logging
from datetime import datetime, timedelta

from django.core.cache import cache
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone

from apps.lifecycle import registry
from apps.lifecycle.horizon import read_commit_horizon
from apps.lifecycle.models import ActivityEvent, Play
from apps.lifecycle.models.events import MAX_CLOCK_SKEW
from apps.lifecycle.plays import dispatch
from apps.lifecycle.plays.audience import list_audience_accounts, list_audience_members
from apps.lifecycle.plays.services import Candidate, enrol_subjects
from apps.membership.selectors.sso import list_unconfirmed_sign_up_member_ids

logger = logging.getLogger(__name__)

Trigger = Play.Trigger

# Triggers whose kind is fixed; `event` and `feature_first_use` take the kind
# from the play's `trigger_event_kind`.
FIXED_TRIGGER_KINDS = {
    Trigger.FIRST_SIGN_IN: "membership.signed_in",
    Trigger.ACCEPTED_SOLUTION: "community.solution_accepted",
    Trigger.COURSE_COMPLETED: "portal.course_completed",
    Trigger.HEALTH_BAND_CHANGE: "lifecycle.health_band_changed",
}
CONFIGURED_KIND_TRIGGERS = (Trigger.EVENT, Trigger.FEATURE_FIRST_USE)
FIRST_TIME_TRIGGERS = (Trigger.FIRST_SIGN_IN, Trigger.FEATURE_FIRST_USE)
EVENT_TRIGGERS = (*CONFIGURED_KIND_TRIGGERS, *FIXED_TRIGGER_KINDS)
FIRST_OCCURRENCE_KEY = "first"
# Events that occurred longer than this before they were recorded trigger no
# play: a nudge about an action long past reads as a bug to the member. It
# leaves room for clients that queue usage while offline for a few hours.
MAX_TRIGGER_EVENT_AGE = timedelta(hours=24)
SIGN_IN_KIND = FIXED_TRIGGER_KINDS[Trigger.FIRST_SIGN_IN]
# Property set to true on a sign-in event recorded while the member's sign-up
# email was unconfirmed. Such a sign-in triggers no play.
UNCONFIRMED_SIGN_IN_PROPERTY = "email_unconfirmed"

# How far back the sweep looks when it does not know where its previous run
# stopped, after a cache flush for example. Events recorded earlier than that
# and never swept are not evaluated.
SWEEP_WINDOW = timedelta(minutes=30)
SWEEP_BATCH_SIZE = 1000
SWEPT_UNTIL_KEY = "lifecycle:plays:swept-until"


def get_trigger_kind(play: Play) -> str:
    """Return the event kind an event-triggered play listens to, or ""."""
    if play.trigger in CONFIGURED_KIND_TRIGGERS:
        return play.trigger_event_kind
    return FIXED_TRIGGER_KINDS.get(play.trigger, "")


def list_event_plays(kinds: set[str]):
    """Return the active plays whose trigger listens to any of these kinds."""
    fixed = [trigger for trigger, kind in FIXED_TRIGGER_KINDS.items() if kind in kinds]
    return Play.objects.filter(
        Q(trigger__in=CONFIGURED_KIND_TRIGGERS, trigger_event_kind__in=kinds)
        | Q(trigger__in=fixed),
        status=Play.Status.ACTIVE,
        activated_at__isnull=False,
    ).order_by("pk")


def filter_recent_events(events: QuerySet) -> QuerySet:
    """Keep the events that occurred at most MAX_TRIGGER_EVENT_AGE before recording."""
    return events.filter(occurred_at__gte=F("recorded_at") - MAX_TRIGGER_EVENT_AGE)


def filter_new_events(events: QuerySet, *, activated_at: datetime) -> QuerySet:
    """Keep the events new enough to trigger a play activated at `activated_at`.

    An event must be recent (`filter_recent_events`), recorded at or after
    the activation, and have occurred no earlier than MAX_CLOCK_SKEW before
    it, because a client's clock may lag the database's by that much.
    """
    return filter_recent_events(events).filter(
        recorded_at__gte=activated_at,
        occurred_at__gte=activated_at - MAX_CLOCK_SKEW,
    )


def _exclude_unconfirmed_sign_ins(events: QuerySet) -> QuerySet:
    return events.exclude(
        kind=SIGN_IN_KIND,
        properties__contains={UNCONFIRMED_SIGN_IN_PROPERTY: True},
    )


def _exclude_earlier_firsts(play: Play, events: QuerySet) -> QuerySet:
    """Drop the events that are not their subject's first of their kind.

    For an account-level play the first is the first by any member of the
    account. Ties on `occurred_at` go to the lower id. Earlier events count
    whatever their age, so a backfilled first use blocks later ones.
    """
    is_account_level = play.subject_level == Play.SubjectLevel.ACCOUNT
    subject_field = "account_id" if is_account_level else "member_id"
    earlier = ActivityEvent.objects.filter(
        Q(occurred_at__lt=OuterRef("occurred_at"))
        | Q(occurred_at=OuterRef("occurred_at"), pk__lt=OuterRef("pk")),
        **{subject_field: OuterRef(subject_field)},
        kind=OuterRef("kind"),
    )
    return events.exclude(Exists(_exclude_unconfirmed_sign_ins(earlier)))


def _match_events(play: Play, event_ids: list[int]) -> list[ActivityEvent]:
    is_account_level = play.subject_level == Play.SubjectLevel.ACCOUNT
    if play.trigger == Trigger.HEALTH_BAND_CHANGE and is_account_level:
        # Account-level band plays follow the account's own band instead.
        return []
    events = filter_new_events(
        ActivityEvent.objects.filter(pk__in=event_ids, kind=get_trigger_kind(play)),
        activated_at=play.activated_at,
    )
    if play.trigger == Trigger.HEALTH_BAND_CHANGE and play.trigger_band:
        events = events.filter(properties__to=play.trigger_band)
    events = _exclude_unconfirmed_sign_ins(events)
    if play.trigger in FIRST_TIME_TRIGGERS:
        events = _exclude_earlier_firsts(play, events)
    matching = list(events.order_by("pk").only("pk", "member_id", "account_id"))

    if play.trigger == Trigger.FIRST_SIGN_IN and matching:
        # Sign-ins recorded by earlier versions of the hub lack the property,
        # so a member whose sign-up is still unconfirmed now is left out too.
        unconfirmed = list_unconfirmed_sign_up_member_ids(
            member_ids={e.member_id for e in matching}
        )
        matching = [e for e in matching if e.member_id not in unconfirmed]
    return matching


def _occurrence_key(play: Play, event: ActivityEvent) -> str:
    if play.trigger in FIRST_TIME_TRIGGERS:
        return FIRST_OCCURRENCE_KEY
    return str(event.pk)


def _list_event_candidates(play: Play, events: list[ActivityEvent]) -> list[Candidate]:
    if play.subject_level == Play.SubjectLevel.ACCOUNT:
        account_ids = {e.account_id for e in events if e.account_id is not None}
        allowed = set(
            list_audience_accounts(play)
            .filter(pk__in=account_ids)
            .values_list("pk", flat=True)
        )
        return [
            Candidate(occurrence_key=_occurrence_key(play, e), account_id=e.account_id)
            for e in events
            if e.account_id in allowed
        ]

    member_accounts = dict(
        list_audience_members(play)
        .filter(pk__in={e.member_id for e in events})
        .values_list("pk", "account_id")
    )
    return [
        Candidate(
            occurrence_key=_occurrence_key(play, e),
            member_id=e.member_id,
            account_id=member_accounts[e.member_id],
        )
        for e in events
        if e.member_id in member_accounts
    ]


def evaluate_event_triggers(
    *, event_ids: list[int], now: datetime | None = None
) -> int:
    """Enrol the subjects of these events in the active plays they trigger.

    Each play's enrolments commit on their own, so a later play's error
    never undoes them. Return the number of enrolments created, which is 0
    for events already evaluated.
    """
    kinds = set(
        ActivityEvent.objects.filter(pk__in=event_ids)
        .order_by()
        .values_list("kind", flat=True)
        .distinct()
    )
    if not kinds:
        return 0

    created = 0
    for play in list_event_plays(kinds):
        matching = _match_events(play, event_ids)
        candidates = _list_event_candidates(play, matching) if matching else []
        created += len(enrol_subjects(play=play, candidates=candidates, now=now))
    return created


def dispatch_account_band_change(change: registry.BandChange) -> None:
    """Evaluate account-level band plays after the scores commit.

    It is subscribed to the scorer's band-change hook. Member changes are
    ignored here, because their events reach the event triggers.
    """
    if change.level == Play.SubjectLevel.ACCOUNT:
        dispatch.evaluate_account_band_change_on_commit(
            account_id=change.subject_id, band=change.band, changed_at=change.changed_at
        )


def evaluate_account_band_change(
    *, account_id: int, band: str, changed_at: datetime, now: datetime | None = None
) -> int:
    """Enrol an account whose band changed in the account-level band plays.

    Return the number of enrolments created. Evaluating the same change
    again creates none.
    """
    plays = Play.objects.filter(
        Q(trigger_band="") | Q(trigger_band=band),
        status=Play.Status.ACTIVE,
        trigger=Trigger.HEALTH_BAND_CHANGE,
        subject_level=Play.SubjectLevel.ACCOUNT,
        activated_at__lte=changed_at,
    ).order_by("pk")
    occurrence_key = f"{band}:{changed_at.isoformat()}"

    created = 0
    for play in plays:
        if not list_audience_accounts(play).filter(pk=account_id).exists():
            continue
        candidate = Candidate(occurrence_key=occurrence_key, account_id=account_id)
        created += len(enrol_subjects(play=play, candidates=[candidate], now=now))
    return created


def sweep_event_triggers(*, now: datetime | None = None) -> int:
    """Evaluate the events recorded since the previous sweep, in batches.

    The sweep keeps in the cache the commit horizon it read before its
    listing (see apps.lifecycle.horizon). Every event recorded before that
    time was visible to the listing, so the next sweep starts there and
    misses no event whose transaction committed late. Events recorded after
    it may be evaluated twice, which enrols nobody twice. Without a stored
    position the sweep reads the last SWEEP_WINDOW. Only kinds that active
    plays listen to are read.
    """
    now = now or timezone.now()
    swept_until = cache.get(SWEPT_UNTIL_KEY) or now - SWEEP_WINDOW
    horizon = read_commit_horizon()
    plays = list(
        Play.objects.filter(
            status=Play.Status.ACTIVE,
            activated_at__isnull=False,
            trigger__in=EVENT_TRIGGERS,
        )
    )
    kinds = {get_trigger_kind(play) for play in plays} - {""}
    created = 0
    if kinds:
        since = max(swept_until, min(play.activated_at for play in plays))
        events = filter_recent_events(
            ActivityEvent.objects.filter(kind__in=kinds, recorded_at__gte=since)
        ).order_by("pk")
        last_id = 0
        while event_ids := list(
            events.filter(pk__gt=last_id).values_list("pk", flat=True)[
                :SWEEP_BATCH_SIZE
            ]
        ):
            created += evaluate_event_triggers(event_ids=event_ids, now=now)
            last_id = event_ids[-1]
    cache.set(SWEPT_UNTIL_KEY, horizon, timeout=None)

    if created:
        logger.info("event trigger sweep enrolled %d subject(s)", created)
    return created


def is_trigger_kind_registered(play: Play) -> bool:
    """Return whether the kind an event-triggered play listens to is registered."""
    kind = get_trigger_kind(play)
    return bool(kind) and registry.get_kind(kind) is not None
