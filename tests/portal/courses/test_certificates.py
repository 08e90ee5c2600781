from datetime import UTC, datetime, timedelta

import pytest

from apps.lifecycle.models import ActivityEvent, Notification
from apps.membership.models import AuditEntry
from apps.portal.models import MemberCertificate
from apps.portal.selectors.courses import get_certificate_status
from apps.portal.services.certificates import issue_certificate, revoke_certificate
from apps.portal.services.courses import enrol_member, submit_quiz
from rm6.errors import DomainError
from tests import factories
from tests.portal.courses import factories as cf
from tests.portal.courses.helpers import make_certificate

NOW = datetime(2027, 5, 3, 10, 0, tzinfo=UTC)


@pytest.fixture
def certified_quiz(course):
    quiz = cf.QuizFactory(course=course)
    cf.add_questions(quiz, 2)
    return quiz


def _pass(member, quiz, now=NOW):
    questions = list(quiz.questions.order_by("position"))
    return submit_quiz(
        member=member,
        quiz=quiz,
        answers=cf.answers_with_right(questions, len(questions)),
        now=now,
    )


def test_passing_certification_quiz_issues_certificate(member, course, certified_quiz):
    member.user.first_name, member.user.last_name = "Ada", "Lovelace"
    member.user.save(update_fields=["first_name", "last_name"])
    certification = cf.CertificationFactory(course=course, validity_days=365)
    enrol_member(member=member, course=course)

    attempt = _pass(member, certified_quiz)

    certificate = MemberCertificate.objects.get(member=member)
    assert certificate.certification == certification
    assert certificate.attempt == attempt
    assert certificate.holder_name == "Ada Lovelace"
    assert certificate.issued_at == NOW
    assert certificate.expires_at == NOW + timedelta(days=365)
    assert ActivityEvent.objects.filter(kind="portal.certificate_issued").count() == 1
    assert Notification.objects.filter(
        member=member, kind="portal.certificate_issued"
    ).exists()


def test_failed_attempt_issues_no_certificate(member, course, certified_quiz):
    cf.CertificationFactory(course=course)
    enrol_member(member=member, course=course)
    questions = list(certified_quiz.questions.all())

    submit_quiz(
        member=member,
        quiz=certified_quiz,
        answers=cf.answers_with_right(questions, 0),
    )

    assert not MemberCertificate.objects.exists()


def test_inactive_certification_not_issued(member, course, certified_quiz):
    cf.CertificationFactory(course=course, is_active=False)
    enrol_member(member=member, course=course)

    _pass(member, certified_quiz)

    assert not MemberCertificate.objects.exists()


def test_issue_certificate_is_idempotent(member, course, certified_quiz):
    certification = cf.CertificationFactory(course=course)
    enrol_member(member=member, course=course)
    attempt = _pass(member, certified_quiz)

    again = issue_certificate(attempt=attempt, certification=certification)

    assert MemberCertificate.objects.count() == 1
    assert again.pk == MemberCertificate.objects.get().pk
    assert ActivityEvent.objects.filter(kind="portal.certificate_issued").count() == 1


def test_recertification_issues_new_certificate(member, course, certified_quiz):
    cf.CertificationFactory(course=course, validity_days=30)
    enrol_member(member=member, course=course)
    _pass(member, certified_quiz, now=NOW)

    # After expiry, the member retakes the quiz for a new certificate.
    later = NOW + timedelta(days=40)
    _pass(member, certified_quiz, now=later)

    certificates = MemberCertificate.objects.order_by("issued_at")
    assert [c.expires_at for c in certificates] == [
        NOW + timedelta(days=30),
        later + timedelta(days=30),
    ]
    assert get_certificate_status(certificates[0], now=later) == "expired"
    assert get_certificate_status(certificates[1], now=later) == "valid"


def test_recertification_allowed_after_max_attempts_reached(
    member, course, certified_quiz
):
    certified_quiz.max_attempts = 1
    certified_quiz.save(update_fields=["max_attempts"])
    cf.CertificationFactory(course=course)
    enrol_member(member=member, course=course)
    _pass(member, certified_quiz)

    _pass(member, certified_quiz, now=NOW + timedelta(days=300))

    assert MemberCertificate.objects.count() == 2


def test_certificate_status_at_expiry_boundary(db):
    expires_at = datetime(2027, 6, 1, 0, 0, tzinfo=UTC)
    certificate = make_certificate(expires_at=expires_at)

    just_before = expires_at - timedelta(microseconds=1)

    assert get_certificate_status(certificate, now=just_before) == "valid"
    assert get_certificate_status(certificate, now=expires_at) == "expired"


def test_revoke_certificate_audited(db, staff_user):
    certificate = make_certificate(expires_at=NOW + timedelta(days=10))

    changed = revoke_certificate(
        certificate=certificate, revoked_by=staff_user, reason="cheating"
    )

    certificate.refresh_from_db()
    assert changed is True
    assert certificate.revoked_by == staff_user
    assert get_certificate_status(certificate, now=NOW) == "revoked"
    entry = AuditEntry.objects.get(action="portal.certificate_revoked")
    assert entry.actor == staff_user
    assert entry.member == certificate.member
    assert entry.details["reason"] == "cheating"


def test_revoke_twice_changes_nothing(db, staff_user):
    certificate = make_certificate(expires_at=NOW + timedelta(days=10))
    revoke_certificate(certificate=certificate, revoked_by=staff_user)

    changed = revoke_certificate(certificate=certificate, revoked_by=staff_user)

    assert changed is False
    assert AuditEntry.objects.filter(action="portal.certificate_revoked").count() == 1


def test_revoke_by_non_staff_rejected(db):
    certificate = make_certificate(expires_at=NOW + timedelta(days=10))
    user = factories.UserFactory()

    with pytest.raises(DomainError):
        revoke_certificate(certificate=certificate, revoked_by=user)

    certificate.refresh_from_db()
    assert certificate.revoked_at is None
