"""The periodic release of held Segment messages to members who appeared later."""

import logging
import threading

import pytest
from allauth.account.models import EmailAddress
from django.conf import settings
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from apps.lifecycle.ingestion.held import (
    match_held_events,
    release_held_events,
    release_matched_held_events,
)
from apps.lifecycle.ingestion.sources import create_segment_source
from apps.lifecycle.models import (
    ActivityEvent,
    HeldUsageEvent,
    SegmentIdentity,
    SegmentSource,
)
from apps.lifecycle.tasks import release_matched_held_events_task
from apps.membership.models import Member
from apps.membership.services.members import upsert_member_by_email
from apps.membership.services.merge import merge_members
from rm6.celery import app as celery_app
from tests import factories
from tests.ingestion.helpers import identify, post_batch, track

pytestmark = pytest.mark.django_db


def hold(client, source, *message_ids, user_id="u-9", email=None, **fields):
    """Send tracks that match no member yet and return their held rows."""
    messages = [
        track(message_id, user_id=user_id, **fields) for message_id in message_ids
    ]
    if email:
        for message in messages:
            message["context"]["traits"] = {"email": email}
    response = post_batch(client, source.write_key, messages)
    assert response.json()["held"] == len(message_ids)
    return list(
        HeldUsageEvent.objects.filter(message_id__in=message_ids).order_by("pk")
    )


def statuses() -> dict[str, str]:
    return dict(HeldUsageEvent.objects.values_list("message_id", "status"))


def event_members() -> dict[str, int]:
    return dict(ActivityEvent.objects.values_list("idempotency_key", "member_id"))


def test_release_after_api_upsert(client, segment_source):
    hold(client, segment_source, "m-1", "m-2", user_id="late-995f2a")
    api = APIClient()
    token = Token.objects.create(user=factories.StaffFactory())
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    response = api.put(
        "/api/v1/members/by-external-id/late-995f2a/",
        {"email": "late@acme.test"},
        format="json",
    )
    member = Member.objects.get(external_id="late-995f2a")

    released = release_matched_held_events_task()

    assert response.status_code == 201
    assert released == 2
    assert event_members() == {
        f"segment:{segment_source.pk}:m-1": member.pk,
        f"segment:{segment_source.pk}:m-2": member.pk,
    }
    assert statuses() == {"m-1": "recorded", "m-2": "recorded"}
    assert set(HeldUsageEvent.objects.values_list("member_id", flat=True)) == {
        member.pk
    }


def test_release_event_keeps_message_fields(client, segment_source):
    hold(client, segment_source, "m-1", user_id="u-9")
    factories.MemberFactory(external_id="u-9")

    release_matched_held_events()

    event = ActivityEvent.objects.get()
    assert event.kind == "product.report_exported"
    assert event.properties == {
        "format": "csv",
        "context": {"library": {"name": "analytics-python", "version": "2.4.0"}},
    }
    assert event.occurred_at.isoformat() == "2026-03-02T09:30:00+00:00"


def test_release_by_email_of_new_member(client, segment_source):
    hold(client, segment_source, "m-1", user_id="p-1", email="Erin@Acme.test")
    erin, created = upsert_member_by_email(email="erin@acme.test")

    released = release_matched_held_events()

    assert created is True
    assert released == 1
    assert ActivityEvent.objects.get().member == erin


def test_release_after_external_id_set(client, segment_source):
    hold(client, segment_source, "m-1", user_id="crm-7")
    erin = factories.MemberFactory(external_id="")
    assert release_matched_held_events() == 0

    # As an admin edit of the member would.
    Member.objects.filter(pk=erin.pk).update(external_id="crm-7")
    released = release_matched_held_events()

    assert released == 1
    assert ActivityEvent.objects.get().member == erin


def test_release_after_user_email_changed(client, segment_source):
    hold(
        client,
        segment_source,
        "m-1",
        user_id="",
        email="erin@acme.test",
        anonymousId="a-1",
    )
    erin = factories.MemberFactory(user__email="erin@old.test")

    erin.user.email = "Erin@Acme.test"
    erin.user.save(update_fields=["email"])
    released = release_matched_held_events()

    assert released == 1
    assert ActivityEvent.objects.get().member == erin


