import pytest


@pytest.fixture(autouse=True)
def _tasks_in_process(celery_tasks_in_process):
    """Run every browser test's queued tasks in the live server's thread."""
