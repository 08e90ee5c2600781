from datetime import UTC, datetime

import pytest
from rest_framework.test import APIClient

from apps.lifecycle import scoring, tasks
from apps.lifecycle.models import AccountHealthScore, HealthScore
from apps.membership.models import DataSourceRun
from apps.membership.services.data_sources import record_source_success
from tests import factories

USAGE = DataSourceRun.Source.USAGE_INGESTION
SCORES = DataSourceRun.Source.SCORE_COMPUTATION
EARLIER = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
BATCH_URL = "/api/v1/events/batch/"


def run_of(source: str) -> DataSourceRun:
    return DataSourceRun.objects.get(source=source)


@pytest.fixture
def staff_api(db):
    client = APIClient()
    client.force_authenticate(factories.StaffFactory())
    return client


# Usage ingestion through the batch API


def test_event_batch_records_usage_ingestion(
    staff_api, celery_tasks_in_process, django_capture_on_commit_callbacks
):
    member = factories.MemberFactory()
    row = {
        "member_id": member.pk,
        "kind": "product.report_exported",
        "occurred_at": "2026-03-02T09:00:00Z",
    }

    with django_capture_on_commit_callbacks(execute=True):
        response = staff_api.post(BATCH_URL, {"events": [row]}, format="json")

    assert response.status_code == 201
    assert run_of(USAGE).last_success_at is not None
    assert run_of(USAGE).last_failure_at is None


def test_event_batch_invalid_rows_records_failure(
    staff_api, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        record_source_success(source=USAGE, at=EARLIER)
    row = {
        "member_email": "nobody@acme.test",
        "kind": "product.report_exported",
        "occurred_at": "2026-03-02T09:00:00Z",
    }

    response = staff_api.post(BATCH_URL, {"events": [row]}, format="json")

    run = run_of(USAGE)
    assert response.status_code == 400
    assert run.last_success_at == EARLIER
    assert run.last_error == "event batch failed: IngestError (code invalid_rows)"


def test_event_batch_invalid_shape_records_failure(staff_api):
    row = {"member_id": 1, "kind": "product.report_exported"}

    response = staff_api.post(BATCH_URL, {"events": [row]}, format="json")

    assert response.status_code == 400
    assert run_of(USAGE).last_error == "event batch failed: invalid shape"


def test_event_batch_bad_json_records_failure(staff_api):
    response = staff_api.generic(
        "POST", BATCH_URL, '{"events": [', content_type="application/json"
    )

    assert response.status_code == 400
    assert run_of(USAGE).last_error == "event batch failed: invalid JSON"


# Score computation through the scoring tasks


def test_refresh_member_scores_task_records_success(
    db, django_capture_on_commit_callbacks
):
    member = factories.MemberFactory()

    with django_capture_on_commit_callbacks(execute=True):
        tasks.refresh_member_scores_task(member_ids=[member.pk])

    assert HealthScore.objects.filter(member=member).exists()
    assert run_of(SCORES).last_success_at is not None


def test_refresh_account_scores_task_records_success(
    db, django_capture_on_commit_callbacks
):
    account = factories.AccountFactory()

    with django_capture_on_commit_callbacks(execute=True):
        tasks.refresh_account_scores_task(account_ids=[account.pk])

    assert AccountHealthScore.objects.filter(account=account).exists()
    assert run_of(SCORES).last_success_at is not None


@pytest.mark.parametrize(
    "task",
    [
        tasks.rescore_stale_members_task,
        tasks.rescore_all_members_task,
        tasks.rescore_stale_accounts_task,
        tasks.rescore_all_accounts_task,
    ],
    ids=["stale-members", "all-members", "stale-accounts", "all-accounts"],
)
def test_scoring_pass_records_success(
    db, celery_tasks_in_process, django_capture_on_commit_callbacks, task
):
    factories.MemberFactory.create_batch(2)

    with django_capture_on_commit_callbacks(execute=True):
        handled = task()

    assert handled == 2
    assert run_of(SCORES).last_success_at is not None


def test_stale_pass_with_nothing_stale_records_success(
    db, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        refreshed = tasks.rescore_stale_members_task()

    assert refreshed == 0
    assert run_of(SCORES).last_success_at is not None


def test_refresh_task_failure_records_error(
    db, monkeypatch, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        record_source_success(source=SCORES, at=EARLIER)

    def fail(**kwargs):
        raise RuntimeError("score of dana@acme.test failed")

    monkeypatch.setattr(scoring, "refresh_member_health_scores", fail)

    with pytest.raises(RuntimeError):
        tasks.refresh_member_scores_task(member_ids=[1])

    run = run_of(SCORES)
    assert run.last_success_at == EARLIER
    assert run.last_error == "member score refresh failed: RuntimeError"


def test_scoring_pass_failure_records_error(db, monkeypatch):
    def fail(**kwargs):
        raise RuntimeError("listing failed")

    monkeypatch.setattr(scoring, "refresh_stale_account_scores", fail)

    with pytest.raises(RuntimeError):
        tasks.rescore_stale_accounts_task()

    run = run_of(SCORES)
    assert run.last_success_at is None
    assert run.last_error == "stale account pass failed: RuntimeError"