def test_release_prefers_external_id_to_email(client, segment_source):
    hold(client, segment_source, "m-1", user_id="u-9", email="marcela@acme.test")
    factories.MemberFactory(user__email="marcela@acme.test")
    erin = factories.MemberFactory(external_id="u-9")

    release_matched_held_events()

    assert ActivityEvent.objects.get().member == erin


def test_release_source_identity_wins(client, segment_source):
    hold(client, segment_source, "m-1", user_id="u-9")
    erin = factories.MemberFactory(external_id="crm-1")
    # The source tied u-9 to Erin, and u-9 later became Marcela's external ID.
    SegmentIdentity.objects.create(source=segment_source, user_id="u-9", member=erin)
    factories.MemberFactory(external_id="u-9")

    release_matched_held_events()

    assert ActivityEvent.objects.get().member == erin


def test_release_identity_only_at_its_source(client, segment_source):
    other, other.write_key = create_segment_source(name="Mobile")
    hold(client, other, "m-1", user_id="u-9")
    erin = factories.MemberFactory(external_id="crm-1")
    SegmentIdentity.objects.create(source=segment_source, user_id="u-9", member=erin)
    marcela = factories.MemberFactory(external_id="u-9")

    release_matched_held_events()

    assert ActivityEvent.objects.get().member == marcela


def test_release_skips_deactivated_member(client, segment_source):
    hold(client, segment_source, "m-1", user_id="u-9")
    factories.MemberFactory(external_id="u-9", deactivated_at=timezone.now())

    released = release_matched_held_events()

    assert released == 0
    assert statuses() == {"m-1": "held"}
    assert not ActivityEvent.objects.exists()


def test_release_skips_anonymised_member(client, segment_source):
    hold(client, segment_source, "m-1", user_id="u-9")
    factories.MemberFactory(external_id="u-9", anonymised_at=timezone.now())

    released = release_matched_held_events()

    assert released == 0
    assert statuses() == {"m-1": "held"}


def test_release_deactivated_identity_member_no_fallback(client, segment_source):
    hold(client, segment_source, "m-1", user_id="u-9")
    erin = factories.MemberFactory(deactivated_at=timezone.now())
    SegmentIdentity.objects.create(source=segment_source, user_id="u-9", member=erin)
    factories.MemberFactory(external_id="u-9")

    released = release_matched_held_events()

    assert released == 0
    assert statuses() == {"m-1": "held"}


def test_release_follows_merges_to_survivor(client, segment_source):
    hold(client, segment_source, "m-1", user_id="u-old")
    first = factories.MemberFactory(external_id="u-new")
    second = factories.MemberFactory(external_id="u-mid")
    duplicate = factories.MemberFactory(external_id="u-old")
    merge_members(survivor=second, duplicate=duplicate, actor=None)
    merge_members(survivor=first, duplicate=second, actor=None)

    released = release_matched_held_events()

    assert released == 1
    assert ActivityEvent.objects.get().member == first
    assert HeldUsageEvent.objects.get().member == first


def test_release_skips_deactivated_survivor(client, segment_source):
    hold(client, segment_source, "m-1", user_id="u-old")
    survivor = factories.MemberFactory(external_id="u-new")
    duplicate = factories.MemberFactory(external_id="u-old")
    merge_members(survivor=survivor, duplicate=duplicate, actor=None)
    Member.objects.filter(pk=survivor.pk).update(deactivated_at=timezone.now())

    released = release_matched_held_events()

    assert released == 0
    assert statuses() == {"m-1": "held"}


def test_release_leaves_unmatched_held(client, segment_source):
    hold(client, segment_source, "m-1", user_id="u-9")
    hold(client, segment_source, "m-2", user_id="", anonymousId="anon-1")
    factories.MemberFactory(external_id="u-1")

    released = release_matched_held_events()

    assert released == 0
    assert statuses() == {"m-1": "held", "m-2": "held"}


def test_release_twice_records_once(client, segment_source):
    hold(client, segment_source, "m-1", "m-2", user_id="u-9")
    factories.MemberFactory(external_id="u-9")

    first = release_matched_held_events()
    second = release_matched_held_events()

    assert first == 2
    assert second == 0
    assert ActivityEvent.objects.count() == 2


