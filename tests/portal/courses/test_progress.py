from apps.portal.selectors.courses import get_progress, list_published_courses
from apps.portal.services.courses import complete_lesson, enrol_member
from tests.portal.courses import factories as cf


def test_progress_counts_published_lessons_only(member, course, lessons):
    cf.LessonFactory(module=lessons[0].module, is_published=False)
    enrolment = enrol_member(member=member, course=course)

    complete_lesson(member=member, lesson=lessons[0])

    progress = get_progress(enrolment=enrolment)
    assert progress.total == 3
    assert progress.done == 1
    assert progress.percent == 33


def test_progress_drops_lesson_unpublished_after_completion(member, course, lessons):
    enrolment = enrol_member(member=member, course=course)
    complete_lesson(member=member, lesson=lessons[0])
    complete_lesson(member=member, lesson=lessons[1])

    lessons[0].is_published = False
    lessons[0].save(update_fields=["is_published"])

    progress = get_progress(enrolment=enrolment)
    assert progress.total == 2
    assert progress.done == 1
    assert progress.percent == 50


def test_progress_counts_lesson_again_when_republished(member, course, lessons):
    enrolment = enrol_member(member=member, course=course)
    complete_lesson(member=member, lesson=lessons[0])
    lessons[0].is_published = False
    lessons[0].save(update_fields=["is_published"])

    lessons[0].is_published = True
    lessons[0].save(update_fields=["is_published"])

    assert get_progress(enrolment=enrolment).done == 1


def test_progress_without_published_lessons_is_no_data(member):
    course = cf.CourseFactory()
    cf.LessonFactory(module__course=course, is_published=False)
    enrolment = enrol_member(member=member, course=course)

    progress = get_progress(enrolment=enrolment)

    assert progress.total == 0
    assert progress.percent is None


def test_catalogue_progress_ignores_unpublished_lessons(member, course, lessons):
    enrol_member(member=member, course=course)
    complete_lesson(member=member, lesson=lessons[2])
    lessons[2].is_published = False
    lessons[2].save(update_fields=["is_published"])

    row = list_published_courses(member=member).get(pk=course.pk)

    assert row.published_lessons == 2
    assert row.lessons_done == 0


def test_catalogue_progress_is_per_member(member, course, lessons):
    other = cf.MemberFactory()
    enrol_member(member=member, course=course)
    enrol_member(member=other, course=course)
    complete_lesson(member=other, lesson=lessons[0])

    row = list_published_courses(member=member).get(pk=course.pk)

    assert row.lessons_done == 0
    assert row.enrolment_id is not None
