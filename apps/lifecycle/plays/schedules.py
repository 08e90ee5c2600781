"""Schedule triggers: unanswered questions, stagnant accounts, renewal windows.

A beat task evaluates every active play with one of these triggers. Each
evaluation may select the same subject again, and the enrolment constraint
on (play, subject, occurrence) keeps it to one enrolment per occurrence.

Day counts for accounts are calendar days in the account's time zone, so a
window opens at local midnight and "N days after" keeps the local wall-clock
time across a daylight-saving change. PostgreSQL's time zone database does
the conversion.

A member-level play with an account trigger (stagnant account, renewal
window) enrols the matching members of each selected account.
"""

import logging
from collections.abc import Iterator
from datetime import date, datetime, timedelta

from django.db import InterfaceError, OperationalError, connection
from django.db.models import (
    DateField,
    DateTimeField,
    Exists,
    ExpressionWrapper,
    F,
    Func,
    OuterRef,
    Value,
)
from django.db.models.fields.json import KT
from django.db.models.functions import Cast
from django.utils import timezone

from apps.lifecycle import registry
from apps.lifecycle.models import ActivityEvent, Enrolment, Play
from apps.lifecycle.plays.audience import list_audience_accounts, list_audience_members
from apps.lifecycle.plays.services import Candidate, enrol_subjects
from apps.membership.models import Account

logger = logging.getLogger(__name__)

Trigger = Play.Trigger

SCHEDULE_TRIGGERS = (
    Trigger.UNANSWERED_QUESTION,
    Trigger.STAGNANT_ACCOUNT,
    Trigger.RENEWAL_WINDOW,
)
QUESTION_KIND = "community.question_posted"
REPLY_KIND = "community.reply_posted"
# Questions whose N-hour deadline passed longer ago than this are not
# evaluated any more. It bounds each run's reads and still covers a beat
# outage of a few days.
UNANSWERED_LOOKBACK = timedelta(days=3)
ACCOUNT_BATCH_SIZE = 1000


def list_unanswered_questions(
    *, hours: int, now: datetime, deadline_since: datetime
) -> list[tuple[int, int | None, str]]:
    """Return (author id, account id, topic id) of questions left unanswered.

    A question is unanswered when its N-hour deadline passed between
    `deadline_since` and `now` and no other member has replied to its topic
    up to now. A reply that came after the deadline also counts, so a nudge
    never goes out for a question that has an answer by then. Questions and
    replies are read from events only: question events carry the topic id
    as their subject id, reply events carry it as `properties.topic_id`.
    """
    # NOTE: the reply lookup filters on properties->>'topic_id' after the
    # (kind, occurred_at) index. An expression index on that key for reply
    # events would keep it fast on a large event table.
    replies = (
        ActivityEvent.objects.annotate(topic_id=KT("properties__topic_id"))
        .filter(
            kind=REPLY_KIND,
            topic_id=OuterRef("subject_id"),
            occurred_at__gte=OuterRef("occurred_at"),
        )
        .exclude(member_id=OuterRef("member_id"))
    )
    window = timedelta(hours=hours)
    questions = (
        ActivityEvent.objects.filter(
            kind=QUESTION_KIND,
            occurred_at__gte=deadline_since - window,
            occurred_at__lte=now - window,
        )
        .exclude(subject_id="")
        .exclude(Exists(replies))
        .order_by("occurred_at", "pk")
    )
    return list(questions.values_list("member_id", "account_id", "subject_id"))


_STAGNANT_SQL = """
WITH last_activity AS (
    SELECT a.id, a.time_zone,
           timezone(a.time_zone, coalesce(e.occurred_at, a.created_at))
               + make_interval(days => %(days)s) AS local_start
    FROM membership_account a
    LEFT JOIN LATERAL (
        SELECT occurred_at FROM lifecycle_activityevent
        WHERE account_id = a.id AND NOT (kind = ANY(%(inactive_kinds)s))
        ORDER BY occurred_at DESC
        LIMIT 1
    ) e ON true
    WHERE a.id > %(after_id)s
)
SELECT id, local_start::date
FROM last_activity
WHERE timezone(time_zone, local_start) <= %(now)s
ORDER BY id
LIMIT %(limit)s
"""


