"""Fixtures for play tests: test actions, and real Celery workers.

Worker tests run each worker in its own process on the test database and
the real Redis, under a Redis key prefix of their own (see `worker_app`).
"""

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from django.conf import settings
from django.db import connection

from rm6.celery import app as celery_app
from rm6.settings.base import redis_client_url
from tests.plays.actions import register_test_actions

BASE_DIR = Path(__file__).resolve().parent.parent.parent
WORKER_START_TIMEOUT = 60
WORKER_STOP_TIMEOUT = 20

register_test_actions()


@pytest.fixture(autouse=True)
def forget_sweep_position():
    """Start and end each test with no stored sweep position in the cache.

    Without it, a sweep would start where another test's sweep stopped.
    """
    from django.core.cache import cache

    from apps.lifecycle.plays.triggers import SWEPT_UNTIL_KEY

    cache.delete(SWEPT_UNTIL_KEY)
    yield
    cache.delete(SWEPT_UNTIL_KEY)


def wait_until(predicate: Callable[[], bool], *, timeout: float, message: str):
    """Poll `predicate` every 0.1 s; fail the test with `message` on timeout."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s: {message}")
        time.sleep(0.1)


def _test_database_url() -> str:
    """Return DATABASE_URL pointed at the test database pytest-django made."""
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path="/" + connection.settings_dict["NAME"]))


def _drop_broker_pools(*, close: bool) -> None:
    # Celery caches its connection and producer pools with the transport
    # options they were made with. Dropping them makes the next message use
    # the options set now. Only the prefixed pool is closed: kombu keeps one
    # pool per connection settings, and hands the unprefixed one out again
    # once the options are restored.
    if close and celery_app._pool is not None:
        celery_app._pool.force_close_all()
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture
def broker_prefix():
    """Send this process's Celery messages under a Redis key prefix of its own."""
    prefix = f"rm6-plays-{uuid.uuid4().hex[:8]}:"
    options = celery_app.conf.broker_transport_options
    celery_app.conf.broker_transport_options = {
        **options,
        "global_keyprefix": prefix,
    }
    _drop_broker_pools(close=False)
    try:
        yield prefix
    finally:
        _drop_broker_pools(close=True)
        celery_app.conf.broker_transport_options = options
        client = redis.Redis.from_url(redis_client_url(settings.CELERY_BROKER_URL))
        for key in client.scan_iter(match=f"{prefix}*"):
            client.delete(key)
        client.close()


@pytest.fixture
def start_worker(transactional_db, broker_prefix):
    """Return a function that starts a Celery worker and waits for its ping reply.

    Every worker started is stopped when the test ends. A test may kill one
    itself through the returned process.
    """
    processes: list[subprocess.Popen] = []

    def start(*, visibility_timeout: int = 3600) -> subprocess.Popen:
        name = f"plays-{uuid.uuid4().hex[:8]}@localhost"
        env = {
            **os.environ,
            "DATABASE_URL": _test_database_url(),
            "DJANGO_SETTINGS_MODULE": "rm6.settings.test",
            "RM6_TEST_BROKER_PREFIX": broker_prefix,
            "CELERY_VISIBILITY_TIMEOUT": str(visibility_timeout),
        }
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "tests.plays.worker_app",
                "worker",
                "--pool",
                "solo",
                "--loglevel",
                "warning",
                "--hostname",
                name,
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=BASE_DIR,
            env=env,
        )
        processes.append(process)
        deadline = time.monotonic() + WORKER_START_TIMEOUT
        while not celery_app.control.ping(destination=[name], timeout=0.5):
            if process.poll() is not None:
                pytest.fail(
                    f"Celery worker exited early with code {process.returncode}"
                )
            if time.monotonic() > deadline:
                pytest.fail(f"Celery worker {name} did not answer within 60 s")
        return process

    try:
        yield start
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(timeout=WORKER_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
