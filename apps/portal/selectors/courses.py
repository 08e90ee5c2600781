"""Reads of courses, progress and certificates that pages, API and reports share.

Progress counts published lessons only: a lesson that is unpublished after a
member completed it stops counting on both sides of the fraction, and the
completion row stays, so it counts again if the lesson is published again.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import (
    Count,
    DateTimeField,
    Exists,
    IntegerField,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.urls import reverse

from apps.membership.models import Account, Member
from apps.portal.models import (
    Certification,
    Course,
    CourseEnrolment,
    CourseModule,
    LearningPath,
    LearningPathCourse,
    Lesson,
    LessonCompletion,
    LessonDownload,
    MemberCertificate,
    Quiz,
    QuizAttempt,
    QuizChoice,
    QuizQuestion,
)


def _count(queryset: QuerySet, group_field: str) -> Coalesce:
    """Return a correlated COUNT subquery of `queryset`, 0 when it has no rows."""
    counted = (
        queryset.order_by()
        .values(group_field)
        .annotate(total=Count("pk"))
        .values("total")[:1]
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


# Progress ---------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    """Published lessons done out of the course's published lessons."""

    done: int
    total: int

    @property
    def percent(self) -> int | None:
        """Return the share done in whole percent, or None with nothing to do."""
        if self.total == 0:
            return None
        return self.done * 100 // self.total


def annotate_course_progress(
    courses: QuerySet[Course], *, member: Member | None
) -> QuerySet[Course]:
    """Add lesson counts and the member's enrolment to each course, in one query.

    Annotations: `published_lessons`, `lessons_done` (published lessons the
    member completed), `enrolment_id`, `enrolled_at` and `completed_at`.
    """
    courses = courses.annotate(
        published_lessons=_count(
            Lesson.objects.filter(module__course=OuterRef("pk"), is_published=True),
            "module__course",
        )
    )
    if member is None:
        return courses.annotate(
            lessons_done=Value(0),
            enrolment_id=Value(None, output_field=IntegerField()),
            enrolled_at=Value(None, output_field=DateTimeField()),
            completed_at=Value(None, output_field=DateTimeField()),
        )
    enrolments = CourseEnrolment.objects.filter(member=member, course=OuterRef("pk"))
    return courses.annotate(
        lessons_done=_count(
            LessonCompletion.objects.filter(
                enrolment__member=member,
                enrolment__course=OuterRef("pk"),
                lesson__is_published=True,
            ),
            "enrolment",
        ),
        enrolment_id=Subquery(enrolments.values("pk")[:1]),
        enrolled_at=Subquery(enrolments.values("started_at")[:1]),
        completed_at=Subquery(enrolments.values("completed_at")[:1]),
    )


def get_progress(*, enrolment: CourseEnrolment) -> Progress:
    """Return an enrolment's progress over the course's published lessons."""
    total = Lesson.objects.filter(
        module__course_id=enrolment.course_id, is_published=True
    ).count()
    done = LessonCompletion.objects.filter(
        enrolment=enrolment, lesson__is_published=True
    ).count()
    return Progress(done=done, total=total)


def has_passed_quiz(*, enrolment: CourseEnrolment, quiz: Quiz) -> bool:
    return QuizAttempt.objects.filter(
        enrolment=enrolment, quiz=quiz, passed=True
    ).exists()


# Catalogue, courses and lessons -----------------------------------------------


def list_published_courses(*, member: Member | None) -> QuerySet[Course]:
    """Return the published courses in catalogue order, with the member's progress."""
    return annotate_course_progress(
        Course.objects.filter(is_published=True), member=member
    ).order_by("position", "title", "pk")


def list_published_learning_paths(*, member: Member | None) -> list[LearningPath]:
    """Return the published learning paths, each with its published courses.

    Each path gets `steps`, its published courses in order, each annotated
    with the member's progress. Two queries whatever the number of paths.
    """
    steps = LearningPathCourse.objects.filter(course__is_published=True).order_by(
        "position", "pk"
    )
    course_rows = annotate_course_progress(
        Course.objects.filter(is_published=True), member=member
    )
    paths = list(
        LearningPath.objects.filter(is_published=True).prefetch_related(
            Prefetch("learningpathcourse_set", queryset=steps, to_attr="path_steps")
        )
    )
    course_ids = {step.course_id for path in paths for step in path.path_steps}
    courses = {c.pk: c for c in course_rows.filter(pk__in=course_ids)}
    for path in paths:
        path.steps = [courses[step.course_id] for step in path.path_steps]
    return paths


