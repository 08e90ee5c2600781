"""Case deflection: attempts, the suggestions they showed, and their outcome.

An attempt starts when a member opens the new-case form (`start_attempt`).
It is deflected when the member opened at least one suggestion and filed no
case within DEFLECTION_WINDOW of the start, or said a suggestion solved the
problem. It is not deflected when a case was filed within the window, or
when the window passed without any suggestion opened. Until then it is
pending.

The window is half-open, [started_at, started_at + 24 h): a case filed at
23:59:59 counts against the attempt, one filed at exactly 24:00:00 does not,
and the classification task settles an attempt once 24:00:00 has passed.
A case filed within the window wins over "this solved my problem", since the
member still needed support.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from apps.lifecycle.attribution import current_attribution
from apps.lifecycle.services import record_activity
from apps.membership.models import Member
from apps.portal.models import Case, CaseAttempt, Suggestion
from apps.portal.selectors.suggestions import SuggestedAnswer

logger = logging.getLogger(__name__)

UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
DEFLECTION_WINDOW = timedelta(hours=24)


@transaction.atomic
def start_attempt(*, member: Member, attribution: dict | None = None) -> CaseAttempt:
    """Open a case attempt for a member who opened the new-case form.

    The attempt keeps the campaign and play ID of the visit, from
    `attribution` or else the running request's, and the account segment.
    """
    attribution = current_attribution() if attribution is None else attribution
    attempt = CaseAttempt.objects.create(
        member=member,
        started_at=timezone.now(),
        segment=member.account.segment if member.account_id else "",
        campaign_id=attribution.get("campaign_id", ""),
        play_id=attribution.get("play_id", ""),
        utm={k: attribution[k] for k in UTM_FIELDS if attribution.get(k)},
    )
    record_activity(
        member=member,
        kind="portal.case_form_opened",
        subject=attempt,
        attribution=attribution,
    )
    return attempt


def get_own_attempt(*, attempt_id: int | None, member: Member) -> CaseAttempt | None:
    """Return the member's attempt with that id, or None.

    A tampered form that names another member's attempt gets None, so its
    case is filed without an attempt and changes no one else's deflection.
    """
    if attempt_id is None:
        return None
    return CaseAttempt.objects.filter(pk=attempt_id, member_id=member.pk).first()


def attach_case(*, attempt_id: int | None, case: Case) -> CaseAttempt | None:
    """Tie a newly filed case to the attempt of the form it came from.

    Call it inside the transaction that files the case, which may have
    inserted the case with its attempt already. A case filed within the
    24-hour window makes the attempt not deflected. A case filed later, from
    a form left open that long, finds the attempt already settled by the
    window and leaves a deflected outcome as it is. An attempt of another
    member, or one that has another case, is left alone and None is
    returned, so a tampered form never rewrites another attempt.
    """
    if attempt_id is None:
        return None
    # Lock only the attempt: the case join is an outer join, whose nullable
    # side PostgreSQL refuses to lock.
    attempt = (
        CaseAttempt.objects.select_for_update(of=("self",))
        .filter(pk=attempt_id, member_id=case.member_id)
        .filter(Q(case__isnull=True) | Q(case=case))
        .first()
    )
    if attempt is None:
        return None
    now = timezone.now()
    filed_at = case.created_at or now
    if filed_at < attempt.started_at + DEFLECTION_WINDOW:
        attempt.outcome = CaseAttempt.Outcome.NOT_DEFLECTED
    else:
        attempt.outcome = _outcome_after_window(attempt)
    attempt.classified_at = now
    if case.topic_id and attempt.topic_id is None:
        attempt.topic_id = case.topic_id
    attempt.save(update_fields=["outcome", "classified_at", "topic"])
    if case.attempt_id != attempt.pk:
        case.attempt = attempt
        case.save(update_fields=["attempt"])
    return attempt


def _outcome_after_window(attempt: CaseAttempt) -> str:
    if attempt.solved_by_suggestion_at is not None:
        return CaseAttempt.Outcome.DEFLECTED
    if attempt.suggestions.filter(opened_at__isnull=False).exists():
        return CaseAttempt.Outcome.DEFLECTED
    return CaseAttempt.Outcome.NOT_DEFLECTED


def access_attempt(*, attempt_id, user) -> CaseAttempt | None:
    """Return the signed-in user's own attempt with that id, with its member.

    The id arrives from a hidden form field, so an id that is not a number or
    belongs to another member gives None, never someone else's attempt. One
    query fetches both, because the case form calls this on every pause in
    typing.
    """
    if not user.is_authenticated:
        return None
    try:
        attempt_id = int(attempt_id)
    except (TypeError, ValueError):
        return None
    return (
        CaseAttempt.objects.select_related("member")
        .filter(pk=attempt_id, member__user_id=user.pk)
        .first()
    )


# One statement records what was shown: it updates the attempt's last query,
# inserts the answers not shown before and returns every answer's row. The
# final SELECT reads the snapshot taken when the statement started, so it
# sees the rows shown earlier and, through the RETURNING, the new ones.
RECORD_SHOWN_SQL = """
WITH shown (article_id, topic_id, rank) AS (
    SELECT * FROM unnest(%(article_ids)s::bigint[], %(topic_ids)s::bigint[],
                         %(ranks)s::smallint[])
), last_query AS (
    UPDATE portal_caseattempt SET query = %(query)s
    WHERE id = %(attempt_id)s AND query IS DISTINCT FROM %(query)s
), inserted AS (
    INSERT INTO portal_suggestion
        (attempt_id, article_id, topic_id, query, rank, shown_at)
    SELECT %(attempt_id)s, article_id, topic_id, %(query)s, rank, %(now)s
    FROM shown
    ON CONFLICT DO NOTHING
    RETURNING id, attempt_id, article_id, topic_id, query, rank, shown_at,
              opened_at, helpful_at
)
SELECT * FROM inserted
UNION ALL
SELECT id, attempt_id, article_id, topic_id, query, rank, shown_at, opened_at,
       helpful_at
