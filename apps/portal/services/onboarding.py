"""Onboarding progress: manual ticks, set-based sync from events, path completion.

Steps done by an event or by a visit are never completed by a handler on
each recorded event, because `record_activity` must stay cheap. Instead
the sync functions below turn events into progress rows with one
INSERT ... SELECT per call: `sync_member_progress` when a member opens their
home or path page, `sync_progress_since_last_run` every minute for the events
recorded since the previous run, and `sync_member_range_progress` over every
range of member ids every night. Each
call then writes the path completions it made possible and records
`portal.onboarding_path_completed` once per member and path, which the
database's unique constraint guarantees even when two syncs run at once.
"""

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from apps.lifecycle.models import ActivityEvent
from apps.lifecycle.services import ingest_events, record_activity
from apps.membership.models import Account, Member
from apps.portal.models import (
    OnboardingPath,
    OnboardingProgress,
    OnboardingStep,
    PathCompletion,
)
from apps.portal.selectors.onboarding import (
    VISIT_KINDS,
    build_path_applies_sql,
    path_applies,
)
from rm6.errors import DomainError

logger = logging.getLogger(__name__)

PATH_COMPLETED_KIND = "portal.onboarding_path_completed"
STEP_DONE_KIND = "portal.onboarding_step_done"
STEP_UNDONE_KIND = "portal.onboarding_step_undone"

# recorded_at is set when a row is inserted, which can be this long before
# its transaction commits and the row becomes visible to the next sync, so
# each incremental sync reads this far back past the previous one.
RECORDING_MARGIN = timedelta(minutes=10)
# Without a stored cursor (first run, cache flushed) the incremental sync
# reads this far back; the nightly full sync covers anything older.
FIRST_SYNC_WINDOW = timedelta(hours=25)
CURSOR_KEY = "portal:onboarding:synced-until"
BATCH_SIZE = 5000

_PROGRESS = OnboardingProgress._meta.db_table
_STEPS = OnboardingStep._meta.db_table
_PATHS = OnboardingPath._meta.db_table
_COMPLETIONS = PathCompletion._meta.db_table
_EVENTS = ActivityEvent._meta.db_table
_MEMBERS = Member._meta.db_table
_ACCOUNTS = Account._meta.db_table


def _progress_from_events_sql(event_filter: str) -> str:
    # One branch per completion mode: an OR inside one join would stop
    # PostgreSQL from using the kind index for event steps.
    steps_of_applicable_paths = f"""
        FROM {_STEPS} s
        JOIN {_PATHS} p ON p.id = s.path_id
        JOIN {_EVENTS} e ON {{join}}
        JOIN {_MEMBERS} m ON m.id = e.member_id
        LEFT JOIN {_ACCOUNTS} a ON a.id = m.account_id
        WHERE s.is_published
          AND m.deactivated_at IS NULL
          AND {build_path_applies_sql()}
          AND ({event_filter})
          AND (%(step_ids)s::bigint[] IS NULL OR s.id = ANY(%(step_ids)s::bigint[]))
    """
    by_event = steps_of_applicable_paths.format(join="e.kind = s.completion_kind")
    by_visit = steps_of_applicable_paths.format(
        join="e.subject_type_id = s.target_type_id "
        "AND e.subject_id = s.target_id::text "
        "AND e.kind = ANY(%(visit_kinds)s::text[])"
    )
    return f"""
        INSERT INTO {_PROGRESS} (member_id, step_id, completed_at, how, recorded_at)
        SELECT member_id, step_id, min(occurred_at), how, %(now)s
        FROM (
            SELECT e.member_id, s.id AS step_id, e.occurred_at, 'event' AS how
            {by_event} AND s.completion = 'event'
            UNION ALL
            SELECT e.member_id, s.id, e.occurred_at, 'visit'
            {by_visit} AND s.completion = 'visit'
        ) done
        GROUP BY member_id, step_id, how
        ON CONFLICT (member_id, step_id) DO NOTHING
        RETURNING member_id
    """