def access_learning_path(*, slug: str, member: Member | None) -> LearningPath:
    """Return a published learning path with its published courses as `steps`.

    Raise LearningPath.DoesNotExist for an unknown or unpublished path.
    """
    path = LearningPath.objects.get(slug=slug, is_published=True)
    steps = list(
        LearningPathCourse.objects.filter(path=path, course__is_published=True)
        .order_by("position", "pk")
        .values_list("course_id", flat=True)
    )
    courses = {
        c.pk: c
        for c in annotate_course_progress(
            Course.objects.filter(pk__in=steps), member=member
        )
    }
    path.steps = [courses[course_id] for course_id in steps]
    return path


def access_course(*, slug: str, is_staff: bool = False) -> Course:
    """Return a course the viewer may see: published ones, and any for staff.

    Raise Course.DoesNotExist otherwise, so callers return 404 either way.
    """
    courses = Course.objects.select_related("quiz")
    if not is_staff:
        courses = courses.filter(is_published=True)
    return courses.get(slug=slug)


def list_course_modules(*, course: Course, include_unpublished: bool) -> list:
    """Return the course's modules with their lessons as `lesson_list`.

    Members see published lessons only; staff previewing a course see all.
    Two queries whatever the number of modules and lessons.
    """
    lessons = Lesson.objects.order_by("position", "pk").only(
        "pk", "module_id", "title", "slug", "position", "is_published"
    )
    if not include_unpublished:
        lessons = lessons.filter(is_published=True)
    return list(
        CourseModule.objects.filter(course=course)
        .order_by("position", "pk")
        .prefetch_related(Prefetch("lessons", queryset=lessons, to_attr="lesson_list"))
    )


def get_enrolment(*, member: Member | None, course: Course) -> CourseEnrolment | None:
    if member is None:
        return None
    return CourseEnrolment.objects.filter(member=member, course=course).first()


def list_completed_lesson_ids(*, enrolment: CourseEnrolment | None) -> set[int]:
    if enrolment is None:
        return set()
    return set(
        LessonCompletion.objects.filter(enrolment=enrolment).values_list(
            "lesson_id", flat=True
        )
    )


def list_missing_prerequisites(*, member: Member | None, course: Course) -> list:
    """Return the course's published prerequisites the member has not completed.

    An unpublished prerequisite is skipped, because nobody could complete it.
    """
    prerequisites = course.prerequisites.filter(is_published=True).order_by(
        "position", "title"
    )
    if member is None:
        return list(prerequisites)
    completed = CourseEnrolment.objects.filter(
        member=member, course=OuterRef("pk"), completed_at__isnull=False
    )
    return list(prerequisites.exclude(Exists(completed)))


def access_lesson(*, course: Course, lesson_id: int, is_staff: bool) -> Lesson:
    """Return a lesson of the course: published ones, any for staff.

    Raise Lesson.DoesNotExist otherwise.
    """
    lessons = Lesson.objects.select_related("module").prefetch_related("downloads")
    if not is_staff:
        lessons = lessons.filter(is_published=True)
    return lessons.get(pk=lesson_id, module__course=course)


def list_lesson_sequence(*, course: Course) -> list[tuple[int, str]]:
    """Return (id, title) of the course's published lessons in reading order."""
    return list(
        Lesson.objects.filter(module__course=course, is_published=True)
        .order_by("module__position", "module_id", "position", "pk")
        .values_list("pk", "title")
    )


def access_download(
    *, course: Course, download_id: int, is_staff: bool
) -> LessonDownload:
    """Return a download of a lesson of the course, published unless staff.

    Raise LessonDownload.DoesNotExist otherwise.
    """
    downloads = LessonDownload.objects.select_related("lesson")
    if not is_staff:
        downloads = downloads.filter(lesson__is_published=True)
    return downloads.get(pk=download_id, lesson__module__course=course)


