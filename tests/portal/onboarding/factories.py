"""Factories for onboarding, hubs and the portal content the home page shows."""

from datetime import timedelta

import factory
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from apps.community.models import CommunityEvent, Subscription
from apps.portal.models import (
    Article,
    Case,
    Course,
    CourseEnrolment,
    HubItem,
    OnboardingPath,
    OnboardingStep,
    UseCaseHub,
)
from tests import factories


class PathFactory(factory.django.DjangoModelFactory):
    """A published path with its own slug, unlike the shared getting-started one."""

    class Meta:
        model = OnboardingPath

    title = factory.Sequence(lambda n: f"Path {n}")
    slug = factory.Sequence(lambda n: f"path-{n}")
    is_published = True


class EventStepFactory(factories.OnboardingStepFactory):
    path = factory.SubFactory(PathFactory)
    completion = OnboardingStep.Completion.EVENT


class ManualStepFactory(factories.OnboardingStepFactory):
    path = factory.SubFactory(PathFactory)
    completion = OnboardingStep.Completion.MANUAL
    completion_kind = ""


def visit_step(*, path: OnboardingPath, target, **fields) -> OnboardingStep:
    """Create a visit step on `path` that the member completes by opening `target`."""
    return OnboardingStep.objects.create(
        path=path,
        title=fields.pop("title", f"Open {target}"),
        completion=OnboardingStep.Completion.VISIT,
        target_type=ContentType.objects.get_for_model(target),
        target_id=target.pk,
        **fields,
    )


class HubFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = UseCaseHub

    title = factory.Sequence(lambda n: f"Hub {n}")
    slug = factory.Sequence(lambda n: f"hub-{n}")
    is_published = True


def add_hub_item(hub: UseCaseHub, content, *, position: int = 0, note: str = ""):
    return HubItem.objects.create(
        hub=hub,
        content_type=ContentType.objects.get_for_model(content),
        object_id=content.pk,
        position=position,
        note=note,
    )


class ArticleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Article

    title = factory.Sequence(lambda n: f"Article {n}")
    slug = factory.Sequence(lambda n: f"article-{n}")
    body = "Open Settings, then Export."
    is_published = True


class CourseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Course

    title = factory.Sequence(lambda n: f"Course {n}")
    slug = factory.Sequence(lambda n: f"course-{n}")
    is_published = True


class EnrolmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CourseEnrolment

    member = factory.SubFactory(factories.MemberFactory)
    course = factory.SubFactory(CourseFactory)
    started_at = factory.LazyFunction(timezone.now)


class CaseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Case

    member = factory.SubFactory(factories.MemberFactory)
    account = factory.LazyAttribute(lambda c: c.member.account)
    subject = factory.Sequence(lambda n: f"Export fails {n}")
    body = "The export button does nothing."
    created_at = factory.LazyFunction(timezone.now)


class CommunityEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CommunityEvent

    kind = CommunityEvent.Kind.WEBINAR
    title = factory.Sequence(lambda n: f"Webinar {n}")
    starts_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=3))
    ends_at = factory.LazyAttribute(lambda e: e.starts_at + timedelta(hours=1))


def watch_topic(member, topic) -> Subscription:
    return Subscription.objects.create(member=member, topic=topic)
