"""Course pages: catalogue, course, lesson, quiz, learning path and certificates.

Course content needs a signed-in user. Members see published courses and
lessons, and read lessons and downloads only once enrolled; staff preview
everything. The certificate verification page is public.
"""

import mimetypes
from datetime import date, timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.membership.models import Member
from apps.membership.selectors import get_member_for_user
from apps.portal.models import (
    Course,
    LearningPath,
    Lesson,
    LessonDownload,
    MemberCertificate,
    Quiz,
)
from apps.portal.selectors.courses import (
    access_course,
    access_download,
    access_learning_path,
    access_lesson,
    access_member_certificate,
    build_verification_url,
    count_attempts_left,
    get_certificate_by_code,
    get_certificate_status,
    get_course_completion_rates,
    get_enrolment,
    get_progress,
    get_quiz_with_questions,
    get_video_embed_url,
    is_recertification_due,
    list_active_certifications,
    list_completed_lesson_ids,
    list_course_modules,
    list_lesson_sequence,
    list_member_certificates,
    list_missing_prerequisites,
    list_published_courses,
    list_published_learning_paths,
    list_quiz_attempts,
)
from apps.portal.services.certificates import render_certificate_pdf
from apps.portal.services.courses import (
    complete_lesson,
    enrol_member,
    record_course_view,
    record_lesson_view,
    submit_quiz,
)
from rm6.errors import DomainError

COURSES_PER_PAGE = 20
CERTIFICATES_PER_PAGE = 20
REPORT_DEFAULT_DAYS = 90

NO_MEMBER_MESSAGE = (
    "Taking courses needs a member profile, and this user has none. Staff "
    "can preview courses without enrolling."
)


def _get_course_or_404(request: HttpRequest, slug: str) -> Course:
    try:
        return access_course(slug=slug, is_staff=request.user.is_staff)
    except Course.DoesNotExist:
        raise Http404("Course not found.") from None


def _require_member(request: HttpRequest) -> Member:
    member = get_member_for_user(request.user)
    if member is None:
        raise PermissionDenied(NO_MEMBER_MESSAGE)
    return member


@login_required
@require_GET
def catalogue(request: HttpRequest) -> HttpResponse:
    """List published courses with the member's progress, and learning paths."""
    member = get_member_for_user(request.user)
    paginator = Paginator(list_published_courses(member=member), COURSES_PER_PAGE)
    page = paginator.get_page(request.GET.get("page"))
    paths = list_published_learning_paths(member=member) if page.number == 1 else []
    return render(
        request,
        "portal/courses/catalogue.html",
        {
            "page_obj": page,
            "courses": page.object_list,
            "paths": paths,
            # Certificates belong to member profiles, so staff without one get
            # no link to a page that rejects them.
            "has_member_profile": member is not None,
        },
    )


@login_required
@require_GET
def course_detail(request: HttpRequest, slug: str) -> HttpResponse:
    """Show a course's outline, the member's progress and what blocks enrolment."""
    member = get_member_for_user(request.user)
    course = _get_course_or_404(request, slug)
    enrolment = get_enrolment(member=member, course=course)
    modules = list_course_modules(
        course=course, include_unpublished=request.user.is_staff
    )
    quiz = getattr(course, "quiz", None)
    missing = []
    if enrolment is None:
        missing = list_missing_prerequisites(member=member, course=course)

    if member is not None:
        record_course_view(member=member, course=course)
    context = {
        "course": course,
        "member": member,
        "modules": modules,
        "enrolment": enrolment,
        "progress": get_progress(enrolment=enrolment) if enrolment else None,
        "done_ids": list_completed_lesson_ids(enrolment=enrolment),
        "missing": missing,
        "quiz": quiz,
        "certifications": list_active_certifications(course=course),
    }
    return render(request, "portal/courses/course.html", context)


@login_required
@require_POST
def course_enrol(request: HttpRequest, slug: str) -> HttpResponse:
    member = _require_member(request)
    course = _get_course_or_404(request, slug)
    try:
        enrol_member(member=member, course=course)
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"You are enrolled in {course.title}.")
    return redirect("portal:course", slug=course.slug)


def _get_lesson_or_404(request: HttpRequest, course: Course, lesson_id: int) -> Lesson:
    try:
        return access_lesson(
            course=course, lesson_id=lesson_id, is_staff=request.user.is_staff
        )
    except Lesson.DoesNotExist:
        raise Http404("Lesson not found.") from None