FROM portal_suggestion
WHERE attempt_id = %(attempt_id)s
  AND (article_id = ANY(%(article_ids)s::bigint[])
       OR topic_id = ANY(%(topic_ids)s::bigint[]))
"""


def record_suggestions_shown(
    *, attempt: CaseAttempt, query: str, answers: list[SuggestedAnswer]
) -> list[tuple[SuggestedAnswer, Suggestion]]:
    """Record the answers shown to the attempt; return each with its row, in order.

    Showing the same answer again during the attempt keeps its first row, so
    `shown_at`, `rank` and `query` describe the first time it appeared; the
    partial unique constraints make this hold under concurrent requests too.
    The case form calls this on every pause in typing, so the whole record is
    one SQL statement, atomic by itself, instead of a transaction of four.
    """
    query = query[:300]
    if not answers:
        if attempt.query != query:
            CaseAttempt.objects.filter(pk=attempt.pk).update(query=query)
            attempt.query = query
        return []

    params = {
        "attempt_id": attempt.pk,
        "query": query,
        "now": timezone.now(),
        "article_ids": [a.content_id if a.kind == "article" else None for a in answers],
        "topic_ids": [a.content_id if a.kind == "topic" else None for a in answers],
        "ranks": list(range(1, len(answers) + 1)),
    }
    rows = list(Suggestion.objects.raw(RECORD_SHOWN_SQL, params))
    attempt.query = query
    by_key = {_suggestion_key(row): row for row in rows}
    if any(answer.key not in by_key for answer in answers):
        # A concurrent request of the same attempt inserted the row after this
        # statement's snapshot; read it now that it is committed.
        rows = Suggestion.objects.filter(attempt=attempt).filter(
            Q(article_id__in=[a.content_id for a in answers if a.kind == "article"])
            | Q(topic_id__in=[a.content_id for a in answers if a.kind == "topic"])
        )
        by_key = {_suggestion_key(row): row for row in rows}
    return [(answer, by_key[answer.key]) for answer in answers if answer.key in by_key]


def _suggestion_key(row: Suggestion) -> tuple[str, int]:
    return ("article", row.article_id) if row.article_id else ("topic", row.topic_id)


def access_suggestion(*, suggestion_id, member: Member | None) -> Suggestion | None:
    """Return a suggestion shown to one of the member's attempts, or None."""
    if member is None:
        return None
    try:
        suggestion_id = int(suggestion_id)
    except (TypeError, ValueError):
        return None
    return (
        Suggestion.objects.select_related("attempt", "article", "topic")
        .filter(pk=suggestion_id, attempt__member=member)
        .first()
    )


