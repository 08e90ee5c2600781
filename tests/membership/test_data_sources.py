import io
import re
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction
from rest_framework.test import APIClient

from apps.membership.models import DataSourceRun
from apps.membership.services.data_sources import (
    describe_error,
    record_source_failure,
    record_source_run,
    record_source_success,
)
from apps.membership.services.imports import import_accounts, import_members
from rm6.errors import DomainError
from tests import factories

CRM = DataSourceRun.Source.CRM_SYNC
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NEW_ACCOUNT = {"name": "Globex", "segment": "enterprise", "cs_tier": "high_touch"}
ACCOUNTS_HEADER = "external_id,name,segment,cs_tier\n"


def crm_run() -> DataSourceRun:
    return DataSourceRun.objects.get(source=CRM)


def record_success(at: datetime, capture) -> None:
    with capture(execute=True):
        record_source_success(source=CRM, at=at)


# The service


def test_record_source_success_creates_row(db, django_capture_on_commit_callbacks):
    record_success(T0, django_capture_on_commit_callbacks)

    run = crm_run()
    assert run.last_success_at == T0
    assert run.last_failure_at is None
    assert run.last_error == ""


def test_record_source_success_waits_for_commit(db, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        record_source_success(source=CRM, at=T0)

    assert len(callbacks) == 1
    assert not DataSourceRun.objects.exists()


def test_record_source_success_skipped_on_rollback(transactional_db):
    with transaction.atomic():
        record_source_success(source=CRM, at=T0)
        transaction.set_rollback(True)

    assert not DataSourceRun.objects.exists()


def test_record_source_success_throttled_within_minute(
    db, django_capture_on_commit_callbacks
):
    record_success(T0, django_capture_on_commit_callbacks)

    record_success(T0 + timedelta(seconds=59), django_capture_on_commit_callbacks)
    assert crm_run().last_success_at == T0

    record_success(T0 + timedelta(seconds=61), django_capture_on_commit_callbacks)
    assert crm_run().last_success_at == T0 + timedelta(seconds=61)


def test_record_source_success_never_moves_back(db, django_capture_on_commit_callbacks):
    record_success(T0, django_capture_on_commit_callbacks)

    record_success(T0 - timedelta(hours=1), django_capture_on_commit_callbacks)

    assert crm_run().last_success_at == T0


def test_record_source_failure_keeps_last_success(
    db, django_capture_on_commit_callbacks
):
    record_success(T0, django_capture_on_commit_callbacks)

    record_source_failure(
        source=CRM, error="account upsert failed: X", at=T0 + timedelta(hours=1)
    )

    run = crm_run()
    assert run.last_success_at == T0
    assert run.last_failure_at == T0 + timedelta(hours=1)
    assert run.last_error == "account upsert failed: X"


def test_record_source_failure_throttled_within_minute(db):
    record_source_failure(source=CRM, error="first", at=T0)
    record_source_failure(source=CRM, error="second", at=T0 + timedelta(seconds=30))

    run = crm_run()
    assert run.last_failure_at == T0
    assert run.last_error == "first"


def test_record_source_success_after_failure_within_minute(
    db, django_capture_on_commit_callbacks
):
    record_success(T0, django_capture_on_commit_callbacks)
    record_source_failure(source=CRM, error="first", at=T0 + timedelta(seconds=10))

    record_success(T0 + timedelta(seconds=20), django_capture_on_commit_callbacks)

    run = crm_run()
    assert run.last_success_at == T0 + timedelta(seconds=20)
    assert run.last_failure_at == T0 + timedelta(seconds=10)


def test_record_source_failure_after_success_within_minute(
    db, django_capture_on_commit_callbacks
):
    record_source_failure(source=CRM, error="first", at=T0)
    record_success(T0 + timedelta(seconds=10), django_capture_on_commit_callbacks)

    record_source_failure(source=CRM, error="second", at=T0 + timedelta(seconds=20))

    run = crm_run()
    assert run.last_failure_at == T0 + timedelta(seconds=20)
    assert run.last_error == "second"


def test_record_source_failure_without_success_creates_row(db):
    record_source_failure(source=CRM, error="first", at=T0)

    run = crm_run()
    assert run.last_success_at is None
    assert run.last_failure_at == T0


def test_record_source_failure_truncates_error(db):
    record_source_failure(source=CRM, error="x" * 600, at=T0)

    assert crm_run().last_error == "x" * 500


def test_record_source_unknown_source_raises(db):
    message = (
        "Invalid data source 'crm'; use one of crm_sync, usage_ingestion, "
        "score_computation."
    )

    with pytest.raises(ValueError, match=re.escape(message)):
        record_source_success(source="crm")


def test_record_source_run_records_failure_and_raises(db):
    with pytest.raises(DomainError), record_source_run(source=CRM, action="sync"):
        raise DomainError("x@example.com is taken", field="email", code="conflict")

    assert crm_run().last_error == (
        "sync failed: DomainError (code conflict, field email)"
    )


def test_describe_error_leaves_out_message():
    error = DomainError("No staff user has the email dana@example.com.")

    assert describe_error(error) == "DomainError (code invalid)"
    assert describe_error(RuntimeError("dana@example.com")) == "RuntimeError"


def test_record_source_success_concurrent_first_runs(transactional_db):
    barrier = threading.Barrier(2)
    errors = []

    def record(at: datetime) -> None:
        try:
            barrier.wait()
            record_source_success(source=CRM, at=at)
        except Exception as error:  # collected so the main thread can assert on it
            errors.append(error)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=record, args=(T0,)),
        threading.Thread(target=record, args=(T0 + timedelta(seconds=1),)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert DataSourceRun.objects.count() == 1
    assert crm_run().last_success_at in {T0, T0 + timedelta(seconds=1)}


# CRM sync through the API and the CSV import


@pytest.fixture
def staff_api(db):
    client = APIClient()
    client.force_authenticate(factories.StaffFactory())
    return client


def test_account_upsert_api_records_crm_sync(
    staff_api, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_api.put(
            "/api/v1/accounts/by-external-id/crm-1/", NEW_ACCOUNT, format="json"
        )

    assert response.status_code == 201
    assert crm_run().last_success_at is not None
    assert crm_run().last_failure_at is None


def test_account_upsert_api_invalid_body_records_failure(staff_api):
    response = staff_api.put(
        "/api/v1/accounts/by-external-id/crm-1/",
        {**NEW_ACCOUNT, "segment": "bogus"},
        format="json",
    )

    assert response.status_code == 400
    assert crm_run().last_error == "account upsert failed: invalid segment"


def test_account_upsert_api_bad_json_records_failure(staff_api):
    response = staff_api.generic(
        "PUT",
        "/api/v1/accounts/by-external-id/crm-1/",
        "not json",
        content_type="application/json",
    )

    assert response.status_code == 400
    assert crm_run().last_error == "account upsert failed: invalid JSON"


def test_account_upsert_api_list_body_records_failure(staff_api):
    response = staff_api.put(
        "/api/v1/accounts/by-external-id/crm-1/", [], format="json"
    )

    assert response.status_code == 400
    assert crm_run().last_error == "account upsert failed: invalid body"


def test_account_upsert_api_conflict_records_failure(
    staff_api, django_capture_on_commit_callbacks
):
    record_success(T0, django_capture_on_commit_callbacks)
    factories.AccountFactory(email_domains=["initech.test"])

    response = staff_api.put(
        "/api/v1/accounts/by-external-id/crm-1/",
        {"email_domains": ["initech.test"], **NEW_ACCOUNT},
        format="json",
    )

    run = crm_run()
    assert response.status_code == 409
    assert run.last_success_at == T0
    assert run.last_failure_at is not None
    assert run.last_error == (
        "account upsert failed: DomainError (code conflict, field email_domains)"
    )
    assert "initech" not in run.last_error


def test_account_upsert_api_member_records_nothing(db):
    member = factories.MemberFactory()
    client = APIClient()
    client.force_authenticate(member.user)

    response = client.put(
        "/api/v1/accounts/by-external-id/crm-1/", NEW_ACCOUNT, format="json"
    )

    assert response.status_code == 403
    assert not DataSourceRun.objects.exists()


def test_member_upsert_api_records_crm_sync(
    staff_api, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_api.put(
            "/api/v1/members/by-external-id/usr-1/",
            {"email": "ada@globex.test"},
            format="json",
        )

    assert response.status_code == 201
    assert crm_run().last_success_at is not None
    assert crm_run().last_failure_at is None


def test_member_upsert_api_invalid_body_records_failure(staff_api):
    response = staff_api.put(
        "/api/v1/members/by-external-id/usr-1/",
        {"email": "ada@globex.test", "role": "emperor"},
        format="json",
    )

    assert response.status_code == 400
    assert crm_run().last_error == "member upsert failed: invalid role"


def test_member_upsert_api_conflict_records_failure(staff_api):
    factories.MemberFactory(user__email="ada@globex.test", external_id="usr-9")

    response = staff_api.put(
        "/api/v1/members/by-external-id/usr-1/",
        {"email": "ada@globex.test"},
        format="json",
    )

    run = crm_run()
    assert response.status_code == 409
    assert run.last_success_at is None
    assert run.last_error == (
        "member upsert failed: DomainError (code conflict, field email)"
    )


def test_import_accounts_records_crm_sync(db, django_capture_on_commit_callbacks):
    text = ACCOUNTS_HEADER + "crm-1,Globex,enterprise,high_touch\n"

    with django_capture_on_commit_callbacks(execute=True):
        result = import_accounts(
            file=io.BytesIO(text.encode()), actor=factories.StaffFactory()
        )

    assert result.errors == []
    assert crm_run().last_success_at is not None


def test_import_accounts_header_only_records_nothing(
    db, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        result = import_accounts(
            file=io.BytesIO(ACCOUNTS_HEADER.encode()), actor=factories.StaffFactory()
        )

    assert result.errors == []
    assert result.rows == 0
    assert not DataSourceRun.objects.exists()


def test_import_accounts_invalid_header_records_failure(db):
    text = "external_id,name,segmnt\ncrm-1,Globex,enterprise\n"

    result = import_accounts(
        file=io.BytesIO(text.encode()), actor=factories.StaffFactory()
    )

    assert result.errors
    assert crm_run().last_error == "account import rejected: invalid header"


def test_import_members_records_crm_sync(db, django_capture_on_commit_callbacks):
    text = "email,display_name\nada@globex.test,Ada\n"

    with django_capture_on_commit_callbacks(execute=True):
        result = import_members(
            file=io.BytesIO(text.encode()), actor=factories.StaffFactory()
        )

    assert result.errors == []
    assert crm_run().last_success_at is not None


def test_import_members_invalid_row_records_failure(db):
    text = "email,role\nada@globex.test,emperor\n"

    result = import_members(
        file=io.BytesIO(text.encode()), actor=factories.StaffFactory()
    )

    run = crm_run()
    assert len(result.errors) == 1
    assert run.last_success_at is None
    assert run.last_error == "member import rejected: 1 invalid row(s)"


def test_import_accounts_invalid_row_records_failure(db):
    text = ACCOUNTS_HEADER + "crm-1,Globex,galactic,high_touch\n"

    result = import_accounts(
        file=io.BytesIO(text.encode()), actor=factories.StaffFactory()
    )

    run = crm_run()
    assert len(result.errors) == 1
    assert run.last_success_at is None
    assert run.last_error == "account import rejected: 1 invalid row(s)"
