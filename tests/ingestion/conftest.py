import pytest

from apps.lifecycle.ingestion.sources import create_segment_source
from rm6.celery import app as celery_app


@pytest.fixture(autouse=True)
def celery_tasks_in_process():
    """Run tasks scheduled on commit in this process, not on the shared broker.

    Score refreshes follow every recorded event, and a worker connected to
    another database must not take them.
    """
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture(autouse=True)
def no_rate_limits(settings):
    """Turn off allauth's rate limits, which count attempts in the shared cache."""
    settings.ACCOUNT_RATE_LIMITS = False


@pytest.fixture
def segment_source(db):
    """Return an active server-side product source, its key as `source.write_key`.

    It links identities, as a source whose key stays on the product's servers.
    """
    source, write_key = create_segment_source(name="Product", links_identities=True)
    source.write_key = write_key
    return source
