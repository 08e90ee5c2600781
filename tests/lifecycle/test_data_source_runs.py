import re
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import IntegrityError, connection
from django.db.migrations.executor import MigrationExecutor
from rest_framework.test import APIClient

from apps.lifecycle import scoring, tasks
from apps.lifecycle.ingestion.sources import create_segment_source
from apps.lifecycle.models import AccountHealthScore, HealthScore
from apps.membership.models import DataSourceRun
from apps.membership.services.data_sources import (
    EVENT_BATCH_API_ORIGIN,
    record_source_failure,
    record_source_run,
    record_source_success,
    segment_source_origin,
)
from tests import factories
from tests.ingestion.helpers import basic_auth, post_batch, track

USAGE = DataSourceRun.Source.USAGE_INGESTION
SCORES = DataSourceRun.Source.SCORE_COMPUTATION
CRM = DataSourceRun.Source.CRM_SYNC
EARLIER = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
BATCH_URL = "/api/v1/events/batch/"
BATCH = EVENT_BATCH_API_ORIGIN


def run_of(source: str, origin: str = "") -> DataSourceRun:
    return DataSourceRun.objects.get(source=source, origin=origin)


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
    assert run_of(USAGE, BATCH).last_success_at is not None
    assert run_of(USAGE, BATCH).last_failure_at is None
    assert DataSourceRun.objects.filter(source=USAGE).count() == 1