def _hold_and_record_again(client, segment_source):
    """Hold m-1 of u-9, then record its resent copy for Erin, who has that ID."""
    hold(client, segment_source, "m-1", user_id="u-9")
    erin = factories.MemberFactory(external_id="u-9", user__email="erin@acme.test")
    # The client sent the message again after Erin appeared.
    resent = track("m-1", user_id="u-9")
    response = post_batch(client, segment_source.write_key, [resent])
    assert response.json()["recorded"] == 1
    return erin


def test_release_message_already_recorded(client, segment_source, caplog):
    erin = _hold_and_record_again(client, segment_source)

    with caplog.at_level(logging.INFO, logger="apps.lifecycle.ingestion.held"):
        released = release_matched_held_events()

    assert released == 0
    assert ActivityEvent.objects.get().member == erin
    assert statuses() == {"m-1": "recorded"}
    assert caplog.records[-1].getMessage() == (
        "held segment messages released to matching members: released=0 "
        "duplicates=1 skipped_inactive=0"
    )


def test_identify_release_counts_recorded_as_duplicate(client, segment_source):
    _hold_and_record_again(client, segment_source)

    response = post_batch(
        client,
        segment_source.write_key,
        [identify("m-2", user_id="u-9", email="erin@acme.test")],
    )

    assert response.json()["identified"] == 1
    assert response.json()["released"] == 0
    assert response.json()["duplicates"] == 1
    assert statuses() == {"m-1": "recorded"}
    assert ActivityEvent.objects.count() == 1


def test_staff_match_counts_recorded_as_duplicate(client, segment_source):
    erin = _hold_and_record_again(client, segment_source)
    held = HeldUsageEvent.objects.get(message_id="m-1")

    result = match_held_events(held_event_ids=[held.pk], member=erin, actor=None)

    assert result.recorded == 0
    assert result.released == 0
    assert result.duplicates == 1
    assert statuses() == {"m-1": "recorded"}
    assert ActivityEvent.objects.count() == 1


def test_release_unrecordable_stays_held(client, segment_source, caplog):
    held = hold(client, segment_source, "m-1", "m-2", user_id="u-9")
    HeldUsageEvent.objects.update(message={"type": "bogus"})
    factories.MemberFactory(external_id="u-9")

    with caplog.at_level(logging.WARNING, logger="apps.lifecycle.ingestion.held"):
        released = release_matched_held_events()

    assert released == 0
    assert statuses() == {"m-1": "held", "m-2": "held"}
    assert [record.getMessage() for record in caplog.records] == [
        "held segment messages not recordable: count=2 "
        f"reasons={{'unknown_type': 2}} sources=[{segment_source.pk}] "
        f"held={[held[0].pk, held[1].pk]}"
    ]


def test_release_batches_past_inactive_matches(client, segment_source):
    hold(client, segment_source, "m-1", "m-2", user_id="u-gone")
    hold(client, segment_source, "m-3", "m-4", "m-5", user_id="u-9")
    factories.MemberFactory(external_id="u-gone", deactivated_at=timezone.now())
    factories.MemberFactory(external_id="u-9")

    released = release_matched_held_events(batch_size=2)

    assert released == 3
    assert statuses() == {
        "m-1": "held",
        "m-2": "held",
        "m-3": "recorded",
        "m-4": "recorded",
        "m-5": "recorded",
    }


def test_release_query_count_fixed(client, segment_source):
    hold(client, segment_source, "a-1", "a-2", user_id="u-a")
    factories.MemberFactory(external_id="u-a")
    with CaptureQueriesContext(connection) as few:
        few_released = release_matched_held_events()

    for name in ("b", "c", "d"):
        ids = [f"{name}-{number}" for number in range(4)]
        hold(client, segment_source, *ids, user_id=f"u-{name}")
        factories.MemberFactory(external_id=f"u-{name}")
    with CaptureQueriesContext(connection) as many:
        many_released = release_matched_held_events()

    assert few_released == 2
    assert many_released == 12
    assert len(many) == len(few)


def test_release_scheduled_on_beat():
    entries = {
        entry["task"]: entry["schedule"]
        for entry in settings.CELERY_BEAT_SCHEDULE.values()
    }

    assert release_matched_held_events_task.name in entries
    assert entries[release_matched_held_events_task.name].total_seconds() == 300
    assert release_matched_held_events_task.name in celery_app.tasks


