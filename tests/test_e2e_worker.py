"""End to end: events ingested over the API change a score through a real worker."""

import os
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from apps.lifecycle.models import HealthScore
from apps.lifecycle.scoring import refresh_member_health_scores
from rm6.celery import app as celery_app
from tests import factories

BASE_DIR = Path(__file__).resolve().parent.parent
WORKER_START_TIMEOUT = 60
SCORE_TIMEOUT = 60


def _test_database_url() -> str:
    """Return DATABASE_URL pointed at the test database pytest-django made."""
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path="/" + connection.settings_dict["NAME"]))


@pytest.fixture
def celery_worker_process():
    """Start a real Celery worker on the test database and the real Redis."""
    celery_app.control.purge()
    name = f"e2e-{uuid.uuid4().hex[:8]}@localhost"
    env = {
        **os.environ,
        "DATABASE_URL": _test_database_url(),
        "DJANGO_SETTINGS_MODULE": "rm6.settings.test",
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "rm6",
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
    try:
        deadline = time.monotonic() + WORKER_START_TIMEOUT
        while not celery_app.control.ping(destination=[name], timeout=0.5):
            if process.poll() is not None:
                pytest.fail(
                    f"Celery worker exited early with code {process.returncode}"
                )
            if time.monotonic() > deadline:
                pytest.fail(f"Celery worker {name} did not answer within 60 s")
        yield name
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_ingested_events_raise_score_through_worker(celery_worker_process):
    member = factories.MemberFactory()
    refresh_member_health_scores(member_ids=[member.pk])
    assert HealthScore.objects.get(member=member).score == 0
    staff = factories.StaffFactory()
    client = APIClient()
    client.credentials(
        HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=staff).key}"
    )
    occurred_at = (timezone.now() - timedelta(minutes=5)).isoformat()
    events = [
        {
            "member_email": member.email,
            "kind": "product.report_exported",
            "occurred_at": occurred_at,
            "idempotency_key": f"e2e-{i}",
        }
        for i in range(20)
    ]

    response = client.post("/api/v1/events/batch/", {"events": events}, format="json")

    assert response.status_code == 201, response.content
    deadline = time.monotonic() + SCORE_TIMEOUT
    score = HealthScore.objects.get(member=member)
    while score.score == 0 and time.monotonic() < deadline:
        time.sleep(0.2)
        score.refresh_from_db()
    assert score.score == 100
    assert score.band == "green"
    assert score.components["activity"]["value"] == 20
