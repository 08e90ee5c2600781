from datetime import timedelta

import pytest
from django.utils import timezone

from apps.lifecycle.models import ActivityEvent
from apps.lifecycle.services import IngestError, ingest_events
from tests import factories


def _row(member, **overrides):
    row = {
        "member_id": member.pk,
        "kind": "product.report_exported",
        "occurred_at": timezone.now() - timedelta(hours=1),
        "properties": {"format": "csv"},
    }
    row.update(overrides)
    return row


def test_ingest_events_matches_members_by_id_email_and_external_id(db):
    by_id = factories.MemberFactory()
    by_email = factories.MemberFactory()
    by_external = factories.MemberFactory(external_id="crm-77")

    result = ingest_events(
        rows=[
            _row(by_id),
            {
                **_row(by_email),
                "member_id": None,
                "member_email": by_email.email.upper(),
            },
            {**_row(by_external), "member_id": None, "member_external_id": "crm-77"},
        ]
    )

    assert result.created == 3
    members = set(ActivityEvent.objects.values_list("member_id", flat=True))
    assert members == {by_id.pk, by_email.pk, by_external.pk}


def test_ingest_events_retry_with_same_keys_adds_nothing(db):
    member = factories.MemberFactory()
    rows = [_row(member, idempotency_key=f"usage-{i}") for i in range(3)]

    first = ingest_events(rows=rows)
    second = ingest_events(rows=rows)

    assert (first.created, first.duplicates) == (3, 0)
    assert (second.created, second.duplicates) == (0, 3)
    assert ActivityEvent.objects.count() == 3


def test_ingest_events_invalid_row_writes_nothing(db):
    member = factories.MemberFactory()
    rows = [
        _row(member, idempotency_key="ok-1"),
        _row(member, kind="not a kind"),
        {**_row(member), "member_id": None, "member_email": "ghost@nowhere.test"},
    ]

    with pytest.raises(IngestError) as caught:
        ingest_events(rows=rows)

    assert caught.value.row_errors == {
        1: [
            "unknown event kind 'not a kind'; send a registered kind, or name "
            "product usage under product.*, for example product.report_exported"
        ],
        2: [
            "member not found: no confirmed member has member_email "
            "'ghost@nowhere.test'; check the value, or create the member first "
            "with PUT /api/v1/members/by-external-id/<external_id>/. A member "
            "who signed up on the site matches by email once they confirm the "
            "address"
        ],
    }
    assert ActivityEvent.objects.count() == 0


def test_ingest_events_rejects_future_time(db):
    member = factories.MemberFactory()
    future = timezone.now() + timedelta(hours=2)

    with pytest.raises(IngestError) as caught:
        ingest_events(rows=[_row(member, occurred_at=future)])

    assert "is in the future" in caught.value.row_errors[0][0]


def test_ingest_events_rejects_key_repeated_in_batch(db):
    member = factories.MemberFactory()

    with pytest.raises(IngestError) as caught:
        ingest_events(
            rows=[_row(member, idempotency_key="a"), _row(member, idempotency_key="a")]
        )

    assert caught.value.row_errors == {
        1: ["idempotency_key 'a' repeats within the batch"]
    }


def test_ingest_events_runs_handlers_for_subscribed_kinds(db):
    topic = factories.TopicFactory()
    replier = factories.MemberFactory()

    ingest_events(
        rows=[
            _row(
                replier,
                kind="community.reply_posted",
                properties={"topic_id": topic.pk, "is_own_topic": False},
                idempotency_key="imported-reply-1",
            )
        ]
    )

    from apps.advocacy.selectors import get_points_balance

    assert get_points_balance(member=replier) == 10


@pytest.mark.django_db(transaction=True)
def test_ingest_events_concurrent_retries_store_each_key_once():
    import threading

    from django.db import connection

    member = factories.MemberFactory()
    rows = [_row(member, idempotency_key=f"race-{i}") for i in range(50)]
    barrier = threading.Barrier(2)
    errors = []

    def send():
        try:
            barrier.wait()
            ingest_events(rows=rows)
        except Exception as exc:  # collected so the main thread can assert on it
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert ActivityEvent.objects.filter(member=member).count() == 50


def test_ingest_events_matches_email_stored_with_capitals(db):
    member = factories.MemberFactory(user__email="Mixed.Case@acme.test")

    result = ingest_events(
        rows=[
            {**_row(member), "member_id": None, "member_email": "mixed.case@ACME.test"}
        ]
    )

    assert result.created == 1
    assert ActivityEvent.objects.get().member_id == member.pk


def _wait_for_lock_wait(timeout: float = 10) -> bool:
    """Return True once a connection to this database waits for a lock."""
    import time

    from django.db import connections

    with connections["default"].cursor() as cursor:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                return True
            time.sleep(0.05)
    return False


@pytest.mark.django_db(transaction=True)
def test_ingest_events_concurrent_retry_counts_duplicates():
    import threading

    from django.db import connection, transaction

    member = factories.MemberFactory()
    rows = [_row(member, idempotency_key=f"race-{i}") for i in range(20)]
    first_inserted = threading.Event()
    commit_first = threading.Event()
    results = {}
    errors = []

    def send_first():
        try:
            with transaction.atomic():
                results["first"] = ingest_events(rows=rows)
                first_inserted.set()
                commit_first.wait(timeout=30)
        except Exception as exc:  # collected so the main thread can assert on it
            errors.append(exc)
        finally:
            first_inserted.set()
            connection.close()

    def send_second():
        try:
            results["second"] = ingest_events(rows=rows)
        except Exception as exc:  # collected so the main thread can assert on it
            errors.append(exc)
        finally:
            connection.close()

    first = threading.Thread(target=send_first)
    first.start()
    first_inserted.wait(timeout=30)
    # The second batch checks its keys while the first is not yet committed,
    # then waits on the first's uncommitted rows in its insert.
    second = threading.Thread(target=send_second)
    second.start()
    waited = _wait_for_lock_wait()
    commit_first.set()
    first.join()
    second.join()

    assert errors == []
    assert waited
    assert results["first"].created == 20
    assert results["second"].created == 0
    assert results["second"].duplicates == 20
    assert ActivityEvent.objects.filter(member=member).count() == 20


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("member_id", None),
        ("member_email", "old@acme.test"),
        ("member_external_id", "crm-old"),
    ],
)
def test_ingest_events_merged_member_goes_to_survivor(db, field, value):
    survivor = factories.MemberFactory()
    duplicate = factories.MemberFactory(
        user__email="old@acme.test", external_id="crm-old", merged_into=survivor
    )
    row = {**_row(duplicate), "member_id": None, field: value or duplicate.pk}

    result = ingest_events(rows=[row])

    assert result.created == 1
    assert ActivityEvent.objects.get().member_id == survivor.pk


def test_ingest_events_concurrent_reordered_batches(slow_inserts):
    import threading

    from django.db import connection

    slow_inserts("lifecycle_activityevent", "idempotency_key")
    member = factories.MemberFactory()
    rows = [_row(member, idempotency_key=f"slow-{i}") for i in range(2)]
    barrier = threading.Barrier(2)
    results = []
    errors = []

    def send(batch):
        try:
            barrier.wait()
            results.append(ingest_events(rows=batch))
        except Exception as exc:  # collected so the main thread can assert on it
            errors.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=send, args=(rows,)),
        threading.Thread(target=send, args=(rows[::-1],)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sorted(result.created for result in results) == [0, 2]
    assert ActivityEvent.objects.filter(member=member).count() == 2
