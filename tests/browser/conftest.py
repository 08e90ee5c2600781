import os

import pytest

from rm6.celery import app as celery_app

# Playwright's sync API runs an event loop in the test thread, so Django's
# async-safety check would reject the test's own database queries.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM_PATH = "/usr/bin/chromium"
# Keep chromium quiet and local: no first-run work, no background downloads,
# and every host name except the live server's resolves to nothing.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1 , EXCLUDE localhost",
]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """Launch Debian's chromium, which Playwright did not download."""
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM_PATH,
        "args": CHROMIUM_ARGS,
    }


@pytest.fixture(autouse=True)
def celery_tasks_in_process():
    """Run tasks queued by the live server in its own thread and database.

    Without this, score refreshes scheduled on commit would go to the shared
    Redis broker, where a worker connected to another database could take
    them.
    """
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous
