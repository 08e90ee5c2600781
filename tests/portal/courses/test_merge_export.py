from datetime import timedelta

from django.utils import timezone

from apps.membership.exports import build_member_export
from apps.membership.services.merge import merge_members
from apps.portal.models import CourseEnrolment, MemberCertificate, QuizAttempt
from apps.portal.services.courses import complete_lesson, enrol_member, submit_quiz
from tests.portal.courses import factories as cf
from tests.portal.courses.helpers import make_certificate


def test_merge_moves_enrolment_of_course_survivor_lacks(db, course, lessons):
    survivor = cf.MemberFactory()
    duplicate = cf.MemberFactory(account=survivor.account)
    enrol_member(member=duplicate, course=course)
    complete_lesson(member=duplicate, lesson=lessons[0])
    certificate = make_certificate(
        expires_at=timezone.now() + timedelta(days=5), member=duplicate
    )

    merge_members(survivor=survivor, duplicate=duplicate, actor=None)

    enrolment = CourseEnrolment.objects.get(course=course)
    certificate.refresh_from_db()
    assert enrolment.member == survivor
    assert enrolment.lesson_completions.count() == 1
    assert certificate.member == survivor


def test_merge_combines_enrolments_in_same_course(db, course, lessons):
    survivor = cf.MemberFactory()
    duplicate = cf.MemberFactory(account=survivor.account)
    quiz = cf.QuizFactory(course=course)
    questions = cf.add_questions(quiz, 1)
    wrong = cf.answers_with_right(questions, 0)
    for member in (survivor, duplicate):
        enrol_member(member=member, course=course)
        complete_lesson(member=member, lesson=lessons[0])
        submit_quiz(member=member, quiz=quiz, answers=wrong)
    complete_lesson(member=duplicate, lesson=lessons[1])

    merge_members(survivor=survivor, duplicate=duplicate, actor=None)

    enrolment = CourseEnrolment.objects.get(course=course)
    assert enrolment.member == survivor
    done = enrolment.lesson_completions.values_list("lesson_id", flat=True)
    assert sorted(done) == [lessons[0].pk, lessons[1].pk]
    numbers = QuizAttempt.objects.filter(enrolment=enrolment).values_list(
        "number", flat=True
    )
    assert sorted(numbers) == [1, 2]


def test_export_lists_course_records(member, course, lessons):
    enrol_member(member=member, course=course)
    complete_lesson(member=member, lesson=lessons[0])
    make_certificate(expires_at=timezone.now() + timedelta(days=5), member=member)

    section = build_member_export(member)["courses"]

    assert [e["course"] for e in section["enrolments"]] == [course.title]
    assert [c["lesson"] for c in section["lessons_completed"]] == [lessons[0].title]
    assert [c["holder_name"] for c in section["certificates"]] == ["Ada Lovelace"]
    assert MemberCertificate.objects.count() == 1