@login_required
@require_GET
def lesson_detail(request: HttpRequest, slug: str, lesson_id: int) -> HttpResponse:
    """Show a lesson to an enrolled member, or to staff as a preview."""
    member = get_member_for_user(request.user)
    course = _get_course_or_404(request, slug)
    lesson = _get_lesson_or_404(request, course, lesson_id)
    enrolment = get_enrolment(member=member, course=course)
    if enrolment is None and not request.user.is_staff:
        messages.info(request, f"Enrol in {course.title} to read its lessons.")
        return redirect("portal:course", slug=course.slug)

    sequence = list_lesson_sequence(course=course)
    ids = [lesson_id for lesson_id, _ in sequence]
    index = ids.index(lesson.pk) if lesson.pk in ids else None
    has_next = index is not None and index + 1 < len(ids)
    if member is not None and enrolment is not None:
        record_lesson_view(member=member, lesson=lesson, course=course)
    context = {
        "course": course,
        "lesson": lesson,
        "enrolment": enrolment,
        "is_done": lesson.pk in list_completed_lesson_ids(enrolment=enrolment),
        "video_embed_url": get_video_embed_url(lesson.video_url),
        # Only https links are shown, whatever was stored.
        "video_link": (
            lesson.video_url if lesson.video_url.lower().startswith("https://") else ""
        ),
        "previous": sequence[index - 1] if index else None,
        "next": sequence[index + 1] if has_next else None,
    }
    return render(request, "portal/courses/lesson.html", context)


@login_required
@require_POST
def lesson_complete(request: HttpRequest, slug: str, lesson_id: int) -> HttpResponse:
    member = _require_member(request)
    course = _get_course_or_404(request, slug)
    lesson = _get_lesson_or_404(request, course, lesson_id)
    try:
        complete_lesson(member=member, lesson=lesson)
    except DomainError as error:
        messages.error(request, error.message)
        return redirect("portal:course", slug=course.slug)

    enrolment = get_enrolment(member=member, course=course)
    if enrolment.completed_at is not None:
        messages.success(request, f"You completed {course.title}.")
    if request.htmx:
        return render(
            request,
            "portal/courses/_lesson_done.html",
            {"course": course, "lesson": lesson, "is_done": True},
        )
    return redirect("portal:lesson", slug=course.slug, lesson_id=lesson.pk)


