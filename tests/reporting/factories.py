"""Factories for the portal rows that the reporting tests build by hand."""

from datetime import UTC, datetime

import factory

from apps.portal.models import Article, Case, CaseAttempt, Course, CourseEnrolment
from tests.factories import MemberFactory


def at(*args: int) -> datetime:
    """Return a UTC datetime, for exact window boundaries."""
    return datetime(*args, tzinfo=UTC)


class CaseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Case

    member = factory.SubFactory(MemberFactory)
    account = factory.LazyAttribute(lambda case: case.member.account)
    subject = factory.Sequence(lambda n: f"Export fails {n}")
    body = "The export stops at 50 %."
    status = Case.Status.CLOSED
    created_at = at(2025, 3, 1)


class CourseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Course

    title = factory.Sequence(lambda n: f"Course {n}")
    slug = factory.Sequence(lambda n: f"course-{n}")
    is_published = True


class CourseEnrolmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CourseEnrolment

    member = factory.SubFactory(MemberFactory)
    course = factory.SubFactory(CourseFactory)
    started_at = at(2025, 3, 10)


class CaseAttemptFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CaseAttempt

    member = factory.SubFactory(MemberFactory)
    started_at = at(2025, 3, 10)
    segment = factory.LazyAttribute(
        lambda attempt: attempt.member.account.segment if attempt.member.account else ""
    )


class ArticleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Article

    title = factory.Sequence(lambda n: f"Article {n}")
    slug = factory.Sequence(lambda n: f"article-{n}")
    body = "Open Settings, then Export."
    is_published = True
