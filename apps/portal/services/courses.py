"""Enrolment, lesson completion, quiz grading and course completion.

Every write that changes an enrolment's state takes the enrolment's row
lock first, so lesson completions and quiz submissions of one member in one
course run one at a time. That keeps the attempt numbering exact (and with
it `max_attempts`) and records `portal.course_completed` exactly once.
"""

import logging
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from apps.lifecycle.services import record_activity
from apps.membership.models import AuditEntry, Member
from apps.portal.models import (
    Course,
    CourseEnrolment,
    Lesson,
    LessonCompletion,
    MemberCertificate,
    Quiz,
    QuizAttempt,
    QuizQuestion,
)
from apps.portal.selectors.courses import (
    count_attempts_left,
    get_progress,
    get_quiz_with_questions,
    has_passed_quiz,
    list_active_certifications,
    list_missing_prerequisites,
    list_quiz_attempts,
)
from apps.portal.services.certificates import issue_certificate
from rm6.errors import DomainError

logger = logging.getLogger(__name__)


def _check_member(member: Member) -> None:
    if member.deactivated_at is not None:
        raise DomainError(
            "This member is deactivated, so it cannot take courses.",
            code="forbidden",
        )


@transaction.atomic
def enrol_member(
    *, member: Member, course: Course, now: datetime | None = None
) -> CourseEnrolment:
    """Enrol the member in a published course whose prerequisites they completed.

    Enrolling twice returns the first enrolment and records nothing more.
    """
    _check_member(member)
    if not course.is_published:
        raise DomainError(
            f"The course {course.title!r} is not published, so nobody can enrol.",
            field="course",
            code="not_published",
        )
    existing = CourseEnrolment.objects.filter(member=member, course=course).first()
    if existing is not None:
        return existing
    missing = list_missing_prerequisites(member=member, course=course)
    if missing:
        titles = ", ".join(repr(c.title) for c in missing)
        raise DomainError(
            f"You cannot enrol in {course.title!r} yet: complete the prerequisite "
            f"course(s) {titles} first.",
            field="course",
            code="prerequisites_missing",
        )

    try:
        with transaction.atomic():
            enrolment = CourseEnrolment.objects.create(
                member=member, course=course, started_at=now or timezone.now()
            )
    except IntegrityError:
        # A concurrent request enrolled the member first.
        return CourseEnrolment.objects.get(member=member, course=course)

    record_activity(
        member=member,
        kind="portal.course_enrolled",
        subject=course,
        occurred_at=enrolment.started_at,
        properties={"course": course.slug, "enrolment_id": enrolment.pk},
    )
    return enrolment


def _lock_enrolment(*, member: Member, course: Course) -> CourseEnrolment:
    enrolment = (
        CourseEnrolment.objects.select_for_update()
        .filter(member=member, course=course)
        .first()
    )
    if enrolment is None:
        raise DomainError(
            f"You are not enrolled in {course.title!r}: enrol in the course first.",
            field="course",
            code="not_enrolled",
        )
    return enrolment


def record_course_view(*, member: Member, course: Course) -> None:
    record_activity(
        member=member,
        kind="portal.course_viewed",
        subject=course,
        properties={"course": course.slug},
    )


def record_lesson_view(*, member: Member, lesson: Lesson, course: Course) -> None:
    record_activity(
        member=member,
        kind="portal.lesson_viewed",
        subject=lesson,
        properties={"course": course.slug, "lesson_id": lesson.pk},
    )


@transaction.atomic
def complete_lesson(
    *, member: Member, lesson: Lesson, now: datetime | None = None
) -> LessonCompletion:
    """Mark a published lesson done for an enrolled member.

    Repeating it changes nothing. The course completes when this was the
    last thing left to do.
    """
    _check_member(member)
    course = lesson.module.course
    if not lesson.is_published or not course.is_published:
        raise DomainError(
            f"The lesson {lesson.title!r} is not published, so it cannot be completed.",
            field="lesson",
            code="not_published",
        )
    enrolment = _lock_enrolment(member=member, course=course)
    now = now or timezone.now()

    completion, created = LessonCompletion.objects.get_or_create(
        enrolment=enrolment, lesson=lesson, defaults={"completed_at": now}
    )
    if not created:
        return completion

    record_activity(
        member=member,
        kind="portal.lesson_completed",
        subject=lesson,
        occurred_at=now,
        properties={"course": course.slug, "lesson_id": lesson.pk},
    )
    complete_course_if_done(enrolment=enrolment, now=now)
    return completion


