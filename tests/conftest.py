import os

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from rm6.celery import app as celery_app
from tests import factories

# Playwright's sync API keeps an event loop in the test thread for the rest
# of the session, so Django's async-safety check would reject the database
# queries of every later test, not only the browser ones.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM_PATH = "/usr/bin/chromium"
# Keep chromium quiet and local: no first-run work, no background downloads,
# and every host name except the local ones resolves to nothing.
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


@pytest.fixture(autouse=True)
def _empty_cache():
    """Start every test with an empty cache.

    Test databases restart their id sequences on every run, so a cache key
    built from a row id (a rate limit, a once-a-minute log guard) left by an
    earlier test or run would otherwise apply to an unrelated row.
    """
    cache.clear()


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """Launch Debian's chromium, which Playwright did not download."""
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM_PATH,
        "args": CHROMIUM_ARGS,
    }


@pytest.fixture
def celery_tasks_in_process():
    """Run tasks that a live server queues in its own thread and database.

    Without this, tasks scheduled on commit would go to the shared Redis
    broker, where a worker connected to another database could take them.
    """
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture
def member(db):
    return factories.MemberFactory()


@pytest.fixture
def staff_user(db):
    return factories.StaffFactory()


@pytest.fixture
def api_client():
    return APIClient()


@pytest.fixture
def member_client(client, member):
    client.force_login(member.user)
    return client


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.fixture
def slow_inserts(transactional_db):
    """Return a function that makes inserts into a table sleep 0.3 s per row.

    `slow_inserts(table, column)` adds a trigger for rows whose `column`
    starts with "slow-". Two concurrent batches then overlap row by row, as
    large batches do, which makes lock-order races repeatable.
    """
    from django.db import connection

    tables = []

    def install(table: str, column: str) -> None:
        name = f"test_slow_{table}"
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                CREATE FUNCTION {name}() RETURNS trigger AS $$
                BEGIN
                    IF NEW.{column} LIKE 'slow-%' THEN
                        PERFORM pg_sleep(0.3);
                    END IF;
                    RETURN NEW;
                END $$ LANGUAGE plpgsql;
                CREATE TRIGGER {name} BEFORE INSERT ON {table}
                    FOR EACH ROW EXECUTE FUNCTION {name}();
                """
            )
        tables.append(table)

    yield install
    with connection.cursor() as cursor:
        for table in tables:
            name = f"test_slow_{table}"
            cursor.execute(f"DROP TRIGGER {name} ON {table}; DROP FUNCTION {name}();")