def list_stagnant_accounts(
    *, days: int, now: datetime, after_id: int = 0, limit: int = ACCOUNT_BATCH_SIZE
) -> list[tuple[int, date]]:
    """Return (account id, local date stagnation began), ascending by id.

    An account is stagnant once N calendar days, in its time zone, have
    passed since the last event of a kind that makes a member active, or
    since the account was created if it has none. The date is part of the
    occurrence key, so activity that ends a stagnation lets a later one
    trigger again. Accounts without members count too.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            _STAGNANT_SQL,
            {
                "days": days,
                "inactive_kinds": registry.list_inactive_kind_names(),
                "after_id": after_id,
                "now": now,
                "limit": limit,
            },
        )
        return cursor.fetchall()


def list_accounts_in_renewal_window(*, days: int, now: datetime):
    """Return accounts whose local date is within N days before their renewal.

    The window opens at local midnight, in the account's time zone, N days
    before the renewal date and closes after the renewal date itself.
    """
    local_today = Cast(
        Func(
            F("time_zone"),
            Value(now, output_field=DateTimeField()),
            function="timezone",
            output_field=DateTimeField(),
        ),
        output_field=DateField(),
    )
    window_opens_on = ExpressionWrapper(
        F("renewal_date") - timedelta(days=days), output_field=DateField()
    )
    return (
        Account.objects.filter(renewal_date__isnull=False)
        .annotate(local_today=local_today, window_opens_on=window_opens_on)
        .filter(
            window_opens_on__lte=F("local_today"),
            renewal_date__gte=F("local_today"),
        )
        .order_by("pk")
    )


def _iter_renewal_pages(*, days: int, now: datetime) -> Iterator[dict[int, str]]:
    accounts = list_accounts_in_renewal_window(days=days, now=now)
    last_id = 0
    while page := list(
        accounts.filter(pk__gt=last_id).values_list("pk", "renewal_date")[
            :ACCOUNT_BATCH_SIZE
        ]
    ):
        yield {pk: renewal_date.isoformat() for pk, renewal_date in page}
        last_id = page[-1][0]


def _iter_stagnant_pages(*, days: int, now: datetime) -> Iterator[dict[int, str]]:
    last_id = 0
    while page := list_stagnant_accounts(days=days, now=now, after_id=last_id):
        yield {pk: began_on.isoformat() for pk, began_on in page}
        last_id = page[-1][0]


def _list_account_candidates(
    play: Play, occurrences: dict[int, str]
) -> list[Candidate]:
    if play.subject_level == Play.SubjectLevel.ACCOUNT:
        account_ids = list_audience_accounts(play).filter(pk__in=occurrences.keys())
        return [
            Candidate(occurrence_key=occurrences[pk], account_id=pk)
            for pk in account_ids.values_list("pk", flat=True)
        ]
    members = list_audience_members(play).filter(account_id__in=occurrences.keys())
    return [
        Candidate(
            occurrence_key=occurrences[account_id],
            member_id=member_id,
            account_id=account_id,
        )
        for member_id, account_id in members.values_list("pk", "account_id")
    ]


def _list_question_candidates(
    play: Play, questions: list[tuple[int, int | None, str]]
) -> list[Candidate]:
    if play.subject_level == Play.SubjectLevel.ACCOUNT:
        allowed = set(
            list_audience_accounts(play)
            .filter(pk__in={account_id for _, account_id, _ in questions})
            .values_list("pk", flat=True)
        )
        return [
            Candidate(occurrence_key=topic_id, account_id=account_id)
            for _, account_id, topic_id in questions
            if account_id in allowed
        ]
    allowed = set(
        list_audience_members(play)
        .filter(pk__in={member_id for member_id, _, _ in questions})
        .values_list("pk", flat=True)
    )
    return [
        Candidate(occurrence_key=topic_id, member_id=member_id, account_id=account_id)
        for member_id, account_id, topic_id in questions
        if member_id in allowed
    ]


def iter_schedule_candidates(
    *, play: Play, now: datetime, since: datetime | None = None
) -> Iterator[list[Candidate]]:
    """Yield, in bounded batches, the subjects a schedule trigger selects now.

    `since` is the earliest unanswered-question deadline considered. It
    defaults to the later of the play's activation and the lookback window.
    """
    if play.trigger == Trigger.UNANSWERED_QUESTION:
        if since is None:
            since = now - UNANSWERED_LOOKBACK
            if play.activated_at is not None and play.activated_at > since:
                since = play.activated_at
        questions = list_unanswered_questions(
            hours=play.trigger_hours or 0, now=now, deadline_since=since
        )
        yield _list_question_candidates(play, questions)
        return

    if play.trigger == Trigger.STAGNANT_ACCOUNT:
        pages = _iter_stagnant_pages(days=play.trigger_days or 0, now=now)
    elif play.trigger == Trigger.RENEWAL_WINDOW:
        pages = _iter_renewal_pages(days=play.trigger_days or 0, now=now)
    else:
        return
    for occurrences in pages:
        yield _list_account_candidates(play, occurrences)


def evaluate_play_schedule(*, play: Play, now: datetime | None = None) -> int:
    """Enrol the subjects a play's schedule trigger selects now; return the count.

    Each batch commits on its own, so a run that stops part way keeps its
    progress. The next run skips what is already enrolled.
    """
    now = now or timezone.now()
    created = 0
    for candidates in iter_schedule_candidates(play=play, now=now):
        created += len(enrol_subjects(play=play, candidates=candidates, now=now))
    return created


def evaluate_scheduled_triggers(*, now: datetime | None = None) -> int:
    """Evaluate every active play with a schedule trigger; return enrolments made.

    A play whose evaluation fails is logged and skipped, so the other plays
    still run. A transient database error is raised instead, because the
    connection may be unusable.
    """
    now = now or timezone.now()
    plays = Play.objects.filter(
        status=Play.Status.ACTIVE,
        activated_at__isnull=False,
        trigger__in=SCHEDULE_TRIGGERS,
    ).order_by("pk")
    created = 0
    for play in plays:
        try:
            created += evaluate_play_schedule(play=play, now=now)
        except (OperationalError, InterfaceError):
            raise
        except Exception:
            logger.exception("play schedule evaluation failed: play %s", play.play_id)
    return created


def count_new_schedule_subjects(*, play: Play, now: datetime) -> int:
    """Count the subjects the schedule trigger would enrol now, if it were active.

    Subjects already enrolled for the same occurrence are not counted. An
    unanswered-question play counts as the runner does: only questions whose
    deadline passed after its activation. Activating a play that is not active
    sets its activation to now, so for it no question counts yet.
    """
    is_active = play.status == Play.Status.ACTIVE and play.activated_at is not None
    since = None if is_active else now
    total = 0
    for candidates in iter_schedule_candidates(play=play, now=now, since=since):
        keys = {(c.subject_key, c.occurrence_key) for c in candidates}
        enrolled = set(
            Enrolment.objects.filter(
                play=play, subject_key__in={subject for subject, _ in keys}
            ).values_list("subject_key", "occurrence_key")
        )
        total += len(keys - enrolled)
    return total