def complete_course_if_done(
    *, enrolment: CourseEnrolment, now: datetime | None = None
) -> bool:
    """Complete the enrolment when every published lesson is done and the quiz,
    if any, is passed; return whether this call completed it.

    The caller holds the enrolment's row lock. The conditional UPDATE makes a
    second completion impossible, so `portal.course_completed` is recorded
    exactly once per enrolment. A course with neither published lessons nor
    a quiz has nothing to complete.
    """
    if enrolment.completed_at is not None:
        return False
    course = enrolment.course
    progress = get_progress(enrolment=enrolment)
    quiz = Quiz.objects.filter(course=course).first()
    if progress.done < progress.total:
        return False
    if quiz is None and progress.total == 0:
        return False
    if quiz is not None and not has_passed_quiz(enrolment=enrolment, quiz=quiz):
        return False

    now = now or timezone.now()
    updated = CourseEnrolment.objects.filter(
        pk=enrolment.pk, completed_at__isnull=True
    ).update(completed_at=now)
    if not updated:
        return False
    enrolment.completed_at = now

    record_activity(
        member=enrolment.member,
        kind="portal.course_completed",
        subject=course,
        occurred_at=now,
        properties={
            "course": course.slug,
            "enrolment_id": enrolment.pk,
            "lessons": progress.total,
        },
        idempotency_key=f"portal.course_completed:enrolment:{enrolment.pk}",
    )
    logger.info("course completed: enrolment %s", enrolment.pk)
    return True


def _clean_answers(
    *, quiz: Quiz, questions: list[QuizQuestion], answers: dict
) -> dict[str, list[int]]:
    """Return the answers as question id to sorted choice ids, after checks.

    Every question needs an answer, and every choice must belong to its
    question; otherwise DomainError names the question.
    """
    choices_by_question = {q.pk: {c.pk for c in q.choice_list} for q in questions}
    known = set(choices_by_question)
    cleaned: dict[str, list[int]] = {}
    for raw_question, raw_choices in answers.items():
        try:
            question_id = int(raw_question)
        except (TypeError, ValueError):
            raise DomainError(
                f"Invalid question id {raw_question!r}: use the ids of the "
                f"questions of {quiz.title!r}.",
                field="answers",
            ) from None
        if question_id not in known:
            raise DomainError(
                f"Question {question_id} is not part of {quiz.title!r}: send "
                "answers to that quiz's questions only.",
                field="answers",
            )
        if not isinstance(raw_choices, list | tuple):
            raw_choices = [raw_choices]
        try:
            choice_ids = sorted({int(c) for c in raw_choices})
        except (TypeError, ValueError):
            raise DomainError(
                f"Invalid choice ids {raw_choices!r} for question {question_id}: "
                "send a list of choice ids.",
                field="answers",
            ) from None
        foreign = set(choice_ids) - choices_by_question[question_id]
        if foreign:
            raise DomainError(
                f"Choice(s) {sorted(foreign)} do not belong to question {question_id}.",
                field="answers",
            )
        if choice_ids:
            cleaned[str(question_id)] = choice_ids

    unanswered = [
        position
        for position, q in enumerate(questions, start=1)
        if str(q.pk) not in cleaned
    ]
    if unanswered:
        numbers = ", ".join(str(n) for n in unanswered)
        raise DomainError(
            f"Answer every question before submitting: question(s) {numbers} "
            "have no answer.",
            field="answers",
            code="unanswered",
        )
    return cleaned


def _grade(questions: list[QuizQuestion], answers: dict[str, list[int]]) -> int:
    """Return how many questions were answered exactly right.

    A question is right when the chosen set equals its set of correct choices.
    """
    right = 0
    for question in questions:
        correct = {c.pk for c in question.choice_list if c.is_correct}
        if correct and set(answers[str(question.pk)]) == correct:
            right += 1
    return right


@transaction.atomic
def submit_quiz(
    *, member: Member, quiz: Quiz, answers: dict, now: datetime | None = None
) -> QuizAttempt:
    """Grade the member's answers on the server and store the attempt.

    `answers` maps question ids to lists of choice ids. The score is the
    percent of questions right, rounded down, and passes at `pass_mark`.
    `max_attempts` caps the attempts since the member's last pass. Retaking
    a passed quiz is allowed only where it earns a certification again.
    A pass issues the course's active certifications and may complete the
    course.
    """
    _check_member(member)
    course = quiz.course
    if not course.is_published:
        raise DomainError(
            f"The course {course.title!r} is not published.", code="not_published"
        )
    enrolment = _lock_enrolment(member=member, course=course)
    questions = get_quiz_with_questions(quiz=quiz)
    if not questions:
        raise DomainError(
            f"The quiz {quiz.title!r} has no questions yet, so it cannot be taken.",
            code="quiz_empty",
        )

    attempts = list_quiz_attempts(enrolment=enrolment, quiz=quiz)
    certifications = list_active_certifications(course=course)
    if any(a.passed for a in attempts) and not certifications:
        raise DomainError(
            f"You already passed {quiz.title!r}; there is nothing to retake it for.",
            code="already_passed",
        )
    attempts_left = count_attempts_left(
        quiz=quiz, attempts=attempts, reset_at=enrolment.quiz_attempts_reset_at
    )
    if attempts_left == 0:
        raise DomainError(
            f"You have used all {quiz.max_attempts} attempts at {quiz.title!r}. "
            "Ask the course team to reset your attempts.",
            code="max_attempts",
        )
    cleaned = _clean_answers(quiz=quiz, questions=questions, answers=answers)

    right = _grade(questions, cleaned)
    score = right * 100 // len(questions)
    now = now or timezone.now()
    last_number = (
        QuizAttempt.objects.filter(enrolment=enrolment, quiz=quiz).aggregate(
            last=Max("number")
        )["last"]
        or 0
    )
    attempt = QuizAttempt.objects.create(
        enrolment=enrolment,
        quiz=quiz,
        number=last_number + 1,
        answers=cleaned,
        score=score,
        passed=score >= quiz.pass_mark,
        submitted_at=now,
    )

    record_activity(
        member=member,
        kind="portal.quiz_passed" if attempt.passed else "portal.quiz_failed",
        subject=attempt,
        occurred_at=now,
        properties={
            "course": course.slug,
            "quiz_id": quiz.pk,
            "score": score,
            "pass_mark": quiz.pass_mark,
            "attempt": attempt.number,
        },
    )
    if attempt.passed:
        for certification in certifications:
            issue_certificate(attempt=attempt, certification=certification, now=now)
        complete_course_if_done(enrolment=enrolment, now=now)
    return attempt