# Writes the completion of every applicable path whose published steps the
# member has all done, dated when the last of them was done. A path without
# published steps is never complete.
_COMPLETE_PATHS_SQL = f"""
    WITH applicable AS (
        SELECT m.id AS member_id, p.id AS path_id
        FROM {_MEMBERS} m
        LEFT JOIN {_ACCOUNTS} a ON a.id = m.account_id
        JOIN {_PATHS} p ON {build_path_applies_sql()}
        WHERE m.deactivated_at IS NULL
          AND ({{member_filter}})
    ),
    totals AS (
        SELECT ap.member_id, ap.path_id,
               count(s.id) AS steps,
               count(g.id) AS done,
               max(g.completed_at) AS last_done_at
        FROM applicable ap
        JOIN {_STEPS} s ON s.path_id = ap.path_id AND s.is_published
        LEFT JOIN {_PROGRESS} g ON g.step_id = s.id AND g.member_id = ap.member_id
        GROUP BY ap.member_id, ap.path_id
    )
    INSERT INTO {_COMPLETIONS} (member_id, path_id, completed_at)
    SELECT member_id, path_id, last_done_at FROM totals
    WHERE steps > 0 AND done = steps
    ON CONFLICT (member_id, path_id) DO NOTHING
    RETURNING member_id, path_id, completed_at
"""


@dataclass
class SyncResult:
    """The counts of progress rows and path completions one sync wrote."""

    steps_done: int = 0
    paths_completed: int = 0
    member_ids: set[int] = field(default_factory=set)

    def add(self, other: "SyncResult") -> None:
        self.steps_done += other.steps_done
        self.paths_completed += other.paths_completed
        self.member_ids |= other.member_ids


def _insert_progress(
    *, event_filter: str, params: dict, step_ids: list[int] | None, now: datetime
) -> list[int]:
    sql = _progress_from_events_sql(event_filter)
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            {
                **params,
                "now": now,
                "step_ids": step_ids,
                "visit_kinds": list(VISIT_KINDS),
            },
        )
        return [row[0] for row in cursor.fetchall()]


def _complete_paths(*, member_filter: str, params: dict) -> int:
    """Write the completions now due and record each one's event; return the count."""
    with connection.cursor() as cursor:
        cursor.execute(_COMPLETE_PATHS_SQL.format(member_filter=member_filter), params)
        completed = cursor.fetchall()
    if not completed:
        return 0

    slugs = dict(
        OnboardingPath.objects.filter(
            pk__in={path_id for _, path_id, _ in completed}
        ).values_list("pk", "slug")
    )
    # Only the transaction whose INSERT wrote a row gets it back from
    # RETURNING, so a concurrent sync cannot record it a second time. The
    # idempotency key also stops a retried task after a lost commit reply.
    # One batch insert, with one rescore task for all its members, keeps a
    # backfill that completes a path for thousands of members cheap.
    ingest_events(
        rows=[
            {
                "member_id": member_id,
                "kind": PATH_COMPLETED_KIND,
                "occurred_at": completed_at,
                "properties": {"path": slugs[path_id], "path_id": path_id},
                "idempotency_key": f"{PATH_COMPLETED_KIND}:{member_id}:{path_id}",
            }
            for member_id, path_id, completed_at in completed
        ]
    )
    logger.info("onboarding paths completed: %d", len(completed))
    return len(completed)


@transaction.atomic
def sync_member_progress(*, member: Member, now: datetime | None = None) -> SyncResult:
    """Complete the member's event and visit steps from all their events.

    Events recorded before a step existed count too, dated when they
    happened. Safe to call on every page view: with nothing new it inserts
    nothing, and it runs two statements whatever the member's history.
    """
    now = now or timezone.now()
    inserted = _insert_progress(
        event_filter="e.member_id = %(member_id)s",
        params={"member_id": member.pk},
        step_ids=None,
        now=now,
    )
    completed = _complete_paths(
        member_filter="m.id = %(member_id)s", params={"member_id": member.pk}
    )
    return SyncResult(
        steps_done=len(inserted), paths_completed=completed, member_ids={member.pk}
    )