@pytest.mark.django_db(transaction=True)
def test_release_concurrent_runs_record_once(client, segment_source, slow_inserts):
    # Each event insert sleeps, so the first run holds its row locks while
    # the second one reaches them.
    slow_inserts("lifecycle_activityevent", "utm_source")
    campaign = {"source": "slow-newsletter"}
    messages = [track(f"m-{n}", user_id="u-9") for n in range(3)]
    for message in messages:
        message["context"]["campaign"] = campaign
    post_batch(client, segment_source.write_key, messages)
    factories.MemberFactory(external_id="u-9")
    barrier = threading.Barrier(2)
    outcomes = []

    def release():
        try:
            barrier.wait(timeout=5)
            outcomes.append(release_matched_held_events())
        except Exception as error:  # collected for the asserts below
            outcomes.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=release) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(outcomes) == [0, 3]
    assert ActivityEvent.objects.count() == 3
    assert set(statuses().values()) == {"recorded"}


def test_live_usage_of_deactivated_member_held_until_reactivated(
    client, segment_source
):
    departed = factories.MemberFactory(external_id="u-9", deactivated_at=timezone.now())

    response = post_batch(
        client, segment_source.write_key, [track("m-1", user_id="u-9")]
    )

    assert response.json()["held"] == 1
    assert not ActivityEvent.objects.exists()

    Member.objects.filter(pk=departed.pk).update(deactivated_at=None)
    assert release_matched_held_events() == 1
    assert ActivityEvent.objects.get().member == departed


def _sign_up(email: str, *, confirmed: bool) -> Member:
    """Return a member whose user signed up with a password, as the site does."""
    member = factories.MemberFactory(user__email=email, account=None)
    EmailAddress.objects.create(
        user=member.user, email=email, primary=True, verified=confirmed
    )
    return member


def test_unconfirmed_sign_up_gets_no_usage_by_email(client, segment_source):
    hold(client, segment_source, "m-1", user_id="crm-77", email="vic@example.test")
    claimant = _sign_up("vic@example.test", confirmed=False)

    assert release_matched_held_events() == 0
    response = post_batch(
        client,
        segment_source.write_key,
        [track("m-2", user_id="vic@example.test")],
    )

    assert response.json()["held"] == 1
    assert statuses() == {"m-1": "held", "m-2": "held"}

    EmailAddress.objects.filter(user=claimant.user).update(verified=True)
    assert release_matched_held_events() == 2
    assert set(event_members().values()) == {claimant.pk}


def test_member_created_by_integration_gets_usage_by_email(client, segment_source):
    hold(client, segment_source, "m-1", user_id="crm-77", email="ada@example.test")
    api = APIClient()
    api.force_authenticate(factories.StaffFactory())
    api.put(
        "/api/v1/members/by-external-id/crm-99/",
        {"email": "ada@example.test"},
        format="json",
    )

    assert release_matched_held_events() == 1


def test_release_by_identity_of_anonymous_id(client, segment_source):
    hold(client, segment_source, "m-1", user_id="", anonymousId="anon-1")
    erin = factories.MemberFactory(external_id="crm-1")
    SegmentIdentity.objects.create(source=segment_source, user_id="anon-1", member=erin)

    released = release_matched_held_events()

    assert released == 1
    assert ActivityEvent.objects.get().member == erin


def _hold_message_tied_to_erin(client, segment_source):
    """Hold m-1 from u-9, which the source ties to Erin and is Marcela's external ID."""
    hold(client, segment_source, "m-1", user_id="u-9")
    erin = factories.MemberFactory(external_id="crm-1", user__email="erin@acme.test")
    SegmentIdentity.objects.create(source=segment_source, user_id="u-9", member=erin)
    marcela = factories.MemberFactory(
        external_id="u-9", user__email="marcela@acme.test"
    )
    return erin, marcela


def test_member_release_skips_other_members_identity(client, segment_source):
    erin, marcela = _hold_message_tied_to_erin(client, segment_source)

    release = release_held_events(member=marcela)

    assert release.recorded == 0
    assert statuses() == {"m-1": "held"}
    assert release_matched_held_events() == 1
    assert ActivityEvent.objects.get().member == erin


