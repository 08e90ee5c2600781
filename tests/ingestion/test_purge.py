"""The daily purge of held Segment messages."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.lifecycle.ingestion import held
from apps.lifecycle.models import HeldUsageEvent
from apps.lifecycle.tasks import purge_held_usage_events_task

pytestmark = pytest.mark.django_db


def _held(source, message_id: str, *, days_ago: float, status="held"):
    held = HeldUsageEvent.objects.create(
        source=source,
        message_id=message_id,
        email="someone@example.com",
        message={"type": "track"},
        status=status,
    )
    received_at = timezone.now() - timedelta(days=days_ago)
    HeldUsageEvent.objects.filter(pk=held.pk).update(received_at=received_at)
    return held


def _remaining() -> list[str]:
    return sorted(HeldUsageEvent.objects.values_list("message_id", flat=True))


def test_purge_deletes_old_rows_of_every_status(segment_source, settings):
    settings.RM6_HELD_USAGE_RETENTION_DAYS = 90
    _held(segment_source, "old-held", days_ago=91)
    _held(segment_source, "old-recorded", days_ago=91, status="recorded")
    _held(segment_source, "old-discarded", days_ago=120, status="discarded")
    _held(segment_source, "recent-held", days_ago=89)

    purged = held.purge_held_events()

    assert purged == 3
    assert _remaining() == ["recent-held"]


def test_purge_runs_in_batches(segment_source, settings, monkeypatch):
    settings.RM6_HELD_USAGE_RETENTION_DAYS = 30
    monkeypatch.setattr(held, "PURGE_BATCH_SIZE", 2)
    for index in range(5):
        _held(segment_source, f"old-{index}", days_ago=31)
    _held(segment_source, "recent", days_ago=1)

    assert held.purge_held_events() == 5
    assert _remaining() == ["recent"]


def test_zero_retention_keeps_every_row(segment_source, settings):
    settings.RM6_HELD_USAGE_RETENTION_DAYS = 0
    _held(segment_source, "ancient", days_ago=3650)

    assert held.purge_held_events() == 0
    assert _remaining() == ["ancient"]


def test_purge_task_is_scheduled_and_purges(segment_source, settings):
    settings.RM6_HELD_USAGE_RETENTION_DAYS = 90
    _held(segment_source, "old", days_ago=100)

    assert purge_held_usage_events_task() == 1
    assert _remaining() == []
    schedule = settings.CELERY_BEAT_SCHEDULE["purge-held-usage-events"]
    assert schedule["task"] == purge_held_usage_events_task.name
