import threading

import pytest
from django.db import connection

from apps.lifecycle.models import ActivityEvent, Enrolment, Play
from apps.lifecycle.plays.triggers import evaluate_event_triggers
from apps.portal.models import CourseEnrolment
from apps.portal.services.courses import complete_lesson, enrol_member, submit_quiz
from tests.plays.factories import PlayFactory
from tests.portal.courses import factories as cf

COMPLETED = "portal.course_completed"


def test_course_completes_when_all_published_lessons_done(member, course, lessons):
    cf.LessonFactory(module=lessons[0].module, is_published=False)
    enrolment = enrol_member(member=member, course=course)

    for lesson in lessons:
        complete_lesson(member=member, lesson=lesson)

    enrolment.refresh_from_db()
    assert enrolment.completed_at is not None
    event = ActivityEvent.objects.get(member=member, kind=COMPLETED)
    assert event.subject_id == str(course.pk)
    assert event.account_id == member.account_id
    assert event.properties["enrolment_id"] == enrolment.pk


def test_course_with_quiz_completes_only_after_pass(member, course, lessons):
    quiz = cf.QuizFactory(course=course)
    questions = cf.add_questions(quiz, 2)
    enrolment = enrol_member(member=member, course=course)
    for lesson in lessons:
        complete_lesson(member=member, lesson=lesson)
    enrolment.refresh_from_db()
    assert enrolment.completed_at is None

    submit_quiz(member=member, quiz=quiz, answers=cf.answers_with_right(questions, 1))
    enrolment.refresh_from_db()
    assert enrolment.completed_at is None

    submit_quiz(member=member, quiz=quiz, answers=cf.answers_with_right(questions, 2))
    enrolment.refresh_from_db()
    assert enrolment.completed_at is not None


def test_course_completes_with_last_lesson_after_pass(member, course, lessons):
    quiz = cf.QuizFactory(course=course)
    questions = cf.add_questions(quiz, 1)
    enrolment = enrol_member(member=member, course=course)
    submit_quiz(member=member, quiz=quiz, answers=cf.answers_with_right(questions, 1))

    for lesson in lessons:
        complete_lesson(member=member, lesson=lesson)

    enrolment.refresh_from_db()
    assert enrolment.completed_at is not None


def test_course_completed_event_recorded_once(member, course, lessons):
    quiz = cf.QuizFactory(course=course)
    questions = cf.add_questions(quiz, 1)
    cf.CertificationFactory(course=course)
    enrol_member(member=member, course=course)
    for lesson in lessons:
        complete_lesson(member=member, lesson=lesson)
    right = cf.answers_with_right(questions, 1)

    submit_quiz(member=member, quiz=quiz, answers=right)
    # A recertification pass and repeated lesson completions change nothing.
    submit_quiz(member=member, quiz=quiz, answers=right)
    complete_lesson(member=member, lesson=lessons[0])

    assert ActivityEvent.objects.filter(member=member, kind=COMPLETED).count() == 1


def test_course_lesson_published_after_completion_keeps_completion(
    member, course, lessons
):
    enrolment = enrol_member(member=member, course=course)
    for lesson in lessons:
        complete_lesson(member=member, lesson=lesson)

    cf.LessonFactory(module=lessons[0].module)

    enrolment.refresh_from_db()
    assert enrolment.completed_at is not None


def test_course_without_lessons_or_quiz_never_completes(member):
    course = cf.CourseFactory()
    enrolment = enrol_member(member=member, course=course)

    enrolment.refresh_from_db()

    assert enrolment.completed_at is None


@pytest.mark.django_db(transaction=True)
def test_course_completed_once_under_concurrency():
    member = cf.MemberFactory()
    course = cf.CourseFactory()
    module = cf.CourseModuleFactory(course=course)
    first = cf.LessonFactory(module=module)
    second = cf.LessonFactory(module=module)
    enrol_member(member=member, course=course)
    barrier = threading.Barrier(2)
    errors: list[Exception] = []

    def complete(lesson) -> None:
        try:
            barrier.wait()
            complete_lesson(member=member, lesson=lesson)
        except Exception as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=complete, args=(x,)) for x in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert CourseEnrolment.objects.get(member=member).completed_at is not None
    assert ActivityEvent.objects.filter(member=member, kind=COMPLETED).count() == 1


def test_course_completed_play_enrols_member_once(member, course, lessons):
    play = PlayFactory(trigger=Play.Trigger.COURSE_COMPLETED, trigger_event_kind="")
    enrol_member(member=member, course=course)
    for lesson in lessons:
        complete_lesson(member=member, lesson=lesson)
    event_ids = list(ActivityEvent.objects.values_list("pk", flat=True))

    evaluate_event_triggers(event_ids=event_ids)
    evaluate_event_triggers(event_ids=event_ids)

    enrolment = Enrolment.objects.get(play=play)
    assert enrolment.member == member
    assert enrolment.subject_key == f"member:{member.pk}"
