import datetime

import factory
from django.utils import timezone

from apps.portal.models import BusinessCalendar, Case, CaseTopic, SlaPolicy
from tests import factories


class CaseTopicFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CaseTopic
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Area {n}")
    slug = factory.Sequence(lambda n: f"area-{n}")


class CaseFactory(factory.django.DjangoModelFactory):
    """A case written straight to the table, without the filing service."""

    class Meta:
        model = Case

    member = factory.SubFactory(factories.MemberFactory)
    account = factory.LazyAttribute(lambda c: c.member.account)
    subject = factory.Sequence(lambda n: f"Export fails number {n}")
    body = "The export stops at 50 percent."
    created_at = factory.LazyFunction(timezone.now)


class BusinessCalendarFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BusinessCalendar

    name = factory.Sequence(lambda n: f"Office hours {n}")
    time_zone = "Europe/Berlin"
    weekdays = [0, 1, 2, 3, 4]
    opens_at = datetime.time(9, 0)
    closes_at = datetime.time(17, 0)


class SlaPolicyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SlaPolicy
        django_get_or_create = ("priority",)

    priority = Case.Priority.NORMAL
    first_response_minutes = 120
    resolution_minutes = 960
