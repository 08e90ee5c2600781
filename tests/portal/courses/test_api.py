import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.portal.models import CourseEnrolment, LessonCompletion, QuizAttempt
from apps.portal.services.courses import complete_lesson, enrol_member
from tests import factories
from tests.portal.courses import factories as cf
from tests.portal.courses.helpers import make_certificate

BASE = "/api/v1/portal"


@pytest.fixture
def member_api(api_client, member):
    api_client.force_login(member.user)
    return api_client


def test_courses_list_needs_authentication(api_client, course):
    response = api_client.get(f"{BASE}/courses/")

    assert response.status_code == 401


def test_courses_list_published_with_my_progress(member, member_api, course, lessons):
    cf.CourseFactory(is_published=False)
    other = cf.CourseFactory()
    enrol_member(member=member, course=course)
    complete_lesson(member=member, lesson=lessons[0])

    response = member_api.get(f"{BASE}/courses/")

    rows = {row["slug"]: row for row in response.json()["results"]}
    assert set(rows) == {course.slug, other.slug}
    progress = rows[course.slug]["my_progress"]
    assert progress["lessons_done"] == 1
    assert progress["published_lessons"] == 3
    assert progress["percent"] == 33
    assert rows[other.slug]["my_progress"] is None


def test_courses_list_query_count_fixed(member, member_api, django_assert_num_queries):
    def add(count):
        for _ in range(count):
            course = cf.CourseFactory()
            cf.LessonFactory(module__course=course)
            enrol_member(member=member, course=course)

    add(2)
    with django_assert_num_queries(4):
        member_api.get(f"{BASE}/courses/")
    add(10)
    with django_assert_num_queries(4):
        response = member_api.get(f"{BASE}/courses/")
    assert len(response.json()["results"]) == 12


def test_unpublished_course_is_404(member_api):
    draft = cf.CourseFactory(is_published=False)

    assert member_api.get(f"{BASE}/courses/{draft.slug}/").status_code == 404


def test_enrol_endpoint(member, member_api, course):
    response = member_api.post(f"{BASE}/courses/{course.slug}/enrol/")

    assert response.status_code == 201
    assert response.json()["my_progress"]["lessons_done"] == 0
    assert CourseEnrolment.objects.filter(member=member, course=course).exists()


def test_enrol_endpoint_rejects_missing_prerequisite(member, member_api, course):
    advanced = cf.CourseFactory(title="Advanced")
    advanced.prerequisites.add(course)

    response = member_api.post(f"{BASE}/courses/{advanced.slug}/enrol/")

    assert response.status_code == 400
    assert response.json()["code"] == "prerequisites_missing"
    assert not CourseEnrolment.objects.filter(member=member).exists()


def test_enrol_endpoint_needs_member(api_client, staff_user, course):
    api_client.force_login(staff_user)

    response = api_client.post(f"{BASE}/courses/{course.slug}/enrol/")

    assert response.status_code == 400
    assert response.json()["code"] == "forbidden"
    assert not CourseEnrolment.objects.exists()


def test_lesson_complete_endpoint(member, member_api, course, lessons):
    enrol_member(member=member, course=course)

    response = member_api.post(
        f"{BASE}/courses/{course.slug}/lessons/{lessons[0].pk}/complete/"
    )

    assert response.status_code == 200
    assert response.json()["lessons_done"] == 1
    assert response.json()["percent"] == 33


def test_lesson_complete_endpoint_unpublished_is_404(member, member_api, course):
    enrol_member(member=member, course=course)
    draft = cf.LessonFactory(module=course.modules.first(), is_published=False)

    response = member_api.post(
        f"{BASE}/courses/{course.slug}/lessons/{draft.pk}/complete/"
    )

    assert response.status_code == 404
    assert not LessonCompletion.objects.exists()


def test_lesson_complete_endpoint_needs_enrolment(member_api, course, lessons):
    response = member_api.post(
        f"{BASE}/courses/{course.slug}/lessons/{lessons[0].pk}/complete/"
    )

    assert response.status_code == 400
    assert response.json()["code"] == "not_enrolled"


def test_quiz_submit_endpoint_grades(member, member_api, course):
    quiz = cf.QuizFactory(course=course, pass_mark=100)
    questions = cf.add_questions(quiz, 2)
    cf.CertificationFactory(course=course)
    enrol_member(member=member, course=course)
    answers = {str(q): c for q, c in cf.answers_with_right(questions, 2).items()}

    response = member_api.post(
        f"{BASE}/courses/{course.slug}/quiz/submit/",
        {"answers": answers, "score": 0},
        format="json",
    )

    body = response.json()
    assert response.status_code == 201
    assert body["score"] == 100
    assert body["passed"] is True
    assert len(body["certificates"]) == 1


def test_quiz_submit_endpoint_max_attempts(member, member_api, course):
    quiz = cf.QuizFactory(course=course, max_attempts=1)
    questions = cf.add_questions(quiz, 1)
    enrol_member(member=member, course=course)
    answers = {str(q): c for q, c in cf.answers_with_right(questions, 0).items()}
    url = f"{BASE}/courses/{course.slug}/quiz/submit/"
    member_api.post(url, {"answers": answers}, format="json")

    response = member_api.post(url, {"answers": answers}, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "max_attempts"
    assert QuizAttempt.objects.count() == 1


def test_enrolments_list_own_only(member, member_api, course):
    enrol_member(member=member, course=course)
    enrol_member(member=factories.MemberFactory(), course=course)

    response = member_api.get(f"{BASE}/enrolments/")

    rows = response.json()["results"]
    assert [row["course"] for row in rows] == [course.slug]


def test_certificates_list_own_only(member, member_api):
    now = timezone.now()
    own = make_certificate(expires_at=now + timedelta(days=3), member=member)
    make_certificate(expires_at=now + timedelta(days=3))

    response = member_api.get(f"{BASE}/certificates/")

    rows = response.json()["results"]
    assert [row["verification_code"] for row in rows] == [str(own.verification_code)]
    assert rows[0]["status"] == "valid"


def test_certificate_verify_is_public(api_client, db):
    certificate = make_certificate(
        expires_at=timezone.now() - timedelta(seconds=1),
    )

    response = api_client.get(
        f"{BASE}/certificates/verify/{certificate.verification_code}/"
    )

    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "expired"
    assert body["holder_name"] == "Ada Lovelace"
    assert set(body) == {
        "verification_code",
        "certification",
        "holder_name",
        "issued_at",
        "expires_at",
        "status",
    }


def test_certificate_verify_unknown_code_is_404(api_client, db):
    response = api_client.get(f"{BASE}/certificates/verify/{uuid.uuid4()}/")

    assert response.status_code == 404


@pytest.mark.parametrize("code", ["not-a-uuid", "12345"])
def test_certificate_verify_malformed_code_is_json_404(api_client, db, code):
    response = api_client.get(f"{BASE}/certificates/verify/{code}/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert f"Invalid certificate code {code!r}" in response.json()["detail"]
