import html
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.core.files.base import ContentFile
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from apps.lifecycle.models import ActivityEvent
from apps.portal.models import CourseEnrolment, LessonDownload, QuizAttempt
from apps.portal.selectors.courses import build_verification_url
from apps.portal.services.certificates import render_certificate_pdf
from apps.portal.services.courses import complete_lesson, enrol_member
from rm6.errors import DomainError
from tests import factories
from tests.portal.courses import factories as cf
from tests.portal.courses import pdf
from tests.portal.courses.helpers import make_certificate


def course_url(course) -> str:
    return reverse("portal:course", kwargs={"slug": course.slug})


def lesson_url(lesson) -> str:
    return reverse(
        "portal:lesson",
        kwargs={"slug": lesson.module.course.slug, "lesson_id": lesson.pk},
    )


def count_queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


# Catalogue and course pages -------------------------------------------------


def test_catalogue_lists_published_courses_only(member_client, course):
    cf.CourseFactory(title="Hidden draft", is_published=False)

    response = member_client.get(reverse("portal:catalogue"))

    assert response.status_code == 200
    assert b"Reporting basics" in response.content
    assert b"Hidden draft" not in response.content


def test_catalogue_needs_sign_in(client, course):
    response = client.get(reverse("portal:catalogue"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_catalogue_empty_state(member_client):
    response = member_client.get(reverse("portal:catalogue"))

    assert b"No courses are published yet." in response.content


def _add_courses(member, count: int) -> None:
    path = cf.LearningPathFactory()
    for _ in range(count):
        course = cf.CourseFactory()
        cf.LessonFactory(module__course=course)
        path.courses.add(course)
        enrol_member(member=member, course=course)


def test_catalogue_query_count_fixed(member, member_client, django_assert_num_queries):
    url = reverse("portal:catalogue")
    _add_courses(member, 2)
    member_client.get(url)
    few = count_queries(member_client, url)

    _add_courses(member, 10)

    with django_assert_num_queries(few):
        response = member_client.get(url)
    assert len(response.context["courses"]) == 12
    assert len(response.context["paths"]) == 2


def _add_modules(course, count: int) -> None:
    for _ in range(count):
        module = cf.CourseModuleFactory(course=course)
        cf.LessonFactory(module=module)
        cf.LessonFactory(module=module, is_published=False)
        prerequisite = cf.CourseFactory()
        course.prerequisites.add(prerequisite)


def test_course_page_query_count_fixed(
    member, member_client, django_assert_num_queries
):
    course = cf.CourseFactory()
    cf.QuizFactory(course=course)
    cf.CertificationFactory(course=course)
    _add_modules(course, 2)
    url = course_url(course)
    member_client.get(url)
    few = count_queries(member_client, url)

    _add_modules(course, 10)

    with django_assert_num_queries(few):
        response = member_client.get(url)
    assert len(response.context["modules"]) == 12
    assert len(response.context["missing"]) == 12


def test_course_page_lists_missing_prerequisites(member_client, course):
    advanced = cf.CourseFactory(title="Advanced")
    advanced.prerequisites.add(course)

    response = member_client.get(course_url(advanced))

    assert response.context["missing"] == [course]
    assert b"Complete these courses before you enrol" in response.content
    assert b">Enrol</button>" not in response.content


def test_course_page_records_view(member, member_client, course):
    member_client.get(course_url(course))

    event = ActivityEvent.objects.get(member=member, kind="portal.course_viewed")
    assert event.subject_id == str(course.pk)


def test_unpublished_course_is_404_for_members(member_client):
    draft = cf.CourseFactory(is_published=False)

    assert member_client.get(course_url(draft)).status_code == 404


def test_unpublished_course_previewed_by_staff(staff_client):
    draft = cf.CourseFactory(is_published=False)

    assert staff_client.get(course_url(draft)).status_code == 200


def test_enrol_page_shows_prerequisite_error(member, member_client, course):
    advanced = cf.CourseFactory(title="Advanced")
    advanced.prerequisites.add(course)
    url = reverse("portal:course_enrol", kwargs={"slug": advanced.slug})

    response = member_client.post(url, follow=True)

    assert not CourseEnrolment.objects.filter(member=member).exists()
    assert (
        "complete the prerequisite course(s) 'Reporting basics' first"
        in html.unescape(response.content.decode())
    )


def test_enrol_page_enrols(member, member_client, course):
    url = reverse("portal:course_enrol", kwargs={"slug": course.slug})

    response = member_client.post(url)

    assert response.status_code == 302
    assert CourseEnrolment.objects.filter(member=member, course=course).exists()


# Lessons ----------------------------------------------------------------------


def test_lesson_needs_enrolment(member_client, lessons):
    response = member_client.get(lesson_url(lessons[0]))

    assert response.status_code == 302
    assert response["Location"] == course_url(lessons[0].module.course)


def test_lesson_renders_sanitised_markdown(member, member_client, course, lessons):
    lesson = lessons[0]
    lesson.body = "# Title\n\n**bold** <script>alert(1)</script>"
    lesson.save(update_fields=["body"])
    enrol_member(member=member, course=course)

    response = member_client.get(lesson_url(lesson))

    content = response.content.decode()
    assert "<strong>bold</strong>" in content
    assert "<script>alert(1)</script>" not in content
    event = ActivityEvent.objects.get(member=member, kind="portal.lesson_viewed")
    assert event.subject_id == str(lesson.pk)


@pytest.mark.parametrize(
    ("video_url", "embed"),
    [
        (
            "https://www.youtube.com/watch?v=abc123",
            "https://www.youtube-nocookie.com/embed/abc123",
        ),
        ("https://youtu.be/abc123", "https://www.youtube-nocookie.com/embed/abc123"),
        ("https://vimeo.com/12345", "https://player.vimeo.com/video/12345"),
        (
            "https://player.vimeo.com/video/12345",
            "https://player.vimeo.com/video/12345",
        ),
        ("https://videos.example.com/embed/1", None),
        ("http://www.youtube.com/embed/abc123", None),
    ],
)
def test_lesson_video_embedded_only_from_allowed_hosts(
    member, member_client, course, lessons, video_url, embed
):
    lesson = lessons[0]
    lesson.video_url = video_url
    lesson.save(update_fields=["video_url"])
    enrol_member(member=member, course=course)

    response = member_client.get(lesson_url(lesson))

    assert response.context["video_embed_url"] == embed
    if embed is None:
        assert b"<iframe" not in response.content
        # A plain http link is not shown at all, an https one as a link.
        is_linked = video_url.encode() in response.content
        assert is_linked is video_url.startswith("https://")
    else:
        assert f'<iframe src="{embed}"'.encode() in response.content


def test_unpublished_lesson_is_404_for_members(member, member_client, course):
    enrol_member(member=member, course=course)
    draft = cf.LessonFactory(module=course.modules.first(), is_published=False)

    assert member_client.get(lesson_url(draft)).status_code == 404


def test_lesson_complete_page_marks_done(member, member_client, course, lessons):
    enrol_member(member=member, course=course)
    url = reverse(
        "portal:lesson_complete",
        kwargs={"slug": course.slug, "lesson_id": lessons[0].pk},
    )

    response = member_client.post(url, HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    assert b"You completed this lesson." in response.content
    assert ActivityEvent.objects.filter(kind="portal.lesson_completed").count() == 1


# Downloads --------------------------------------------------------------------


@pytest.fixture
def download(lessons, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    item = LessonDownload(lesson=lessons[0], title="Checklist")
    item.file.save("checklist.pdf", ContentFile(b"%PDF-1.4 checklist"), save=False)
    item.size = 18
    item.save()
    return item


def download_url(download) -> str:
    course = download.lesson.module.course
    return reverse(
        "portal:lesson_download",
        kwargs={"slug": course.slug, "download_id": download.pk},
    )


def test_download_served_to_enrolled_member(member, member_client, course, download):
    enrol_member(member=member, course=course)

    response = member_client.get(download_url(download))

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"%PDF-1.4 checklist"
    assert response["Content-Type"] == "application/pdf"
    assert "attachment" in response["Content-Disposition"]


def test_download_refused_without_enrolment(member_client, download):
    response = member_client.get(download_url(download))

    assert response.status_code == 403


def test_download_refused_when_signed_out(client, download):
    response = client.get(download_url(download))

    assert response.status_code == 302


def test_download_of_unpublished_lesson_is_404(member, member_client, course, download):
    enrol_member(member=member, course=course)
    download.lesson.is_published = False
    download.lesson.save(update_fields=["is_published"])

    assert member_client.get(download_url(download)).status_code == 404


def test_download_of_other_course_is_404(member, member_client, course, download):
    other = cf.CourseFactory()
    enrol_member(member=member, course=other)
    url = reverse(
        "portal:lesson_download",
        kwargs={"slug": other.slug, "download_id": download.pk},
    )

    assert member_client.get(url).status_code == 404


# Quiz page --------------------------------------------------------------------


def test_quiz_page_grades_submission(member, member_client, course):
    quiz = cf.QuizFactory(course=course, pass_mark=50)
    questions = cf.add_questions(quiz, 2)
    enrol_member(member=member, course=course)
    answers = cf.answers_with_right(questions, 1)
    data = {f"question_{q}": choices for q, choices in answers.items()}

    response = member_client.post(
        reverse("portal:quiz", kwargs={"slug": course.slug}), data
    )

    assert response.status_code == 200
    assert b"You scored 50 %: passed." in response.content
    assert QuizAttempt.objects.get().score == 50


def test_quiz_page_ignores_posted_score(member, member_client, course):
    quiz = cf.QuizFactory(course=course)
    questions = cf.add_questions(quiz, 2)
    enrol_member(member=member, course=course)
    answers = cf.answers_with_right(questions, 0)
    data = {f"question_{q}": c for q, c in answers.items()}

    member_client.post(
        reverse("portal:quiz", kwargs={"slug": course.slug}),
        {**data, "score": "100", "passed": "true"},
    )

    attempt = QuizAttempt.objects.get()
    assert attempt.score == 0
    assert attempt.passed is False


# Certificates -----------------------------------------------------------------


def verify_url(code) -> str:
    return reverse("portal:certificate_verify", kwargs={"code": code})


@pytest.mark.parametrize(
    ("fields", "status_label"),
    [
        ({"expires_at_days": 10}, b"Valid</span>"),
        ({"expires_at_days": -1}, b"Expired</span>"),
        ({"expires_at_days": 10, "revoked": True}, b"Revoked</span>"),
    ],
    ids=["valid", "expired", "revoked"],
)
def test_verification_page_shows_status(client, db, fields, status_label):
    now = timezone.now()
    certificate = make_certificate(
        expires_at=now + timedelta(days=fields["expires_at_days"]),
        revoked_at=now if fields.get("revoked") else None,
    )

    response = client.get(verify_url(certificate.verification_code))

    assert response.status_code == 200
    assert status_label in response.content
    assert b"Ada Lovelace" in response.content
    assert certificate.certification.title.encode() in response.content


def test_verification_page_leaks_no_member_details(client, db):
    certificate = make_certificate(expires_at=timezone.now() + timedelta(days=5))
    member = certificate.member

    response = client.get(verify_url(certificate.verification_code))

    content = response.content.decode()
    assert member.email not in content
    assert member.email.split("@")[1] not in content
    assert member.account.name not in content


def test_verification_page_time_in_utc_for_any_zone(client, db):
    expires_at = datetime(2031, 5, 4, 22, 30, tzinfo=UTC)
    certificate = make_certificate(expires_at=expires_at)
    session = client.session
    session["member_time_zone"] = "Asia/Tokyo"
    session.save()

    response = client.get(verify_url(certificate.verification_code))

    assert "4 May 2031 22:30 UTC" in response.content.decode()


def test_verification_page_unknown_code_is_404(client, db):
    code = uuid.uuid4()

    response = client.get(verify_url(code))

    assert response.status_code == 404
    assert f"No certificate has the code {code}.".encode() in response.content


def test_verification_page_malformed_code_is_404(client, db):
    assert client.get("/certificates/not-a-code/").status_code == 404


def test_certificate_pdf_is_pdf_with_verification_url(member, member_client):
    certificate = make_certificate(
        expires_at=timezone.now() + timedelta(days=5), member=member
    )
    url = reverse(
        "portal:certificate_pdf", kwargs={"code": certificate.verification_code}
    )

    response = member_client.get(url)

    data = response.content
    verification_url = "http://testserver" + verify_url(certificate.verification_code)
    assert response["Content-Type"] == "application/pdf"
    assert pdf.check_structure(data) > 5
    assert f"/URI ({verification_url})".encode() in data
    text = b"".join(pdf.decode_streams(data))
    assert f"({verification_url}) Tj".encode() in text
    assert b"(Ada Lovelace) Tj" in text


def pdf_url(certificate) -> str:
    return reverse(
        "portal:certificate_pdf", kwargs={"code": certificate.verification_code}
    )


def pdf_text(data: bytes) -> bytes:
    return b"".join(pdf.decode_streams(data))


@override_settings(SITE_URL="http://127.0.0.1:8000")
def test_certificate_pdf_links_to_request_host(member, member_client):
    certificate = make_certificate(
        expires_at=timezone.now() + timedelta(days=5), member=member
    )

    response = member_client.get(pdf_url(certificate), HTTP_HOST="hub.example.com")

    expected = "http://hub.example.com" + verify_url(certificate.verification_code)
    assert f"/URI ({expected})".encode() in response.content
    assert f"({expected}) Tj".encode() in pdf_text(response.content)
    assert b"127.0.0.1:8000" not in response.content


@override_settings(SITE_URL="https://portal.example.org")
def test_verification_url_without_request_uses_setting(db):
    certificate = make_certificate(expires_at=timezone.now() + timedelta(days=5))

    url = build_verification_url(certificate)

    assert url == "https://portal.example.org" + verify_url(
        certificate.verification_code
    )


def test_certificate_pdf_of_revoked_is_410(member, member_client):
    revoked_at = timezone.now().replace(year=2026, month=3, day=2)
    certificate = make_certificate(
        expires_at=timezone.now() + timedelta(days=200),
        member=member,
        revoked_at=revoked_at,
    )

    response = member_client.get(pdf_url(certificate))

    content = response.content.decode()
    assert response.status_code == 410
    assert response["Content-Type"].startswith("text/html")
    assert "This certificate was revoked on" in content
    assert "2 March 2026" in content
    assert "valid until" not in content


def test_certificate_pdf_of_expired_says_expired(member, member_client):
    certificate = make_certificate(
        expires_at=timezone.now() - timedelta(days=1), member=member
    )

    response = member_client.get(pdf_url(certificate))

    text = pdf_text(response.content)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert b"expired on" in text
    assert b"is no longer valid" in text
    assert b"valid until" not in text


def test_certificate_pdf_of_valid_says_valid_until(member, member_client):
    certificate = make_certificate(
        expires_at=timezone.now() + timedelta(days=5), member=member
    )

    text = pdf_text(member_client.get(pdf_url(certificate)).content)

    assert b"valid until" in text
    assert b"expired" not in text


def test_render_certificate_pdf_rejects_revoked(db):
    certificate = make_certificate(
        expires_at=timezone.now() + timedelta(days=5), revoked_at=timezone.now()
    )

    with pytest.raises(DomainError) as error:
        render_certificate_pdf(certificate)

    assert error.value.code == "revoked"


@pytest.mark.parametrize(
    ("expires_in_days", "revoked", "shows_recertify"),
    [
        (365, False, False),
        (31, False, False),
        (29, False, True),
        (-1, False, True),
        (29, True, False),
    ],
    ids=["year-left", "before-window", "in-window", "expired", "revoked"],
)
def test_certificate_list_recertify_only_when_due(
    member, member_client, expires_in_days, revoked, shows_recertify
):
    now = timezone.now()
    make_certificate(
        expires_at=now + timedelta(days=expires_in_days),
        member=member,
        remind_days_before=30,
        revoked_at=now if revoked else None,
    )

    response = member_client.get(reverse("portal:certificate_list"))

    assert response.status_code == 200
    assert (b">Recertify</a>" in response.content) is shows_recertify


def test_certificate_list_hides_pdf_of_revoked(member, member_client):
    certificate = make_certificate(
        expires_at=timezone.now() + timedelta(days=5),
        member=member,
        revoked_at=timezone.now(),
    )

    response = member_client.get(reverse("portal:certificate_list"))

    assert pdf_url(certificate).encode() not in response.content


def test_certificate_list_query_count_fixed(
    member, member_client, django_assert_num_queries
):
    now = timezone.now()
    make_certificate(expires_at=now + timedelta(days=5), member=member)
    with CaptureQueriesContext(connection) as one:
        member_client.get(reverse("portal:certificate_list"))
    for _ in range(4):
        make_certificate(expires_at=now + timedelta(days=5), member=member)

    with django_assert_num_queries(len(one)):
        member_client.get(reverse("portal:certificate_list"))


def test_catalogue_hides_certificates_from_staff_without_member(staff_client):
    response = staff_client.get(reverse("portal:catalogue"))

    assert response.status_code == 200
    assert reverse("portal:certificate_list").encode() not in response.content


def test_catalogue_links_certificates_for_members(member_client):
    response = member_client.get(reverse("portal:catalogue"))

    assert reverse("portal:certificate_list").encode() in response.content


def test_certificate_pdf_of_other_member_is_404(member_client, db):
    certificate = make_certificate(expires_at=timezone.now() + timedelta(days=5))
    url = reverse(
        "portal:certificate_pdf", kwargs={"code": certificate.verification_code}
    )

    assert member_client.get(url).status_code == 404


def test_certificate_list_shows_own_only(member, member_client):
    own = make_certificate(expires_at=timezone.now() + timedelta(days=5), member=member)
    other = make_certificate(expires_at=timezone.now() + timedelta(days=5))

    response = member_client.get(reverse("portal:certificate_list"))

    assert [row["certificate"] for row in response.context["rows"]] == [own]
    assert str(other.verification_code).encode() not in response.content


# Staff report -----------------------------------------------------------------


def test_completion_report_refused_to_members(member_client, course):
    url = reverse("portal:course_completion_report")

    assert member_client.get(url).status_code == 403


def test_completion_report_shown_to_staff(staff_client, course):
    url = reverse("portal:course_completion_report")

    assert staff_client.get(url).status_code == 200


def test_completion_report_counts_window(staff_client, course):
    now = timezone.now()
    done = cf.enrol(factories.MemberFactory(), course, completed_at=now)
    cf.enrol(factories.MemberFactory(), course)
    CourseEnrolment.objects.filter(pk=done.pk).update(started_at=now)
    old = cf.enrol(factories.MemberFactory(), course)
    CourseEnrolment.objects.filter(pk=old.pk).update(
        started_at=now - timedelta(days=400)
    )

    response = staff_client.get(reverse("portal:course_completion_report"))

    overall = response.context["rates"]["overall"]
    assert (overall.started, overall.completed, overall.percent) == (2, 1, 50.0)


# Learning paths ---------------------------------------------------------------


def test_learning_path_page_shows_published_courses_in_order(
    member, member_client, course, lessons
):
    path = cf.LearningPathFactory(title="Foundations")
    second = cf.CourseFactory(title="Second step")
    draft = cf.CourseFactory(title="Draft step", is_published=False)
    path.learningpathcourse_set.create(course=second, position=2)
    path.learningpathcourse_set.create(course=course, position=1)
    path.learningpathcourse_set.create(course=draft, position=3)
    enrol_member(member=member, course=course)
    for lesson in lessons:
        complete_lesson(member=member, lesson=lesson)

    response = member_client.get(
        reverse("portal:learning_path", kwargs={"slug": path.slug})
    )

    assert [c.title for c in response.context["path"].steps] == [
        "Reporting basics",
        "Second step",
    ]
    assert response.context["done_count"] == 1


def test_unpublished_learning_path_is_404(member_client):
    path = cf.LearningPathFactory(is_published=False)

    response = member_client.get(
        reverse("portal:learning_path", kwargs={"slug": path.slug})
    )

    assert response.status_code == 404


def test_quiz_page_needs_enrolment(member_client, course):
    cf.QuizFactory(course=course)

    response = member_client.get(reverse("portal:quiz", kwargs={"slug": course.slug}))

    assert response.status_code == 302
    assert response["Location"] == course_url(course)


def test_lesson_video_with_other_scheme_not_linked(member, member_client, course):
    lesson = course.modules.first().lessons.first()
    lesson.video_url = "javascript:alert(1)"
    lesson.save(update_fields=["video_url"])
    enrol_member(member=member, course=course)

    response = member_client.get(lesson_url(lesson))

    assert b"javascript:alert(1)" not in response.content


def test_quiz_page_hides_form_after_pass_without_certification(
    member, member_client, course
):
    quiz = cf.QuizFactory(course=course)
    questions = cf.add_questions(quiz, 1)
    enrol_member(member=member, course=course)
    url = reverse("portal:quiz", kwargs={"slug": course.slug})
    answers = cf.answers_with_right(questions, 1)
    member_client.post(url, {f"question_{q}": c for q, c in answers.items()})

    response = member_client.get(url)

    assert b"You passed this quiz." in response.content
    assert b"Submit answers" not in response.content


def test_quiz_page_offers_recertification(member, member_client, course):
    quiz = cf.QuizFactory(course=course)
    questions = cf.add_questions(quiz, 1)
    cf.CertificationFactory(course=course)
    enrol_member(member=member, course=course)
    url = reverse("portal:quiz", kwargs={"slug": course.slug})
    answers = cf.answers_with_right(questions, 1)
    member_client.post(url, {f"question_{q}": c for q, c in answers.items()})

    response = member_client.get(url)

    assert b"Take the quiz again to earn a new certificate" in response.content
    assert b"Submit answers" in response.content


def pass_quiz_after_failing(member, member_client, course, *, certified: bool):
    quiz = cf.QuizFactory(course=course, max_attempts=3)
    questions = cf.add_questions(quiz, 1)
    if certified:
        cf.CertificationFactory(course=course)
    enrol_member(member=member, course=course)
    url = reverse("portal:quiz", kwargs={"slug": course.slug})
    for right in (0, 1):
        answers = cf.answers_with_right(questions, right)
        member_client.post(url, {f"question_{q}": c for q, c in answers.items()})
    return member_client.get(url)


def test_quiz_page_hides_attempts_left_after_pass(member, member_client, course):
    response = pass_quiz_after_failing(member, member_client, course, certified=False)

    assert b"You passed this quiz." in response.content
    assert b"attempts left" not in response.content
    assert b"attempt left" not in response.content


def test_quiz_page_words_recertification_attempts(member, member_client, course):
    response = pass_quiz_after_failing(member, member_client, course, certified=True)

    assert b"attempts left" not in response.content
    assert b"You have 3 attempts to recertify." in response.content


def test_completion_report_breaks_down_by_member_and_account(staff_client, course):
    now = timezone.now()
    champion = factories.MemberFactory(role="champion")
    cf.enrol(champion, course, completed_at=now)
    cf.enrol(factories.MemberFactory(account=None), course)

    response = staff_client.get(reverse("portal:course_completion_report"))

    rates = response.context["rates"]
    by_role = {rate.label: (rate.started, rate.completed) for rate in rates["by_role"]}
    assert by_role == {"Champion": (1, 1), "Member": (1, 0)}
    by_tier = {rate.label: rate.percent for rate in rates["by_cs_tier"]}
    assert by_tier == {"Pooled": 100.0, "No account (awaiting review)": 0.0}
    assert b"By lifecycle stage" in response.content
