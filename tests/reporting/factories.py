"""Factories for the portal rows that the reporting tests build by hand."""

from datetime import UTC, date, datetime

import factory

from apps.portal.models import Article, Case, CaseAttempt, Course, CourseEnrolment
from apps.reporting.selectors.portal import DEFAULT_VALUE_MOMENT_KIND
from tests.factories import ActivityEventFactory, MemberFactory


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


WINDOW = {"start": "2025-03-01", "end": "2025-03-31"}


def build_portal_rows(count: int) -> None:
    """Create `count` members, each with one row of every KPI, in WINDOW.

    Each member's account starts its contract on 5 March and the member
    reaches the value moment a day after signing in. Every case is rated 5,
    every enrolment completed, every attempt deflected, every article fresh.
    """
    for _ in range(count):
        member = MemberFactory(
            first_signed_in_at=at(2025, 3, 5),
            account__contract_start=date(2025, 3, 5),
        )
        ActivityEventFactory(
            member=member, kind=DEFAULT_VALUE_MOMENT_KIND, occurred_at=at(2025, 3, 6)
        )
        CaseFactory(member=member, csat_score=5, csat_rated_at=at(2025, 3, 10))
        CourseEnrolmentFactory(member=member, completed_at=at(2025, 3, 12))
        CaseAttemptFactory(member=member, outcome=CaseAttempt.Outcome.DEFLECTED)
        ArticleFactory(reviewed_on=datetime.now(UTC).date())
