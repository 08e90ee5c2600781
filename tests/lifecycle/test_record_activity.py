import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction

from apps.lifecycle import registry
from apps.lifecycle.models import ActivityEvent
from apps.lifecycle.services import record_activity
from rm6.errors import DomainError
from tests import factories


def test_record_activity_stores_member_account_and_subject(db):
    topic = factories.TopicFactory()
    member = topic.author

    event = record_activity(
        member=member,
        kind="community.topic_viewed",
        subject=topic,
        properties={"space": topic.space.slug},
        attribution={"campaign_id": "spring-launch", "utm_source": "email"},
    )

    event.refresh_from_db()
    assert event.account_id == member.account_id
    assert event.subject_type == ContentType.objects.get_for_model(topic)
    assert event.subject_id == str(topic.pk)
    assert event.properties == {"space": topic.space.slug}
    assert event.campaign_id == "spring-launch"
    assert event.utm_source == "email"


def test_record_activity_ignores_unknown_attribution_fields(db):
    member = factories.MemberFactory()

    event = record_activity(
        member=member, kind="membership.signed_in", attribution={"member_id": 99}
    )

    assert event.member_id == member.pk


def test_record_activity_rejects_unregistered_kind(db):
    member = factories.MemberFactory()

    with pytest.raises(DomainError, match=r"Unknown event kind 'community\.nope'"):
        record_activity(member=member, kind="community.nope")
    assert ActivityEvent.objects.count() == 0


def test_record_activity_accepts_kind_from_registered_family(db):
    member = factories.MemberFactory()

    event = record_activity(member=member, kind="product.dashboard_created")

    assert event.kind == "product.dashboard_created"


def test_record_activity_same_idempotency_key_records_once(db):
    member = factories.MemberFactory()

    first = record_activity(
        member=member, kind="membership.signed_in", idempotency_key="k1"
    )
    second = record_activity(
        member=member, kind="membership.signed_in", idempotency_key="k1"
    )

    assert first.pk == second.pk
    assert ActivityEvent.objects.count() == 1


def test_record_activity_schedules_nothing_after_commit(
    db, django_capture_on_commit_callbacks
):
    """The beat tasks find the event in the table; no message per event."""
    member = factories.MemberFactory()

    with django_capture_on_commit_callbacks() as callbacks:
        record_activity(member=member, kind="membership.signed_in")

    assert callbacks == []


def test_record_activity_sets_recorded_at_from_the_database_clock(db):
    member = factories.MemberFactory()
    with connection.cursor() as cursor:
        cursor.execute("SELECT clock_timestamp()")
        before = cursor.fetchone()[0]

    event = record_activity(member=member, kind="membership.signed_in")

    stored = ActivityEvent.objects.get(pk=event.pk).recorded_at
    assert event.recorded_at == stored
    assert before <= stored


def test_record_activity_runs_subscribed_handlers_in_transaction(db):
    member = factories.MemberFactory()
    seen = []
    registry.register_kind("lifecycle.test_handled", "Only for this test.")
    registry.subscribe("lifecycle.test_handled", seen.append)

    event = record_activity(member=member, kind="lifecycle.test_handled")

    assert seen == [event]


def test_register_kind_rejects_name_without_dot():
    with pytest.raises(ValueError, match="invalid event kind 'signedin'"):
        registry.register_kind("signedin", "Bad name.")


def test_sign_in_records_event(client, db):
    member = factories.MemberFactory()

    assert client.login(username=member.user.username, password=factories.PASSWORD)

    kinds = list(
        ActivityEvent.objects.filter(member=member).values_list("kind", flat=True)
    )
    assert kinds == ["membership.signed_in"]


def test_record_activity_handler_error_leaves_no_event(db):
    member = factories.MemberFactory()
    registry.register_kind("lifecycle.test_failing", "Only for this test.")

    def fail(event):
        raise RuntimeError("handler failed")

    registry.subscribe("lifecycle.test_failing", fail)

    # The caller's transaction, as a request's, rolls back with the event.
    with pytest.raises(RuntimeError, match="handler failed"), transaction.atomic():
        record_activity(member=member, kind="lifecycle.test_failing")

    assert ActivityEvent.objects.count() == 0