def get_video_embed_url(url: str) -> str | None:
    """Return the https embed address of a lesson video, or None to show a link.

    Only hosts in settings.RM6_VIDEO_EMBED_HOSTS are embedded. Watch pages of
    YouTube and Vimeo are turned into their embed addresses, which are on
    those hosts' embed domains.
    """
    if not url:
        return None
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    if parts.scheme != "https" or parts.username or parts.password:
        return None
    if host in ("www.youtube.com", "youtube.com", "m.youtube.com"):
        if parts.path == "/watch":
            video_id = parse_qs(parts.query).get("v", [""])[0]
            url = f"https://www.youtube-nocookie.com/embed/{video_id}"
    elif host == "youtu.be":
        url = f"https://www.youtube-nocookie.com/embed{parts.path}"
    elif host in ("vimeo.com", "www.vimeo.com"):
        url = f"https://player.vimeo.com/video{parts.path}"
    parts = urlsplit(url)
    if (parts.hostname or "").lower() not in settings.RM6_VIDEO_EMBED_HOSTS:
        return None
    if len(parts.path.strip("/").split("/")) < 2:
        return None
    return url


# Quizzes ------------------------------------------------------------------------


def get_quiz_with_questions(*, quiz: Quiz) -> list[QuizQuestion]:
    """Return the quiz's questions, each with `choice_list` and `is_multiple`.

    A question with more than one correct choice takes several answers.
    Two queries whatever the number of questions.
    """
    questions = list(
        QuizQuestion.objects.filter(quiz=quiz)
        .order_by("position", "pk")
        .prefetch_related(
            Prefetch(
                "choices",
                queryset=QuizChoice.objects.order_by("position", "pk"),
                to_attr="choice_list",
            )
        )
    )
    for question in questions:
        question.is_multiple = sum(c.is_correct for c in question.choice_list) > 1
    return questions


def list_quiz_attempts(*, enrolment: CourseEnrolment | None, quiz: Quiz) -> list:
    if enrolment is None:
        return []
    return list(
        QuizAttempt.objects.filter(enrolment=enrolment, quiz=quiz).order_by("-number")
    )


def count_attempts_left(
    *,
    quiz: Quiz,
    attempts: list[QuizAttempt],
    reset_at: datetime | None = None,
) -> int | None:
    """Return how many attempts remain before the next pass, or None for no limit.

    The limit counts the attempts since the member's last pass, so a member
    who passed can retake the quiz to recertify with a full set of attempts.
    Attempts before `reset_at` (the enrolment's `quiz_attempts_reset_at`)
    do not count either.
    """
    if quiz.max_attempts is None:
        return None
    since_pass = 0
    for attempt in sorted(attempts, key=lambda a: a.number, reverse=True):
        if attempt.passed:
            break
        if reset_at is not None and attempt.submitted_at < reset_at:
            break
        since_pass += 1
    return max(quiz.max_attempts - since_pass, 0)


# Certificates -------------------------------------------------------------------


class CertificateStatus:
    VALID = "valid"
    EXPIRED = "expired"
    REVOKED = "revoked"


def get_certificate_status(certificate: MemberCertificate, *, now: datetime) -> str:
    """Return valid, expired or revoked; a certificate lapses at `expires_at`."""
    if certificate.revoked_at is not None:
        return CertificateStatus.REVOKED
    if now >= certificate.expires_at:
        return CertificateStatus.EXPIRED
    return CertificateStatus.VALID


def get_certificate_by_code(code) -> MemberCertificate | None:
    """Return the certificate with this verification code, or None."""
    return (
        MemberCertificate.objects.select_related("certification")
        .filter(verification_code=code)
        .first()
    )


def build_verification_url(
    certificate: MemberCertificate, *, request: HttpRequest | None = None
) -> str:
    """Return the absolute public address that verifies the certificate.

    With a request the address uses the host and scheme the site was reached
    on. Code without a request (emails, tasks) falls back to the
    `RM6_SITE_URL` setting.
    """
    path = reverse(
        "portal:certificate_verify", kwargs={"code": certificate.verification_code}
    )
    if request is not None:
        return request.build_absolute_uri(path)
    return settings.SITE_URL.rstrip("/") + path


