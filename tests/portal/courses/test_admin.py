from datetime import timedelta

from django.utils import timezone

from apps.membership.models import AuditEntry
from apps.portal.models import Lesson
from tests.portal.courses import factories as cf
from tests.portal.courses.helpers import make_certificate

CERTIFICATES_URL = "/admin/portal/membercertificate/"


def test_revoke_action_revokes_and_audits(admin_client, admin_user):
    certificate = make_certificate(expires_at=timezone.now() + timedelta(days=9))

    response = admin_client.post(
        CERTIFICATES_URL,
        {"action": "revoke_selected", "_selected_action": [certificate.pk]},
        follow=True,
    )

    certificate.refresh_from_db()
    assert response.status_code == 200
    assert certificate.revoked_by == admin_user
    assert "Revoked 1 certificate." in response.content.decode()
    assert AuditEntry.objects.get(action="portal.certificate_revoked").actor == (
        admin_user
    )


def test_revoke_action_message_counts_revoked_and_skipped(admin_client, admin_user):
    expires_at = timezone.now() + timedelta(days=9)
    fresh = [make_certificate(expires_at=expires_at) for _ in range(2)]
    revoked = make_certificate(expires_at=expires_at, revoked_at=timezone.now())

    response = admin_client.post(
        CERTIFICATES_URL,
        {
            "action": "revoke_selected",
            "_selected_action": [c.pk for c in [*fresh, revoked]],
        },
        follow=True,
    )

    content = response.content.decode()
    assert "Revoked 2 certificates." in content
    assert "1 certificate was already revoked and stayed unchanged." in content


def test_certificate_admin_is_read_only(admin_client, db):
    certificate = make_certificate(expires_at=timezone.now() + timedelta(days=9))
    url = f"{CERTIFICATES_URL}{certificate.pk}/change/"

    admin_client.post(url, {"holder_name": "Someone Else"})

    certificate.refresh_from_db()
    assert certificate.holder_name == "Ada Lovelace"


def test_course_admin_rejects_prerequisite_cycle(admin_client, db):
    first = cf.CourseFactory()
    second = cf.CourseFactory()
    second.prerequisites.add(first)
    url = f"/admin/portal/course/{first.pk}/change/"

    response = admin_client.post(
        url,
        {
            "title": first.title,
            "slug": first.slug,
            "summary": "",
            "description": "",
            "prerequisites": [second.pk],
            "position": 0,
            "is_published": "on",
            "modules-TOTAL_FORMS": 0,
            "modules-INITIAL_FORMS": 0,
        },
    )

    assert response.status_code == 200
    assert "lead back to this course" in response.content.decode()
    assert not first.prerequisites.exists()


def test_lesson_admin_rejects_plain_http_video(admin_client, db):
    module = cf.CourseModuleFactory()

    response = admin_client.post(
        "/admin/portal/lesson/add/",
        {
            "module": module.pk,
            "title": "Intro",
            "slug": "intro",
            "body": "",
            "video_url": "http://www.youtube.com/watch?v=abc",
            "position": 0,
            "downloads-TOTAL_FORMS": 0,
            "downloads-INITIAL_FORMS": 0,
        },
    )

    assert response.status_code == 200
    assert "is not an https link" in response.content.decode()
    assert not Lesson.objects.exists()


def test_reset_attempts_action(admin_client, admin_user, member, course):
    cf.QuizFactory(course=course)
    enrolment = cf.enrol(member, course)

    admin_client.post(
        "/admin/portal/courseenrolment/",
        {"action": "reset_attempts", "_selected_action": [enrolment.pk]},
    )

    enrolment.refresh_from_db()
    assert enrolment.quiz_attempts_reset_at is not None
    assert AuditEntry.objects.get(action="portal.quiz_attempts_reset").actor == (
        admin_user
    )
