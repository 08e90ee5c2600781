import pytest

from apps.lifecycle.models import ActivityEvent
from apps.portal.models import CourseEnrolment
from apps.portal.services.courses import complete_lesson, enrol_member
from rm6.errors import DomainError
from tests.portal.courses import factories as cf


def test_enrol_records_event_once(member, course):
    first = enrol_member(member=member, course=course)
    second = enrol_member(member=member, course=course)

    assert first.pk == second.pk
    events = ActivityEvent.objects.filter(member=member, kind="portal.course_enrolled")
    assert events.count() == 1
    assert events.get().subject_id == str(course.pk)


def test_enrol_rejects_missing_prerequisites(member, course):
    advanced = cf.CourseFactory(title="Advanced reporting")
    advanced.prerequisites.add(course)

    with pytest.raises(DomainError) as error:
        enrol_member(member=member, course=advanced)

    assert error.value.code == "prerequisites_missing"
    assert error.value.message == (
        "You cannot enrol in 'Advanced reporting' yet: complete the prerequisite "
        "course(s) 'Reporting basics' first."
    )
    assert not CourseEnrolment.objects.filter(course=advanced).exists()


def test_enrol_rejects_started_but_incomplete_prerequisite(member, course):
    advanced = cf.CourseFactory()
    advanced.prerequisites.add(course)
    enrol_member(member=member, course=course)

    with pytest.raises(DomainError):
        enrol_member(member=member, course=advanced)


def test_enrol_after_prerequisite_completed(member, course, lessons):
    advanced = cf.CourseFactory()
    advanced.prerequisites.add(course)
    enrol_member(member=member, course=course)
    for lesson in lessons:
        complete_lesson(member=member, lesson=lesson)

    enrolment = enrol_member(member=member, course=advanced)

    assert enrolment.course == advanced


def test_enrol_ignores_unpublished_prerequisite(member, course):
    draft = cf.CourseFactory(is_published=False)
    course.prerequisites.add(draft)

    enrolment = enrol_member(member=member, course=course)

    assert enrolment.pk is not None


def test_enrol_rejects_unpublished_course(member):
    draft = cf.CourseFactory(is_published=False, title="Draft")

    with pytest.raises(DomainError) as error:
        enrol_member(member=member, course=draft)

    assert error.value.code == "not_published"


def test_complete_lesson_needs_enrolment(member, lessons):
    with pytest.raises(DomainError) as error:
        complete_lesson(member=member, lesson=lessons[0])

    assert error.value.code == "not_enrolled"


def test_complete_unpublished_lesson_rejected(member, course, lessons):
    enrol_member(member=member, course=course)
    draft = cf.LessonFactory(module=lessons[0].module, is_published=False)

    with pytest.raises(DomainError) as error:
        complete_lesson(member=member, lesson=draft)

    assert error.value.code == "not_published"


def test_complete_lesson_twice_records_once(member, course, lessons):
    enrol_member(member=member, course=course)

    complete_lesson(member=member, lesson=lessons[0])
    complete_lesson(member=member, lesson=lessons[0])

    kinds = ActivityEvent.objects.filter(member=member, kind="portal.lesson_completed")
    assert kinds.count() == 1