@transaction.atomic
def sync_recent_progress(*, since: datetime, now: datetime | None = None) -> SyncResult:
    """Complete steps from the events recorded after `since`, for every member.

    Completion is checked for every member whose progress was recorded after
    `since`, not only for the rows this call wrote. Two syncs that each
    wrote one of a path's last two steps, and so saw the path unfinished,
    are followed by a run that sees both rows.
    """
    now = now or timezone.now()
    inserted = _insert_progress(
        event_filter="e.recorded_at > %(since)s",
        params={"since": since},
        step_ids=None,
        now=now,
    )
    completed = _complete_paths(
        member_filter=f"m.id IN (SELECT member_id FROM {_PROGRESS} "
        "WHERE recorded_at > %(since)s)",
        params={"since": since},
    )
    return SyncResult(
        steps_done=len(inserted),
        paths_completed=completed,
        member_ids=set(inserted),
    )


@transaction.atomic
def sync_member_range_progress(
    *,
    first_id: int,
    last_id: int,
    step_ids: list[int] | None = None,
    now: datetime | None = None,
) -> SyncResult:
    """Complete steps from all events of the members with ids in [first, last].

    With `step_ids`, only those steps are synced, for example a step that was
    just added or published; path completion is still checked for the range.
    """
    now = now or timezone.now()
    params = {"first_id": first_id, "last_id": last_id}
    inserted = _insert_progress(
        event_filter="e.member_id BETWEEN %(first_id)s AND %(last_id)s",
        params=params,
        step_ids=step_ids,
        now=now,
    )
    completed = _complete_paths(
        member_filter="m.id BETWEEN %(first_id)s AND %(last_id)s", params=params
    )
    return SyncResult(
        steps_done=len(inserted), paths_completed=completed, member_ids=set(inserted)
    )


def iter_member_id_ranges(*, batch_size: int = BATCH_SIZE) -> Iterator[tuple[int, int]]:
    """Yield (first_id, last_id) of consecutive batches of member ids."""
    after_id = 0
    while True:
        ids = list(
            Member.objects.filter(pk__gt=after_id)
            .order_by("pk")
            .values_list("pk", flat=True)[:batch_size]
        )
        if not ids:
            return
        yield ids[0], ids[-1]
        after_id = ids[-1]


def sync_all_progress(
    *, step_ids: list[int] | None = None, batch_size: int = BATCH_SIZE
) -> SyncResult:
    """Sync every member in batches of ids, each batch in its own transaction.

    The nightly pass does the same through one task per batch, to catch what
    the incremental sync cannot see: a role, segment or account change that
    makes a path apply, a path filter edited in admin, or a cursor lost with
    the cache.
    """
    total = SyncResult()
    for first_id, last_id in iter_member_id_ranges(batch_size=batch_size):
        total.add(
            sync_member_range_progress(
                first_id=first_id, last_id=last_id, step_ids=step_ids
            )
        )
    logger.info(
        "onboarding full sync finished: %d steps done, %d paths completed",
        total.steps_done,
        total.paths_completed,
    )
    return total


def sync_progress_since_last_run(*, now: datetime | None = None) -> SyncResult:
    """Sync the events recorded since the previous run, less RECORDING_MARGIN.

    The cursor lives in the cache. Overlapping runs are harmless, because
    every insert skips rows that exist.
    """
    now = now or timezone.now()
    previous = cache.get(CURSOR_KEY)
    since = (previous or now - FIRST_SYNC_WINDOW) - RECORDING_MARGIN
    result = sync_recent_progress(since=since, now=now)
    cache.set(CURSOR_KEY, now, timeout=None)
    return result