def get_reminder_window_start(
    *, expires_at: datetime, remind_days_before: int, time_zone: str
) -> datetime:
    """Return when the recertification reminder for an expiry becomes due.

    That is RM6_CERTIFICATE_REMINDER_HOUR, local time, on the holder's local
    calendar day `remind_days_before` days before their local expiry day.
    DUE_REMINDERS_SQL applies the same rule in the database, so change both
    together.
    """
    zone = ZoneInfo(time_zone)
    local_expiry_day = expires_at.astimezone(zone).date()
    reminder_day = local_expiry_day - timedelta(days=remind_days_before)
    return datetime.combine(
        reminder_day, time(settings.RM6_CERTIFICATE_REMINDER_HOUR), tzinfo=zone
    )


def is_recertification_due(
    certificate: MemberCertificate,
    *,
    now: datetime,
    time_zone: str,
    is_superseded: bool,
) -> bool:
    """Return whether the holder should recertify now.

    That is once the reminder email is due (`get_reminder_window_start`, in
    the holder's `time_zone`) or once the certificate expired, and never for
    a revoked or superseded one. Pass `is_superseded` from the annotation of
    `list_member_certificates`, which applies the rule of DUE_REMINDERS_SQL. A
    certification with `remind_days_before` 0 sends no reminder, so its
    certificates are due only once expired.
    """
    if certificate.revoked_at is not None:
        return False
    if is_superseded:
        return False
    if now >= certificate.expires_at:
        return True
    remind_days_before = certificate.certification.remind_days_before
    if remind_days_before <= 0:
        return False
    window_start = get_reminder_window_start(
        expires_at=certificate.expires_at,
        remind_days_before=remind_days_before,
        time_zone=time_zone,
    )
    return now >= window_start


def _list_newer_certificates(
    *, member_id, certification_id, expires_at
) -> QuerySet[MemberCertificate]:
    """Return the certificates that supersede one with these values.

    Newer means of the same member and certification, not revoked, and
    expiring later, as in the NOT EXISTS clause of DUE_REMINDERS_SQL. The
    values may be OuterRef expressions, for use in a subquery.
    """
    return MemberCertificate.objects.filter(
        member_id=member_id,
        certification_id=certification_id,
        revoked_at__isnull=True,
        expires_at__gt=expires_at,
    )


def build_newer_certificate_exists() -> Exists:
    """Build the Exists that is true when a newer certificate supersedes one."""
    return Exists(
        _list_newer_certificates(
            member_id=OuterRef("member_id"),
            certification_id=OuterRef("certification_id"),
            expires_at=OuterRef("expires_at"),
        )
    )


def list_member_certificates(*, member: Member) -> QuerySet[MemberCertificate]:
    """Return the member's certificates, newest first.

    Annotation: `is_superseded`, true when a newer certificate of the same
    certification replaces one (`build_newer_certificate_exists`).
    """
    return (
        MemberCertificate.objects.filter(member=member)
        .select_related("certification__course")
        .annotate(is_superseded=build_newer_certificate_exists())
        .order_by("-issued_at", "-pk")
    )


def access_member_certificate(*, member: Member, code) -> MemberCertificate:
    """Return the member's own certificate by code.

    Raise MemberCertificate.DoesNotExist for another member's certificate too.
    """
    return MemberCertificate.objects.select_related("certification").get(
        member=member, verification_code=code
    )


def list_member_enrolments(*, member: Member) -> QuerySet[CourseEnrolment]:
    """Return the member's enrolments, newest first, with progress annotations.

    Annotations: `published_lessons` and `lessons_done`.
    """
    return (
        CourseEnrolment.objects.filter(member=member)
        .select_related("course")
        .annotate(
            published_lessons=_count(
                Lesson.objects.filter(
                    module__course=OuterRef("course_id"), is_published=True
                ),
                "module__course",
            ),
            lessons_done=_count(
                LessonCompletion.objects.filter(
                    enrolment=OuterRef("pk"), lesson__is_published=True
                ),
                "enrolment",
            ),
        )
        .order_by("-started_at", "-pk")
    )


def list_active_certifications(*, course: Course) -> list[Certification]:
    return list(Certification.objects.filter(course=course, is_active=True))


# Reminders ----------------------------------------------------------------------

