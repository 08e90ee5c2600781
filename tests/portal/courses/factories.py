"""Factories for courses, quizzes and certificates."""

import factory
from django.utils import timezone

from apps.portal.models import (
    Certification,
    Course,
    CourseEnrolment,
    CourseModule,
    LearningPath,
    Lesson,
    Quiz,
    QuizChoice,
    QuizQuestion,
)
from tests import factories


class CourseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Course

    title = factory.Sequence(lambda n: f"Course {n}")
    slug = factory.Sequence(lambda n: f"course-{n}")
    summary = "Learn the reporting basics."
    is_published = True


class CourseModuleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CourseModule

    course = factory.SubFactory(CourseFactory)
    title = factory.Sequence(lambda n: f"Module {n}")


class LessonFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Lesson

    module = factory.SubFactory(CourseModuleFactory)
    title = factory.Sequence(lambda n: f"Lesson {n}")
    slug = factory.Sequence(lambda n: f"lesson-{n}")
    body = "Open **Reports** and pick a template."
    is_published = True


class QuizFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Quiz

    course = factory.SubFactory(CourseFactory)
    title = factory.Sequence(lambda n: f"Quiz {n}")
    pass_mark = 70


class CertificationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Certification

    course = factory.SubFactory(CourseFactory)
    title = factory.Sequence(lambda n: f"Certified Analyst {n}")
    slug = factory.Sequence(lambda n: f"certified-analyst-{n}")
    validity_days = 365
    remind_days_before = 30


class LearningPathFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LearningPath

    title = factory.Sequence(lambda n: f"Path {n}")
    slug = factory.Sequence(lambda n: f"path-{n}")
    is_published = True


def add_questions(quiz: Quiz, count: int) -> list[QuizQuestion]:
    """Add `count` questions of three choices each; the first choice is right."""
    questions = []
    for number in range(count):
        question = QuizQuestion.objects.create(
            quiz=quiz, prompt=f"Question {number + 1}?", position=number
        )
        for position in range(3):
            QuizChoice.objects.create(
                question=question,
                text=f"Choice {position + 1}",
                is_correct=position == 0,
                position=position,
            )
        questions.append(question)
    return questions


def answers_with_right(questions: list[QuizQuestion], right: int) -> dict:
    """Return answers that get the first `right` questions right, the rest wrong."""
    answers = {}
    for index, question in enumerate(questions):
        choices = list(question.choices.order_by("position"))
        chosen = choices[0] if index < right else choices[1]
        answers[question.pk] = [chosen.pk]
    return answers


def enrol(member, course, **fields) -> CourseEnrolment:
    return CourseEnrolment.objects.create(
        member=member, course=course, started_at=timezone.now(), **fields
    )


MemberFactory = factories.MemberFactory
