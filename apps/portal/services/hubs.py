"""Writes for use-case hubs."""

from django.db import transaction

from apps.lifecycle.models import ActivityEvent
from apps.lifecycle.services import record_activity
from apps.membership.models import Member
from apps.portal.models import UseCaseHub

HUB_VIEWED_KIND = "portal.hub_viewed"


@transaction.atomic
def record_hub_view(*, member: Member, hub: UseCaseHub) -> ActivityEvent:
    """Record that the member opened the hub, which completes visit steps on it."""
    return record_activity(
        member=member,
        kind=HUB_VIEWED_KIND,
        subject=hub,
        properties={"hub": hub.slug},
    )
