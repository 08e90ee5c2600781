from datetime import timedelta

import factory
from django.utils import timezone

from apps.lifecycle.models import Play, PlayStep


class PlayFactory(factory.django.DjangoModelFactory):
    """An active member-level play triggered by each product.report_exported."""

    class Meta:
        model = Play

    name = factory.Sequence(lambda n: f"Play {n}")
    play_id = factory.Sequence(lambda n: f"play-{n}")
    status = Play.Status.ACTIVE
    trigger = Play.Trigger.EVENT
    trigger_event_kind = "product.report_exported"
    activated_at = factory.LazyFunction(lambda: timezone.now() - timedelta(days=1))


class PlayStepFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PlayStep

    play = factory.SubFactory(PlayFactory)
    position = factory.Sequence(lambda n: n + 1)
    action = "test_touch"