def _properties(suggestion: Suggestion) -> dict:
    return {
        "attempt_id": suggestion.attempt_id,
        "content": "article" if suggestion.article_id else "topic",
        "content_id": suggestion.article_id or suggestion.topic_id,
        "rank": suggestion.rank,
    }


def _attempt_attribution(attempt: CaseAttempt) -> dict:
    # Events of a suggestion carry the campaign and play ID of the visit that
    # opened the form, even when the suggestion is opened in a later request.
    return {
        key: value
        for key, value in {
            "campaign_id": attempt.campaign_id,
            "play_id": attempt.play_id,
            **attempt.utm,
        }.items()
        if value
    }


@transaction.atomic
def open_suggestion(*, suggestion: Suggestion) -> Suggestion:
    """Stamp the first time the member opened a suggestion, and record it."""
    updated = Suggestion.objects.filter(
        pk=suggestion.pk, opened_at__isnull=True
    ).update(opened_at=timezone.now())
    if not updated:
        return suggestion
    suggestion.refresh_from_db(fields=["opened_at"])
    record_activity(
        member=suggestion.attempt.member,
        kind="portal.suggestion_opened",
        subject=suggestion.article or suggestion.topic,
        properties=_properties(suggestion),
        attribution=_attempt_attribution(suggestion.attempt),
    )
    return suggestion


@transaction.atomic
def mark_suggestion_solved(*, suggestion: Suggestion) -> CaseAttempt:
    """Record that the suggestion solved the member's problem.

    The attempt is deflected at once, unless a case was already filed from
    it. Clicking a second time changes nothing.
    """
    attempt = CaseAttempt.objects.select_for_update().get(pk=suggestion.attempt_id)
    now = timezone.now()
    if suggestion.helpful_at is not None and attempt.solved_by_suggestion_at:
        return attempt

    Suggestion.objects.filter(pk=suggestion.pk, helpful_at__isnull=True).update(
        helpful_at=now
    )
    Suggestion.objects.filter(pk=suggestion.pk, opened_at__isnull=True).update(
        opened_at=now
    )
    fields = ["solved_by_suggestion_at"]
    if attempt.solved_by_suggestion_at is None:
        attempt.solved_by_suggestion_at = now
    has_case = Case.objects.filter(attempt_id=attempt.pk).exists()
    if attempt.outcome != CaseAttempt.Outcome.DEFLECTED and not has_case:
        attempt.outcome = CaseAttempt.Outcome.DEFLECTED
        attempt.classified_at = now
        fields += ["outcome", "classified_at"]
    attempt.save(update_fields=fields)

    record_activity(
        member=attempt.member,
        kind="portal.suggestion_solved",
        subject=suggestion.article or suggestion.topic,
        properties=_properties(suggestion),
        attribution=_attempt_attribution(attempt),
    )
    return attempt


@dataclass(frozen=True)
class ClassificationResult:
    deflected: int
    not_deflected: int


@transaction.atomic
def classify_attempts(*, now: datetime | None = None) -> ClassificationResult:
    """Settle the pending attempts whose outcome is known, in two UPDATEs.

    Safe to run any number of times: only pending attempts change, and each
    statement reads the state it writes from, so a rerun finds nothing new.
    """
    now = now or timezone.now()
    window_start = now - DEFLECTION_WINDOW
    pending = CaseAttempt.objects.filter(outcome=CaseAttempt.Outcome.PENDING)
    case_in_window = Case.objects.filter(
        attempt=OuterRef("pk"),
        created_at__lt=OuterRef("started_at") + DEFLECTION_WINDOW,
    )
    opened = Suggestion.objects.filter(attempt=OuterRef("pk"), opened_at__isnull=False)

    deflected_count = (
        pending.alias(has_opened=Exists(opened), has_case=Exists(case_in_window))
        .filter(has_case=False)
        .filter(
            Q(solved_by_suggestion_at__isnull=False)
            | Q(started_at__lte=window_start, has_opened=True)
        )
        .update(outcome=CaseAttempt.Outcome.DEFLECTED, classified_at=now)
    )
    not_deflected_count = pending.filter(
        Q(Exists(case_in_window)) | Q(started_at__lte=window_start)
    ).update(outcome=CaseAttempt.Outcome.NOT_DEFLECTED, classified_at=now)

    if deflected_count or not_deflected_count:
        logger.info(
            "case attempts classified",
            extra={"deflected": deflected_count, "not_deflected": not_deflected_count},
        )
    return ClassificationResult(deflected_count, not_deflected_count)