def test_identify_release_skips_other_members_identity(client, segment_source):
    _hold_message_tied_to_erin(client, segment_source)

    # The identify names Marcela by email, so its release is hers.
    response = post_batch(
        client,
        segment_source.write_key,
        [identify("m-2", user_id=None, anonymousId="a-2", email="marcela@acme.test")],
    )

    assert response.json()["identified"] == 1
    assert response.json()["released"] == 0
    assert statuses() == {"m-1": "held"}


def test_staff_match_release_skips_other_members_identity(client, segment_source):
    _, marcela = _hold_message_tied_to_erin(client, segment_source)
    [other] = hold(client, segment_source, "m-2", user_id="crm-55")

    result = match_held_events(held_event_ids=[other.pk], member=marcela, actor=None)

    assert result.recorded == 1
    assert result.released == 0
    assert statuses() == {"m-1": "held", "m-2": "recorded"}
    assert event_members() == {f"segment:{segment_source.pk}:m-2": marcela.pk}


def test_member_release_external_id_wins_over_email(client, segment_source):
    hold(client, segment_source, "m-1", user_id="u-9", email="zoe@acme.test")
    erin = factories.MemberFactory(external_id="u-9")
    zoe = factories.MemberFactory(external_id="crm-2", user__email="zoe@acme.test")

    release = release_held_events(member=zoe)

    assert release.recorded == 0
    assert statuses() == {"m-1": "held"}
    assert release_matched_held_events() == 1
    assert ActivityEvent.objects.get().member == erin


@pytest.mark.django_db(transaction=True)
def test_member_release_waits_for_concurrent_identity(
    client, segment_source, slow_inserts
):
    # Erin's transaction ties u-9 to her and holds the row lock while Marcela's
    # release starts, whose snapshot does not see the identity yet.
    slow_inserts("lifecycle_activityevent", "utm_source")
    message = track("m-1", user_id="u-9")
    message["context"]["campaign"] = {"source": "slow-newsletter"}
    post_batch(client, segment_source.write_key, [message])
    erin = factories.MemberFactory(external_id="crm-1")
    marcela = factories.MemberFactory(external_id="u-9")
    row_locked = threading.Event()
    outcomes = {}

    def release_for_erin():
        try:
            with transaction.atomic():
                SegmentIdentity.objects.create(
                    source=segment_source, user_id="u-9", member=erin
                )
                HeldUsageEvent.objects.select_for_update().get(message_id="m-1")
                row_locked.set()
                outcomes["erin"] = release_held_events(member=erin).recorded
        except Exception as error:  # collected for the asserts below
            outcomes["erin"] = error
        finally:
            row_locked.set()
            connection.close()

    def release_for_marcela():
        try:
            row_locked.wait(timeout=5)
            outcomes["marcela"] = release_held_events(member=marcela).recorded
        except Exception as error:  # collected for the asserts below
            outcomes["marcela"] = error
        finally:
            connection.close()

    threads = [
        threading.Thread(target=release_for_erin),
        threading.Thread(target=release_for_marcela),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert outcomes == {"erin": 1, "marcela": 0}
    assert ActivityEvent.objects.get().member == erin


def test_release_prefix_outside_families_warns_once(client, segment_source, caplog):
    hold(client, segment_source, "m-1", "m-2", "m-3", user_id="u-9")
    factories.MemberFactory(external_id="u-9")
    # The admin rejects such a prefix, so only SQL can set it.
    SegmentSource.objects.filter(pk=segment_source.pk).update(event_prefix="community")

    with caplog.at_level(logging.INFO, logger="apps.lifecycle.ingestion.held"):
        released = release_matched_held_events(batch_size=2)

    assert released == 0
    assert statuses() == {"m-1": "held", "m-2": "held", "m-3": "held"}
    problems = [
        record for record in caplog.records if record.levelno >= logging.WARNING
    ]
    assert [(record.levelname, record.getMessage()) for record in problems] == [
        (
            "WARNING",
            "held segment messages not recordable: count=3 "
            f"reasons={{'invalid_event_prefix': 3}} sources=[{segment_source.pk}] "
            f"held={sorted(HeldUsageEvent.objects.values_list('pk', flat=True))}",
        )
    ]
