"""Reads of the Segment-compatible endpoint's held messages."""

from django.db.models import Count, Q, QuerySet

from apps.lifecycle.models import HeldUsageEvent, SegmentSource


def count_held_messages(*, source: SegmentSource) -> int:
    """Return how many of the source's messages are held, awaiting a member."""
    return HeldUsageEvent.objects.filter(
        source=source, status=HeldUsageEvent.Status.HELD
    ).count()


def is_at_held_limit(*, source: SegmentSource, limit: int) -> bool:
    """Return whether `limit` or more of the source's messages are held.

    It reads at most `limit` index entries, so a source with few held
    messages costs little.
    """
    held = HeldUsageEvent.objects.filter(
        source=source, status=HeldUsageEvent.Status.HELD
    ).order_by()
    return held[limit - 1 : limit].exists()


def annotate_held_count(
    sources: QuerySet[SegmentSource],
) -> QuerySet[SegmentSource]:
    """Add `held_count`, the number of each source's held messages."""
    return sources.annotate(
        held_count=Count(
            "held_events", filter=Q(held_events__status=HeldUsageEvent.Status.HELD)
        )
    )
