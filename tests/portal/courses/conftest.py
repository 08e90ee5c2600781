import pytest

from tests.portal.courses import factories as course_factories


@pytest.fixture
def course(db):
    """A published course of one module with three published lessons."""
    course = course_factories.CourseFactory(title="Reporting basics")
    module = course_factories.CourseModuleFactory(course=course)
    for position in range(3):
        course_factories.LessonFactory(module=module, position=position)
    return course


@pytest.fixture
def lessons(course):
    return list(course.modules.first().lessons.order_by("position"))