# NOTE: PostgreSQL reads Member.time_zone with its own copy of the IANA
# time zone database. A name that Python's zoneinfo accepts but PostgreSQL
# does not would fail the whole batch with an error.
# A reminder is due from `reminder_hour` local time on the day that is
# `remind_days_before` local calendar days before the local expiry date, the
# rule that `get_reminder_window_start` applies in Python. A
# run that comes later the same day, or on a later day before expiry, still
# sends it. Superseded certificates (the member has a newer unrevoked one
# of the same certification that expires later) get no reminder, the rule
# that `build_newer_certificate_exists` applies in the ORM.
DUE_REMINDERS_SQL = f"""
    SELECT c.id
    FROM {MemberCertificate._meta.db_table} c
    JOIN {Member._meta.db_table} m ON m.id = c.member_id
    JOIN {Certification._meta.db_table} k ON k.id = c.certification_id
    WHERE c.reminder_sent_at IS NULL
      AND c.revoked_at IS NULL
      AND c.expires_at > %(now)s
      -- A cheap bound for the index: a local reminder day is never more
      -- than remind_days_before + 2 days of UTC time before the expiry.
      AND c.expires_at <= %(now)s + make_interval(days => k.remind_days_before + 2)
      AND k.remind_days_before > 0
      AND m.deactivated_at IS NULL
      AND (%(now)s AT TIME ZONE m.time_zone) >= (
          ((c.expires_at AT TIME ZONE m.time_zone)::date - k.remind_days_before)
          + make_interval(hours => %(reminder_hour)s)
      )
      AND NOT EXISTS (
          SELECT 1 FROM {MemberCertificate._meta.db_table} newer
          WHERE newer.member_id = c.member_id
            AND newer.certification_id = c.certification_id
            AND newer.revoked_at IS NULL
            AND newer.expires_at > c.expires_at
      )
    ORDER BY c.id
    LIMIT %(limit)s
    FOR UPDATE OF c SKIP LOCKED
"""

# Lapsed certificates whose expiry the task has not handled yet.
DUE_EXPIRIES_SQL = f"""
    SELECT c.id
    FROM {MemberCertificate._meta.db_table} c
    WHERE c.expiry_recorded_at IS NULL
      AND c.revoked_at IS NULL
      AND c.expires_at <= %(now)s
    ORDER BY c.id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
"""


def has_newer_certificate(*, certificate: MemberCertificate) -> bool:
    """Return whether the holder has a later-expiring unrevoked one of its kind."""
    # A certificate never expires after itself, so it is never its own newer one.
    return _list_newer_certificates(
        member_id=certificate.member_id,
        certification_id=certificate.certification_id,
        expires_at=certificate.expires_at,
    ).exists()


# Course completion % --------------------------------------------------------------


@dataclass(frozen=True)
class CompletionRate:
    """Enrolments started in a window, and how many of them were completed."""

    label: str
    started: int
    completed: int

    @property
    def percent(self) -> float | None:
        """Return the completion %, or None ("no data") without enrolments."""
        if self.started == 0:
            return None
        return round(100 * self.completed / self.started, 1)


def _window_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    def midnight(day: date) -> datetime:
        return datetime.combine(day, time.min, tzinfo=UTC)

    return midnight(start), midnight(end)


NO_ACCOUNT_LABEL = "No account (awaiting review)"

# Breakdowns of the completion report: (key, enrolment field, value labels).
COMPLETION_BREAKDOWNS = [
    ("by_segment", "member__account__segment", dict(Account.Segment.choices)),
    ("by_cs_tier", "member__account__cs_tier", dict(Account.CsTier.choices)),
    (
        "by_lifecycle_stage",
        "member__lifecycle_stage",
        dict(Member.LifecycleStage.choices),
    ),
    ("by_role", "member__role", dict(Member.Role.choices)),
]


