"""Write enrolments and change the status of plays and enrolments."""

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from apps.lifecycle.horizon import read_database_now
from apps.lifecycle.models import Enrolment, Play
from apps.lifecycle.plays import dispatch
from apps.lifecycle.plays.audience import (
    account_subject_key,
    is_held_out,
    member_subject_key,
)
from apps.membership.models import AuditEntry
from rm6.errors import DomainError

logger = logging.getLogger(__name__)

INSERT_BATCH_SIZE = 1000


@dataclass(frozen=True)
class Candidate:
    """A subject that a trigger selected, for one occurrence of the trigger.

    A member-level candidate has a member id and the member's account id,
    which the enrolment keeps for reporting. An account-level candidate has
    only an account id.
    """

    occurrence_key: str
    member_id: int | None = None
    account_id: int | None = None

    @property
    def subject_key(self) -> str:
        if self.member_id is not None:
            return member_subject_key(self.member_id)
        return account_subject_key(self.account_id)


_INSERT_SQL = """
INSERT INTO {table} (
    play_id, member_id, account_id, subject_key, occurrence_key, status,
    is_holdout, next_position, next_run_at, enrolled_at, finished_at, last_error
)
VALUES {rows}
ON CONFLICT ON CONSTRAINT enrolment_once_per_occurrence DO NOTHING
RETURNING id, is_holdout
"""


def _insert_enrolments(
    *, play: Play, candidates: list[Candidate], now: datetime
) -> list[tuple[int, bool]]:
    """Insert enrolments that do not exist yet; return (id, is_holdout) of each."""
    rows = []
    params: list = []
    for candidate in candidates:
        subject_key = candidate.subject_key
        is_holdout = is_held_out(play=play, subject_key=subject_key)
        status = Enrolment.Status.HELD_OUT if is_holdout else Enrolment.Status.ACTIVE
        rows.append("(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)")
        params += [
            play.pk,
            candidate.member_id,
            candidate.account_id,
            subject_key,
            candidate.occurrence_key,
            status,
            is_holdout,
            # The runner starts at the lowest step position at or above this.
            0,
            None if is_holdout else now,
            now,
            now if is_holdout else None,
            "",
        ]
    sql = _INSERT_SQL.format(table=Enrolment._meta.db_table, rows=", ".join(rows))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


@transaction.atomic
def enrol_subjects(
    *, play: Play, candidates: Iterable[Candidate], now: datetime | None = None
) -> list[int]:
    """Enrol each candidate once per occurrence; return the new enrolments' ids.

    The insert skips a (play, subject, occurrence) that already has an
    enrolment (INSERT ... ON CONFLICT DO NOTHING), so a retried task, a
    second beat or two workers evaluating the same event enrol once. An
    insert that meets another transaction's uncommitted row for the same key
    waits for that transaction to end, then skips the row if it committed.
    Held-out subjects get a finished enrolment that runs no steps. The others
    are handed to the runner after commit.
    """
    now = now or timezone.now()
    unique = {(c.subject_key, c.occurrence_key): c for c in candidates}
    pending = list(unique.values())

    created: list[int] = []
    to_run: list[int] = []
    for start in range(0, len(pending), INSERT_BATCH_SIZE):
        batch = pending[start : start + INSERT_BATCH_SIZE]
        for enrolment_id, is_holdout in _insert_enrolments(
            play=play, candidates=batch, now=now
        ):
            created.append(enrolment_id)
            if not is_holdout:
                to_run.append(enrolment_id)

    if created:
        logger.info("play %s enrolled %d subject(s)", play.play_id, len(created))
    dispatch.run_enrolments_on_commit(to_run)
    return created


@transaction.atomic
def activate_play(*, play: Play, actor, now: datetime | None = None) -> Play:
    """Start a draft or paused play; it enrols from triggers seen from now on.

    `activated_at` is reset on each activation, so events recorded while a
    play was paused never enrol anyone when it resumes. It comes from the
    database's clock, as events' `recorded_at` does, unless `now` is given.
    """
    play = Play.objects.select_for_update().get(pk=play.pk)
    if play.status == Play.Status.ACTIVE:
        return play
    if not play.steps.exists():
        raise DomainError(
            f"Play {play.play_id!r} has no steps; add at least one step, "
            "then activate it.",
            code="no_steps",
        )

    play.status = Play.Status.ACTIVE
    play.activated_at = now or read_database_now()
    play.save(update_fields=["status", "activated_at", "updated_at"])

    AuditEntry.objects.create(
        actor=actor, action="play.activated", details={"play_id": play.play_id}
    )
    logger.info("play %s activated", play.play_id)
    return play


@transaction.atomic
def pause_play(*, play: Play, actor) -> Play:
    """Pause a play: no new enrolments, and running ones stop until it resumes."""
    play = Play.objects.select_for_update().get(pk=play.pk)
    if play.status != Play.Status.ACTIVE:
        return play

    play.status = Play.Status.PAUSED
    play.save(update_fields=["status", "updated_at"])

    AuditEntry.objects.create(
        actor=actor, action="play.paused", details={"play_id": play.play_id}
    )
    logger.info("play %s paused", play.play_id)
    return play


@transaction.atomic
def retry_enrolment(*, enrolment: Enrolment, now: datetime | None = None) -> bool:
    """Make a failed enrolment due again; return False if it had not failed.

    The runner then runs the failed step again (its step run keeps its row
    and counts one more attempt); steps that finished are never repeated.
    """
    enrolment = Enrolment.objects.select_for_update().get(pk=enrolment.pk)
    if enrolment.status != Enrolment.Status.FAILED:
        return False

    enrolment.status = Enrolment.Status.ACTIVE
    enrolment.next_run_at = now or timezone.now()
    enrolment.finished_at = None
    enrolment.last_error = ""
    enrolment.save(update_fields=["status", "next_run_at", "finished_at", "last_error"])

    dispatch.run_enrolments_on_commit([enrolment.pk])
    return True
