"""Builders shared by the advocacy tests: plays with real actions, consent."""

from datetime import timedelta

from django.utils import timezone

from apps.lifecycle.models import Enrolment, StepRun
from apps.lifecycle.plays.services import Candidate, enrol_subjects
from apps.membership.models import ConsentGrant, ConsentPurpose


def enrol(play, member, *, occurrence_key="test") -> Enrolment:
    candidate = Candidate(
        occurrence_key=occurrence_key, member_id=member.pk, account_id=member.account_id
    )
    [enrolment_id] = enrol_subjects(play=play, candidates=[candidate])
    return Enrolment.objects.get(pk=enrolment_id)


def outcomes(enrolment) -> list[tuple[int, str, str]]:
    return list(
        StepRun.objects.filter(enrolment=enrolment)
        .order_by("step__position")
        .values_list("step__position", "status", "outcome")
    )


def grant_consent(member, purpose_key: str = "advocacy_contact") -> None:
    purpose, _ = ConsentPurpose.objects.get_or_create(
        key=purpose_key, defaults={"name": purpose_key, "description": "Test."}
    )
    ConsentGrant.objects.create(
        member=member,
        purpose=purpose,
        source=ConsentGrant.Source.ADMIN,
        evidence="Test.",
        granted_at=timezone.now() - timedelta(days=1),
    )