def get_course_completion_rates(*, start: date, end: date) -> dict:
    """Return the course completion % of enrolments started in [start, end), UTC.

    An enrolment counts as completed if it was completed by the time of the
    report. The result has `overall`, `by_course` (courses with enrolments
    in the window) and one list per breakdown: `by_segment` and `by_cs_tier`
    of the member's account, `by_lifecycle_stage` and `by_role` of the
    member. Six queries.
    """
    since, until = _window_bounds(start, end)
    enrolments = CourseEnrolment.objects.filter(
        started_at__gte=since, started_at__lt=until
    )
    totals = {
        "started": Count("pk"),
        "completed": Count("pk", filter=Q(completed_at__isnull=False)),
    }
    overall = enrolments.aggregate(**totals)
    by_course = (
        enrolments.values("course_id", "course__title")
        .annotate(**totals)
        .order_by("course__title", "course_id")
    )
    rates = {
        "overall": CompletionRate("All courses", **overall),
        "by_course": [
            CompletionRate(row["course__title"], row["started"], row["completed"])
            for row in by_course
        ],
    }
    for key, field, labels in COMPLETION_BREAKDOWNS:
        rows = enrolments.values(field).annotate(**totals).order_by(field)
        rates[key] = [
            CompletionRate(
                NO_ACCOUNT_LABEL
                if row[field] is None
                else labels.get(row[field], row[field]),
                row["started"],
                row["completed"],
            )
            for row in rows
        ]
    return rates


# Scorecard measure ------------------------------------------------------------------

# Per member: courses completed within the measure's window, (since, now].
_MEMBER_COMPLETIONS_SQL = f"""
    SELECT m.id AS member_id, m.account_id,
           count(e.id) FILTER (
               WHERE e.completed_at > %(since)s AND e.completed_at <= %(now)s
           ) AS value
    FROM {Member._meta.db_table} m
    LEFT JOIN {CourseEnrolment._meta.db_table} e ON e.member_id = m.id
    WHERE m.id IN (SELECT id FROM scope)
    GROUP BY m.id, m.account_id
"""


def build_course_completions_sql(level: str) -> str:
    """Return the course completions measure's SQL for a scorecard level.

    A member's value is the number of courses they completed in the
    measure's window. An account's value is the sum over its members,
    deactivated ones excluded.
    """
    if level == "member":
        return f"""
            WITH scope AS (
                SELECT id FROM {Member._meta.db_table}
                WHERE id = ANY(%(subject_ids)s::bigint[])
            ),
            completions AS ({_MEMBER_COMPLETIONS_SQL})
            SELECT member_id AS subject_id, value FROM completions
        """
    return f"""
        WITH scope AS (
            SELECT id FROM {Member._meta.db_table}
            WHERE account_id = ANY(%(subject_ids)s::bigint[])
              AND deactivated_at IS NULL
        ),
        completions AS ({_MEMBER_COMPLETIONS_SQL})
        SELECT account_id AS subject_id, sum(value) AS value
        FROM completions
        GROUP BY account_id
    """


# Data export ------------------------------------------------------------------------


def export_member_courses(member: Member) -> dict:
    """Return the member's enrolments, lessons done, attempts and certificates."""
    enrolments = CourseEnrolment.objects.filter(member=member).select_related("course")
    completions = LessonCompletion.objects.filter(
        enrolment__member=member
    ).select_related("lesson")
    attempts = QuizAttempt.objects.filter(enrolment__member=member).select_related(
        "quiz"
    )
    certificates = MemberCertificate.objects.filter(member=member).select_related(
        "certification"
    )
    return {
        "enrolments": [
            {
                "course": e.course.title,
                "started_at": e.started_at,
                "completed_at": e.completed_at,
            }
            for e in enrolments.order_by("started_at", "pk")
        ],
        "lessons_completed": [
            {
                "enrolment_id": c.enrolment_id,
                "lesson": c.lesson.title,
                "completed_at": c.completed_at,
            }
            for c in completions.order_by("completed_at", "pk")
        ],
        "quiz_attempts": [
            {
                "quiz": a.quiz.title,
                "number": a.number,
                "answers": a.answers,
                "score": a.score,
                "passed": a.passed,
                "submitted_at": a.submitted_at,
            }
            for a in attempts.order_by("submitted_at", "pk")
        ],
        "certificates": [
            {
                "certification": c.certification.title,
                "holder_name": c.holder_name,
                "verification_code": str(c.verification_code),
                "issued_at": c.issued_at,
                "expires_at": c.expires_at,
                "revoked_at": c.revoked_at,
            }
            for c in certificates.order_by("issued_at", "pk")
        ],
    }
