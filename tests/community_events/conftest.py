from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.cache import cache
from django.utils import timezone

from apps.community.models import CommunityEvent, Space
from rm6.celery import app as celery_app
from tests import factories


@pytest.fixture(autouse=True)
def celery_tasks_in_process():
    """Run tasks queued on commit in the test's own process and database."""
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture(autouse=True)
def clear_cache():
    cache.clear()
    yield
    cache.clear()


def make_event(**values) -> CommunityEvent:
    starts_at = values.pop("starts_at", timezone.now() + timedelta(days=3))
    defaults = {
        "kind": CommunityEvent.Kind.OFFICE_HOURS,
        "title": "Office hours",
        "starts_at": starts_at,
        "ends_at": starts_at + timedelta(hours=1),
        "time_zone": "UTC",
    }
    return CommunityEvent.objects.create(**{**defaults, **values})


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo("UTC"))


@pytest.fixture
def space(db):
    return factories.SpaceFactory(visibility=Space.Visibility.MEMBERS)