# Manual steps ----------------------------------------------------------------


def _check_manual_step(*, member: Member, step: OnboardingStep) -> None:
    if not step.is_published or not step.path.is_published:
        raise DomainError(
            f"Onboarding step {step.pk} is not published, so it cannot be "
            "marked; reload the path to see its current steps.",
            field="step",
            code="not_published",
        )
    if not path_applies(path=step.path, member=member):
        raise DomainError(
            f"The path {step.path.title!r} is not assigned to this member, so "
            "its steps cannot be marked.",
            field="step",
            code="not_assigned",
        )
    if step.completion != OnboardingStep.Completion.MANUAL:
        raise DomainError(
            f"The step {step.title!r} completes by itself "
            f"({step.get_completion_display().lower()}); only steps done by "
            "hand can be marked.",
            field="step",
            code="not_manual",
        )


@transaction.atomic
def mark_step_done(
    *, member: Member, step: OnboardingStep, now: datetime | None = None
) -> OnboardingProgress:
    """Tick a manual step for the member; ticking it again changes nothing.

    Completing the path's last step writes the path completion and records
    the value moment, in this transaction.
    """
    _check_manual_step(member=member, step=step)
    now = now or timezone.now()

    progress, created = OnboardingProgress.objects.get_or_create(
        member=member,
        step=step,
        defaults={
            "completed_at": now,
            "how": OnboardingStep.Completion.MANUAL,
            "recorded_at": now,
        },
    )
    if not created:
        return progress

    record_activity(
        member=member,
        kind=STEP_DONE_KIND,
        subject=step,
        occurred_at=now,
        properties={"path": step.path.slug},
    )
    _complete_paths(
        member_filter="m.id = %(member_id)s", params={"member_id": member.pk}
    )
    return progress


@transaction.atomic
def mark_step_undone(
    *, member: Member, step: OnboardingStep, now: datetime | None = None
) -> bool:
    """Untick a manual step; return whether it was ticked.

    A completed path stays completed: its value moment happened and
    time-to-value keeps that first time. Only manual steps can be unticked,
    because event and visit steps would be done again by the next sync.
    """
    _check_manual_step(member=member, step=step)

    deleted, _ = OnboardingProgress.objects.filter(member=member, step=step).delete()
    if not deleted:
        return False

    record_activity(
        member=member,
        kind=STEP_UNDONE_KIND,
        subject=step,
        occurred_at=now or timezone.now(),
        properties={"path": step.path.slug},
    )
    return True


# Admin edits -------------------------------------------------------------------


def schedule_step_backfill(*, step_ids: list[int]) -> None:
    """Queue, after commit, a sync of the steps for every member's past events."""
    from apps.portal.tasks.onboarding import backfill_onboarding_steps_task

    ids = sorted(set(step_ids))
    if not ids:
        return
    transaction.on_commit(lambda: backfill_onboarding_steps_task.delay(step_ids=ids))


def move_merged_member_progress(
    *, survivor: Member, duplicate: Member
) -> dict[str, int]:
    """Move the duplicate's onboarding progress and completions to the survivor.

    Rows the survivor has already (same step, same path) keep the survivor's
    own, and the duplicate's are deleted with it.
    """
    progress = OnboardingProgress.objects.filter(member=duplicate).exclude(
        step__in=OnboardingProgress.objects.filter(member=survivor).values("step")
    )
    moved_progress = progress.update(member=survivor)
    completions = PathCompletion.objects.filter(member=duplicate).exclude(
        path__in=PathCompletion.objects.filter(member=survivor).values("path")
    )
    moved_completions = completions.update(member=survivor)
    OnboardingProgress.objects.filter(member=duplicate).delete()
    PathCompletion.objects.filter(member=duplicate).delete()
    return {
        "onboarding_progress": moved_progress,
        "path_completions": moved_completions,
    }
