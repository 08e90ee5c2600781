"""Reads of the content-gap backlog."""

from django.contrib.auth import get_user_model
from django.db.models import QuerySet

from apps.portal.models import ContentGap


def list_content_gaps(
    *, status: str = "", owner_id: int | None = None
) -> QuerySet[ContentGap]:
    """Return the backlog, most frequent first, optionally by status and owner."""
    gaps = ContentGap.objects.select_related("owner", "topic", "article")
    if status:
        gaps = gaps.filter(status=status)
    if owner_id is not None:
        gaps = gaps.filter(owner_id=owner_id)
    return gaps.order_by("-occurrences", "-last_seen_at", "id")


def list_gap_owners() -> QuerySet:
    """Return the staff users who may own a gap."""
    return (
        get_user_model().objects.filter(is_staff=True, is_active=True).order_by("email")
    )