@transaction.atomic
def reset_quiz_attempts(*, enrolment: CourseEnrolment, reset_by) -> bool:
    """Give the member a new set of quiz attempts and write an audit entry.

    Earlier attempts stay as they were, with their answers and scores, and
    only stop counting towards the quiz's maximum. Return False, changing
    nothing, when the course has no quiz.
    """
    if not reset_by.is_staff:
        raise DomainError("Only staff reset quiz attempts.", code="forbidden")
    enrolment = CourseEnrolment.objects.select_for_update().get(pk=enrolment.pk)
    if not Quiz.objects.filter(course_id=enrolment.course_id).exists():
        return False

    now = timezone.now()
    enrolment.quiz_attempts_reset_at = now
    enrolment.save(update_fields=["quiz_attempts_reset_at"])
    member = Member.objects.get(pk=enrolment.member_id)
    AuditEntry.objects.create(
        actor=reset_by,
        action="portal.quiz_attempts_reset",
        member=member,
        account_id=member.account_id,
        details={"enrolment_id": enrolment.pk, "course_id": enrolment.course_id},
    )
    return True


def move_merged_member_courses(
    *, survivor: Member, duplicate: Member
) -> dict[str, int]:
    """Give the survivor of a member merge the duplicate's course records.

    An enrolment in a course the survivor has not enrolled in moves as it is.
    For a course both took, the duplicate's lesson completions and quiz
    attempts join the survivor's enrolment (attempts numbered after the
    survivor's), the earlier start and completion are kept, and the
    duplicate's enrolment is deleted. Certificates move to the survivor.
    `apps.membership.services.merge.merge_members` calls it, with both
    member rows locked, through the merge handler registry.
    """
    moved = merged = 0
    survivor_enrolments = {
        e.course_id: e
        for e in CourseEnrolment.objects.select_for_update().filter(member=survivor)
    }
    for enrolment in CourseEnrolment.objects.select_for_update().filter(
        member=duplicate
    ):
        kept = survivor_enrolments.get(enrolment.course_id)
        if kept is None:
            enrolment.member = survivor
            enrolment.save(update_fields=["member"])
            moved += 1
            continue
        _merge_enrolment(kept=kept, duplicate=enrolment)
        merged += 1

    certificates = MemberCertificate.objects.filter(member=duplicate).update(
        member=survivor
    )
    return {
        "enrolments_moved": moved,
        "enrolments_merged": merged,
        "certificates_moved": certificates,
    }


def _merge_enrolment(*, kept: CourseEnrolment, duplicate: CourseEnrolment) -> None:
    done = set(
        LessonCompletion.objects.filter(enrolment=kept).values_list(
            "lesson_id", flat=True
        )
    )
    LessonCompletion.objects.filter(enrolment=duplicate).exclude(
        lesson_id__in=done
    ).update(enrolment=kept)

    last = QuizAttempt.objects.filter(enrolment=kept).aggregate(last=Max("number"))
    number = last["last"] or 0
    for attempt in QuizAttempt.objects.filter(enrolment=duplicate).order_by(
        "submitted_at", "pk"
    ):
        number += 1
        attempt.enrolment = kept
        attempt.number = number
        attempt.save(update_fields=["enrolment", "number"])

    kept.started_at = min(kept.started_at, duplicate.started_at)
    finished = [d for d in (kept.completed_at, duplicate.completed_at) if d]
    kept.completed_at = min(finished) if finished else None
    kept.save(update_fields=["started_at", "completed_at"])
    duplicate.delete()
