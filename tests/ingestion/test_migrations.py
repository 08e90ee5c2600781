"""Data migrations of held Segment messages."""

import importlib

from django.apps import apps

from apps.lifecycle.ingestion.messages import parse_message
from apps.lifecycle.models import ActivityEvent, HeldUsageEvent
from tests import factories
from tests.ingestion.helpers import MESSAGE_TIME, identify, post_batch, track

fill_email = importlib.import_module(
    "apps.lifecycle.migrations.0017_held_usage_email_from_user_id"
)


def _held_before_email_user_ids(source, message_id: str, user_id: str):
    """Hold a message as the code before email userIds did: with no email."""
    message = {**track(message_id, user_id=user_id), "receivedAt": MESSAGE_TIME}
    return HeldUsageEvent.objects.create(
        source=source,
        message_id=message_id,
        user_id=user_id,
        message=parse_message(message, event_prefix=source.event_prefix).stored,
    )


def test_email_user_ids_fill_email(segment_source):
    _held_before_email_user_ids(segment_source, "m-1", " Late@Acme.test ")
    _held_before_email_user_ids(segment_source, "m-2", "not-an-email@")
    _held_before_email_user_ids(segment_source, "m-3", "u-42")

    fill_email.fill_email_from_user_id(apps, None)

    emails = dict(HeldUsageEvent.objects.values_list("message_id", "email"))
    assert emails == {"m-1": "late@acme.test", "m-2": "", "m-3": ""}


def test_filled_message_released_on_identify(client, segment_source):
    _held_before_email_user_ids(segment_source, "m-1", "late@acme.test")
    fill_email.fill_email_from_user_id(apps, None)
    late = factories.MemberFactory(external_id="", user__email="late@acme.test")

    response = post_batch(
        client,
        segment_source.write_key,
        [identify("i-1", user_id="late@acme.test", email="late@acme.test")],
    )

    assert response.json()["released"] == 1
    assert ActivityEvent.objects.get().member == late