@login_required
@require_GET
def lesson_download(request: HttpRequest, slug: str, download_id: int) -> HttpResponse:
    """Send a lesson file to an enrolled member or staff; never a public URL."""
    member = get_member_for_user(request.user)
    course = _get_course_or_404(request, slug)
    try:
        download = access_download(
            course=course, download_id=download_id, is_staff=request.user.is_staff
        )
    except LessonDownload.DoesNotExist:
        raise Http404("Download not found.") from None
    enrolment = get_enrolment(member=member, course=course)
    if enrolment is None and not request.user.is_staff:
        raise PermissionDenied(f"Enrol in {course.title} to download its files.")

    try:
        handle = download.file.open("rb")
    except FileNotFoundError:
        raise Http404("The file of this download is missing.") from None
    name = download.file.name.rsplit("/", 1)[-1]
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    response = FileResponse(
        handle, as_attachment=True, filename=name, content_type=content_type
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
@require_http_methods(["GET", "POST"])
def quiz_take(request: HttpRequest, slug: str) -> HttpResponse:
    """Show the course quiz and grade a submission on the server."""
    member = get_member_for_user(request.user)
    course = _get_course_or_404(request, slug)
    try:
        quiz = Quiz.objects.get(course=course)
    except Quiz.DoesNotExist:
        raise Http404("This course has no quiz.") from None
    enrolment = get_enrolment(member=member, course=course)
    if enrolment is None and not request.user.is_staff:
        messages.info(request, f"Enrol in {course.title} to take its quiz.")
        return redirect("portal:course", slug=course.slug)

    questions = get_quiz_with_questions(quiz=quiz)
    result = None
    if request.method == "POST":
        member = _require_member(request)
        answers = {q.pk: request.POST.getlist(f"question_{q.pk}") for q in questions}
        try:
            result = submit_quiz(member=member, quiz=quiz, answers=answers)
        except DomainError as error:
            messages.error(request, error.message)
        enrolment = get_enrolment(member=member, course=course)

    attempts = list_quiz_attempts(enrolment=enrolment, quiz=quiz)
    certifications = list_active_certifications(course=course)
    has_passed = any(attempt.passed for attempt in attempts)
    context = {
        "course": course,
        "quiz": quiz,
        "questions": questions,
        "attempts": attempts,
        "attempts_left": count_attempts_left(
            quiz=quiz,
            attempts=attempts,
            reset_at=enrolment.quiz_attempts_reset_at if enrolment else None,
        ),
        "has_passed": has_passed,
        # A passed quiz is retaken only to earn its certification again.
        "can_retake": not has_passed or bool(certifications),
        "result": result,
        "enrolment": enrolment,
        "certificates": list(result.certificates.all()) if result else [],
    }
    return render(request, "portal/courses/quiz.html", context)


@login_required
@require_GET
def learning_path_detail(request: HttpRequest, slug: str) -> HttpResponse:
    member = get_member_for_user(request.user)
    try:
        path = access_learning_path(slug=slug, member=member)
    except LearningPath.DoesNotExist:
        raise Http404("Learning path not found.") from None
    done = sum(1 for course in path.steps if course.completed_at)
    return render(
        request,
        "portal/courses/learning_path.html",
        {"path": path, "done_count": done},
    )


@login_required
@require_GET
def certificate_list(request: HttpRequest) -> HttpResponse:
    """List the member's certificates with their status."""
    member = _require_member(request)
    now = timezone.now()
    certificates = list_member_certificates(member=member)
    paginator = Paginator(certificates, CERTIFICATES_PER_PAGE)
    page = paginator.get_page(request.GET.get("page"))
    rows = [
        {
            "certificate": c,
            "status": get_certificate_status(c, now=now),
            "is_recertification_due": is_recertification_due(
                c,
                now=now,
                time_zone=member.time_zone,
                is_superseded=c.is_superseded,
            ),
        }
        for c in page.object_list
    ]
    return render(
        request,
        "portal/certificates/list.html",
        {"page_obj": page, "rows": rows},
    )


@login_required
@require_GET
def certificate_pdf(request: HttpRequest, code) -> HttpResponse:
    """Send the holder their certificate as a PDF; 404 for anyone else.

    A revoked certificate gets a 410 page that says when it was revoked, in
    place of a PDF that would look valid.
    """
    member = _require_member(request)
    try:
        certificate = access_member_certificate(member=member, code=code)
    except MemberCertificate.DoesNotExist:
        raise Http404("Certificate not found.") from None

    try:
        data = render_certificate_pdf(
            certificate,
            verification_url=build_verification_url(certificate, request=request),
        )
    except DomainError as error:
        if error.code != "revoked":
            raise
        return render(
            request,
            "portal/certificates/revoked.html",
            {"certificate": certificate},
            status=410,
        )

    response = HttpResponse(data, content_type="application/pdf")
    slug = certificate.certification.slug
    response["Content-Disposition"] = f'attachment; filename="certificate-{slug}.pdf"'
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
def certificate_verify(request: HttpRequest, code) -> HttpResponse:
    """Show whether a certificate is valid, expired or revoked, to anyone.

    Only the holder's name, the certification and the dates are shown.
    """
    certificate = get_certificate_by_code(code)
    if certificate is None:
        return render(
            request,
            "portal/certificates/verify.html",
            {"certificate": None, "code": code},
            status=404,
        )
    return render(
        request,
        "portal/certificates/verify.html",
        {
            "certificate": certificate,
            "status": get_certificate_status(certificate, now=timezone.now()),
            "verification_url": build_verification_url(certificate, request=request),
        },
    )


def _parse_day(request: HttpRequest, name: str, default: date) -> date:
    raw = request.GET.get(name, "").strip()
    if not raw:
        return default
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise DomainError(
            f"Invalid {name} date {raw!r}: use the form YYYY-MM-DD.", field=name
        ) from None


@login_required
@require_GET
def completion_report(request: HttpRequest) -> HttpResponse:
    """Show course completion % of enrolments started in a window, to staff.

    The window is [start, end) in UTC and defaults to the last 90 days.
    """
    if not request.user.is_staff:
        raise PermissionDenied("Only staff see the course completion report.")
    today = timezone.now().date()
    default_start = today - timedelta(days=REPORT_DEFAULT_DAYS)
    default_end = today + timedelta(days=1)
    try:
        start = _parse_day(request, "start", default_start)
        end = _parse_day(request, "end", default_end)
        if end <= start:
            raise DomainError(
                f"The end date {end} is not after the start date {start}: pick an "
                "end date after the start.",
                field="end",
            )
    except DomainError as error:
        messages.error(request, error.message)
        start, end = default_start, default_end

    rates = get_course_completion_rates(start=start, end=end)
    return render(
        request,
        "portal/courses/completion_report.html",
        {"rates": rates, "start": start, "end": end},
    )