def test_event_batch_invalid_rows_records_failure(
    staff_api, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        record_source_success(source=USAGE, origin=BATCH, at=EARLIER)
    row = {
        "member_email": "nobody@acme.test",
        "kind": "product.report_exported",
        "occurred_at": "2026-03-02T09:00:00Z",
    }

    response = staff_api.post(BATCH_URL, {"events": [row]}, format="json")

    run = run_of(USAGE, BATCH)
    assert response.status_code == 400
    assert run.last_success_at == EARLIER
    assert run.last_error == "event batch failed: IngestError (code invalid_rows)"


def test_event_batch_invalid_shape_records_failure(staff_api):
    row = {"member_id": 1, "kind": "product.report_exported"}

    response = staff_api.post(BATCH_URL, {"events": [row]}, format="json")

    assert response.status_code == 400
    assert run_of(USAGE, BATCH).last_error == "event batch failed: invalid shape"


def test_event_batch_bad_json_records_failure(staff_api):
    response = staff_api.generic(
        "POST", BATCH_URL, '{"events": [', content_type="application/json"
    )

    assert response.status_code == 400
    assert run_of(USAGE, BATCH).last_error == "event batch failed: invalid JSON"


# Usage ingestion through the Segment-compatible endpoint, one row per source


@pytest.fixture
def product_sources(db):
    """Return two active Segment sources, each with its key as `write_key`."""
    sources = []
    for name in ("Web app", "Mobile app"):
        source, write_key = create_segment_source(name=name)
        source.write_key = write_key
        sources.append(source)
    factories.MemberFactory(external_id="u-1")
    return sources


def test_segment_failing_source_shown_beside_working(
    client, product_sources, django_capture_on_commit_callbacks
):
    web, mobile = product_sources
    invalid = {"type": "track", "messageId": "m-9"}

    with django_capture_on_commit_callbacks(execute=True):
        post_batch(client, web.write_key, [track("m-1")])
        post_batch(client, mobile.write_key, [invalid])

    web_run = run_of(USAGE, segment_source_origin(web.pk))
    mobile_run = run_of(USAGE, segment_source_origin(mobile.pk))
    assert DataSourceRun.objects.count() == 2
    assert web_run.last_success_at is not None
    assert web_run.last_failure_at is None
    assert mobile_run.last_success_at is None
    assert mobile_run.last_error == "segment batch failed: all 1 message(s) invalid"


def test_segment_rejected_request_records_its_source(client, product_sources):
    mobile = product_sources[1]

    response = client.generic(
        "POST",
        "/v1/batch",
        b"{not json",
        content_type="application/json",
        HTTP_AUTHORIZATION=basic_auth(mobile.write_key),
    )

    run = DataSourceRun.objects.get()
    assert response.status_code == 400
    assert run.origin == segment_source_origin(mobile.pk)
    assert run.last_error == "segment request rejected: invalid_json"


def test_segment_success_throttled_per_source(
    client, product_sources, django_capture_on_commit_callbacks
):
    web, mobile = product_sources

    # The second source's first success lands within the first one's minute,
    # and is written because each source has its own row and interval.
    with django_capture_on_commit_callbacks(execute=True):
        post_batch(client, web.write_key, [track("m-1")])
        post_batch(client, mobile.write_key, [track("m-2")])

    assert run_of(USAGE, segment_source_origin(web.pk)).last_success_at is not None
    assert run_of(USAGE, segment_source_origin(mobile.pk)).last_success_at is not None


# Usage ingestion origins in the service and the database


def test_record_source_success_origins_separate_rows(
    db, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        record_source_success(source=USAGE, origin=BATCH, at=EARLIER)
        record_source_success(source=USAGE, origin=segment_source_origin(7), at=EARLIER)
    later = EARLIER + timedelta(seconds=10)
    record_source_failure(
        source=USAGE, origin=segment_source_origin(7), error="broken", at=later
    )

    batch = run_of(USAGE, BATCH)
    segment = run_of(USAGE, "segment_source:7")
    assert batch.last_success_at == EARLIER
    assert batch.last_failure_at is None
    assert segment.last_success_at == EARLIER
    assert segment.last_failure_at == later
    assert segment.last_error == "broken"


def test_record_source_success_throttled_per_origin(
    db, django_capture_on_commit_callbacks
):
    origin = segment_source_origin(7)
    with django_capture_on_commit_callbacks(execute=True):
        record_source_success(source=USAGE, origin=origin, at=EARLIER)
        record_source_success(
            source=USAGE, origin=origin, at=EARLIER + timedelta(seconds=30)
        )
        record_source_success(
            source=USAGE, origin=origin, at=EARLIER + timedelta(seconds=61)
        )

    assert run_of(USAGE, origin).last_success_at == EARLIER + timedelta(seconds=61)


@pytest.mark.parametrize(
    ("source", "origin", "message"),
    [
        (
            USAGE,
            "",
            "Invalid usage ingestion origin ''; use 'event_batch_api' or "
            "segment_source_origin() of the Segment source's ID.",
        ),
        (
            USAGE,
            "segment_source:web",
            "Invalid usage ingestion origin 'segment_source:web'; use "
            "'event_batch_api' or segment_source_origin() of the Segment "
            "source's ID.",
        ),
        (
            USAGE,
            "segment_source:0",
            "Invalid usage ingestion origin 'segment_source:0'; use "
            "'event_batch_api' or segment_source_origin() of the Segment "
            "source's ID.",
        ),
        (
            USAGE,
            "segment_source:٣",
            "Invalid usage ingestion origin 'segment_source:٣'; use "
            "'event_batch_api' or segment_source_origin() of the Segment "
            "source's ID.",
        ),
        (
            CRM,
            BATCH,
            "Data source 'crm_sync' has one row and takes no origin, but got "
            "origin 'event_batch_api'; leave origin empty.",
        ),
    ],
    ids=["usage-empty", "usage-name", "usage-zero", "usage-non-ascii", "crm-origin"],
)
def test_record_source_invalid_origin_raises(db, source, origin, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        record_source_success(source=source, origin=origin)
    with pytest.raises(ValueError, match=re.escape(message)):
        record_source_failure(source=source, origin=origin, error="broken")

    assert not DataSourceRun.objects.exists()


def test_record_source_run_invalid_origin_skips_block(db):
    ran = []

    with (
        pytest.raises(ValueError, match="Invalid usage ingestion origin ''"),
        record_source_run(source=USAGE, action="batch"),
    ):
        ran.append(True)

    assert ran == []
    assert not DataSourceRun.objects.exists()


@pytest.mark.parametrize(
    ("source", "origin"),
    [(USAGE, ""), (USAGE, "segment_source:web"), (CRM, BATCH)],
    ids=["usage-empty", "usage-name", "crm-origin"],
)
def test_data_source_run_origin_checked_by_database(db, source, origin):
    with pytest.raises(IntegrityError) as caught:
        DataSourceRun.objects.create(source=source, origin=origin)

    assert "datasourcerun_origin_valid" in str(caught.value)


def test_data_source_run_origin_unique_in_database(db):
    DataSourceRun.objects.create(source=USAGE, origin=BATCH)

    with pytest.raises(IntegrityError) as caught:
        DataSourceRun.objects.create(source=USAGE, origin=BATCH)

    assert "datasourcerun_source_origin_unique" in str(caught.value)


def test_record_source_success_concurrent_origins(transactional_db):
    barrier = threading.Barrier(4)
    errors = []
    origins = [BATCH, BATCH, segment_source_origin(7), segment_source_origin(7)]

    def record(origin: str, at: datetime) -> None:
        try:
            barrier.wait()
            record_source_success(source=USAGE, origin=origin, at=at)
        except Exception as error:  # collected so the main thread can assert on it
            errors.append(error)
        finally:
            connection.close()

    threads = [
        threading.Thread(
            target=record, args=(origin, EARLIER + timedelta(seconds=index))
        )
        for index, origin in enumerate(origins)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert DataSourceRun.objects.count() == 2
    assert run_of(USAGE, BATCH).last_success_at in {
        EARLIER,
        EARLIER + timedelta(seconds=1),
    }
    assert run_of(USAGE, segment_source_origin(7)).last_success_at in {
        EARLIER + timedelta(seconds=2),
        EARLIER + timedelta(seconds=3),
    }


# The migration to one usage ingestion row per origin

BEFORE_ORIGINS = [("membership", "0006_data_source_run")]
WITH_ORIGINS = [("membership", "0007_data_source_run_origin")]


def migrate(targets) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor


@pytest.fixture
def before_origins(transactional_db):
    """Migrate membership back to the shared usage row, and forward afterwards."""
    executor = migrate(BEFORE_ORIGINS)
    yield executor.loader.project_state(BEFORE_ORIGINS).apps
    migrate(WITH_ORIGINS)


def test_origin_migration_drops_shared_usage_row(before_origins):
    OldRun = before_origins.get_model("membership", "DataSourceRun")
    OldRun.objects.create(source=USAGE, last_success_at=EARLIER)
    OldRun.objects.create(source=CRM, last_success_at=EARLIER)

    migrate(WITH_ORIGINS)

    crm = DataSourceRun.objects.get()
    assert crm.source == CRM
    assert crm.origin == ""
    assert crm.last_success_at == EARLIER


def test_origin_migration_reverse_merges_origins(transactional_db):
    later = EARLIER + timedelta(hours=1)
    DataSourceRun.objects.create(
        source=USAGE,
        origin=BATCH,
        last_success_at=later,
        last_failure_at=EARLIER,
        last_error="event batch failed: invalid JSON",
    )
    DataSourceRun.objects.create(
        source=USAGE,
        origin=segment_source_origin(7),
        last_success_at=EARLIER,
        last_failure_at=later,
        last_error="segment request rejected: invalid_json",
    )
    DataSourceRun.objects.create(
        source=USAGE, origin=segment_source_origin(8), last_success_at=EARLIER
    )

    try:
        executor = migrate(BEFORE_ORIGINS)
        OldRun = executor.loader.project_state(BEFORE_ORIGINS).apps.get_model(
            "membership", "DataSourceRun"
        )
        merged = OldRun.objects.get(source=USAGE)
    finally:
        migrate(WITH_ORIGINS)

    assert merged.last_success_at == later
    assert merged.last_failure_at == later
    assert merged.last_error == "segment request rejected: invalid_json"
    assert not DataSourceRun.objects.exists()


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
