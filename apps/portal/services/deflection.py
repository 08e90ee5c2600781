"""Case deflection: attempts, the suggestions they showed, and their outcome.

kpis.md defines the measure. An attempt starts when a member opens the
new-case form (`start_attempt`). Filing a case from that form makes it not
deflected at once (`attach_case`). Everything else about suggestions
(showing, opening, "this solved my problem") and the 24-hour
classification lives further down this module.
"""

from django.db import transaction
from django.utils import timezone

from apps.lifecycle.attribution import current_attribution
from apps.lifecycle.services import record_activity
from apps.membership.models import Member
from apps.portal.models import Case, CaseAttempt

UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")


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


def attach_case(*, attempt_id: int | None, case: Case) -> CaseAttempt | None:
    """Tie a newly filed case to the attempt of the form it came from.

    Call it inside the transaction that files the case. The attempt becomes
    not deflected, since a case was submitted. An attempt of another member,
    or one that already has a case, is left alone and None is returned, so a
    tampered or resubmitted form never rewrites another attempt.
    """
    if attempt_id is None:
        return None
    attempt = (
        CaseAttempt.objects.select_for_update(of=("self",))
        .filter(pk=attempt_id, member_id=case.member_id, case__isnull=True)
        .first()
    )
    if attempt is None:
        return None
    now = timezone.now()
    attempt.outcome = CaseAttempt.Outcome.NOT_DEFLECTED
    attempt.classified_at = now
    if case.topic_id and attempt.topic_id is None:
        attempt.topic_id = case.topic_id
    attempt.save(update_fields=["outcome", "classified_at", "topic"])
    case.attempt = attempt
    case.save(update_fields=["attempt"])
    return attempt
