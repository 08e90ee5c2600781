"""Admin for Segment sources and held usage messages."""

import hashlib
import re

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.lifecycle.ingestion.held import discard_held_events
from apps.lifecycle.ingestion.sources import create_segment_source
from apps.lifecycle.models import (
    ActivityEvent,
    HeldUsageEvent,
    SegmentIdentity,
    SegmentSource,
)
from tests import factories
from tests.ingestion.helpers import post_batch, track

SOURCES_URL = "/admin/lifecycle/segmentsource/"
HELD_URL = "/admin/lifecycle/heldusageevent/"
WRITE_KEY_PATTERN = re.compile(r"Write key for “[^”]+”: (\S+) — copy it now\.")


def shown_write_key(response) -> str:
    texts = [str(message) for message in get_messages(response.wsgi_request)]
    keys = [
        match.group(1) for text in texts if (match := WRITE_KEY_PATTERN.search(text))
    ]
    assert len(keys) == 1, texts
    return keys[0]


def message_texts(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def hold(client, source, *message_ids, user_id="u-9"):
    messages = [track(message_id, user_id=user_id) for message_id in message_ids]
    post_batch(client, source.write_key, messages)
    return list(
        HeldUsageEvent.objects.filter(message_id__in=message_ids).order_by("pk")
    )


def match_to_member(admin_client, member, held):
    """Run the changelist action "Match to member" on one held message."""
    return admin_client.post(
        HELD_URL,
        {
            "action": "match_to_member",
            "member": member.pk,
            ACTION_CHECKBOX_NAME: [held.pk],
        },
    )


def test_source_add_shows_write_key_once(admin_client, client):
    member = factories.MemberFactory(external_id="u-1")

    response = admin_client.post(
        f"{SOURCES_URL}add/",
        {"name": "Product", "event_prefix": "product", "is_active": "on"},
    )

    assert response.status_code == 302
    write_key = shown_write_key(response)
    source = SegmentSource.objects.get()
    assert source.write_key_digest == hashlib.sha256(write_key.encode()).hexdigest()
    assert source.write_key_prefix == write_key[:8]
    change_url = f"{SOURCES_URL}{source.pk}/change/"
    assert write_key in admin_client.get(change_url).content.decode()
    assert write_key not in admin_client.get(change_url).content.decode()
    assert post_batch(client, write_key, [track("m-1")]).status_code == 200
    assert ActivityEvent.objects.get().member == member


def test_source_add_and_change_links_identities(admin_client):
    data = {"name": "Backend", "event_prefix": "product", "is_active": "on"}

    admin_client.post(f"{SOURCES_URL}add/", {**data, "links_identities": "on"})
    source = SegmentSource.objects.get()
    linked = source.links_identities
    admin_client.post(f"{SOURCES_URL}{source.pk}/change/", data)
    source.refresh_from_db()

    assert linked is True
    assert source.links_identities is False


def test_source_add_unregistered_prefix_rejected(admin_client):
    response = admin_client.post(
        f"{SOURCES_URL}add/",
        {"name": "Billing", "event_prefix": "billing", "is_active": "on"},
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["event_prefix"] == [
        "No kind family registered for integrations covers 'billing', so every "
        "tracked event would be rejected. Use a prefix under one of: product.*."
    ]
    assert not SegmentSource.objects.exists()


@pytest.mark.parametrize("prefix", ["Product", "product.", "product..x", "9product"])
def test_source_add_malformed_prefix_rejected(admin_client, prefix):
    response = admin_client.post(
        f"{SOURCES_URL}add/", {"name": "P", "event_prefix": prefix, "is_active": "on"}
    )

    assert response.status_code == 200
    assert "is not a valid event prefix" in str(
        response.context["adminform"].form.errors["event_prefix"]
    )
    assert not SegmentSource.objects.exists()


def test_source_add_prefix_under_family_accepted(admin_client):
    response = admin_client.post(
        f"{SOURCES_URL}add/",
        {"name": "Billing", "event_prefix": "product.billing", "is_active": "on"},
    )

    assert response.status_code == 302
    assert SegmentSource.objects.get().event_prefix == "product.billing"


def test_source_deactivated_in_admin_rejects_key(admin_client, client, segment_source):
    response = admin_client.post(
        f"{SOURCES_URL}{segment_source.pk}/change/",
        {"name": "Product", "event_prefix": "product"},
    )

    assert response.status_code == 302
    segment_source.refresh_from_db()
    assert segment_source.is_active is False
    assert (
        post_batch(client, segment_source.write_key, [track("m-1")]).status_code == 403
    )


def test_source_admin_labels_active_field(admin_client, segment_source):
    response = admin_client.get(f"{SOURCES_URL}{segment_source.pk}/change/")

    assert "Is active" in response.content.decode()


def test_rotate_write_key_replaces_old_key(admin_client, client, segment_source):
    factories.MemberFactory(external_id="u-1")

    response = admin_client.post(
        SOURCES_URL,
        {"action": "rotate_write_key", ACTION_CHECKBOX_NAME: [segment_source.pk]},
    )

    new_key = shown_write_key(response)
    assert (
        post_batch(client, segment_source.write_key, [track("m-1")]).status_code == 401
    )
    assert post_batch(client, new_key, [track("m-1")]).status_code == 200


def test_source_changelist_shows_held_against_limit(
    admin_client, client, segment_source, settings
):
    settings.RM6_SEGMENT_MAX_HELD_MESSAGES = 3
    [held, _] = hold(client, segment_source, "m-1", "m-2")
    discard_held_events(held_event_ids=[held.pk])
    create_segment_source(name="Web app")

    response = admin_client.get(SOURCES_URL)

    assert response.status_code == 200
    assert '<td class="field-held_messages">1 of 3</td>' in response.text
    assert '<td class="field-held_messages">0 of 3</td>' in response.text


def test_source_change_page_says_held_limit_reached(
    admin_client, client, segment_source, settings
):
    settings.RM6_SEGMENT_MAX_HELD_MESSAGES = 2
    hold(client, segment_source, "m-1", "m-2")

    response = admin_client.get(f"{SOURCES_URL}{segment_source.pk}/change/")

    assert response.status_code == 200
    assert "2 of 2: limit reached, new unmatched messages are dropped" in response.text


def test_source_admin_without_held_limit(admin_client, segment_source, settings):
    settings.RM6_SEGMENT_MAX_HELD_MESSAGES = 0

    response = admin_client.get(SOURCES_URL)

    assert '<td class="field-held_messages">0 (no limit)</td>' in response.text


def test_source_add_page_shows_no_held_count(admin_client):
    response = admin_client.get(f"{SOURCES_URL}add/")

    assert response.status_code == 200


def test_match_to_member_counts_recorded_as_duplicate(
    admin_client, client, segment_source
):
    [held] = hold(client, segment_source, "m-1")
    erin = factories.MemberFactory(external_id="u-9")
    post_batch(client, segment_source.write_key, [track("m-1", user_id="u-9")])

    response = match_to_member(admin_client, erin, held)

    assert message_texts(response) == [
        f"Recorded 0 held message(s) as events of {erin}. The member's external "
        "ID is now u-9, so that user's later messages match by themselves. 1 "
        "held message(s) had been recorded already, when the client sent them "
        "again, so no second event was created."
    ]
    assert ActivityEvent.objects.count() == 1


def test_rotate_write_key_needs_one_source(admin_client, segment_source):
    other, _ = create_segment_source(name="Mobile")
    digests = set(SegmentSource.objects.values_list("write_key_digest", flat=True))

    response = admin_client.post(
        SOURCES_URL,
        {
            "action": "rotate_write_key",
            ACTION_CHECKBOX_NAME: [segment_source.pk, other.pk],
        },
    )

    assert message_texts(response) == [
        "Select exactly one source: each new write key is shown once, so keys are "
        "generated one source at a time."
    ]
    assert (
        set(SegmentSource.objects.values_list("write_key_digest", flat=True)) == digests
    )


def test_held_changelist_filters_and_search(admin_client, client, segment_source):
    held, _ = hold(client, segment_source, "m-1", "m-2")
    HeldUsageEvent.objects.filter(pk=held.pk).update(status="discarded")

    by_status = admin_client.get(HELD_URL, {"status__exact": "held"})
    by_search = admin_client.get(HELD_URL, {"q": "u-9"})
    by_source = admin_client.get(HELD_URL, {"source__id__exact": segment_source.pk})

    assert [row.message_id for row in by_status.context["cl"].result_list] == ["m-2"]
    assert by_search.context["cl"].result_count == 2
    assert by_source.context["cl"].result_count == 2


def test_held_changelist_query_count_fixed(admin_client, client, segment_source):
    hold(client, segment_source, "m-1", user_id="u-1")
    admin_client.get(HELD_URL)
    with CaptureQueriesContext(connection) as few:
        admin_client.get(HELD_URL)

    for number in range(2, 8):
        hold(client, segment_source, f"m-{number}", user_id=f"u-{number}")
    with CaptureQueriesContext(connection) as many:
        response = admin_client.get(HELD_URL)

    assert response.context["cl"].result_count == 7
    assert len(many) == len(few)


def test_held_change_page_returns_200(admin_client, client, segment_source):
    (held,) = hold(client, segment_source, "m-1")

    response = admin_client.get(f"{HELD_URL}{held.pk}/change/")

    assert response.status_code == 200


def test_match_to_member_records_and_links(admin_client, client, segment_source):
    selected, _ = hold(client, segment_source, "m-1", "m-2")
    erin = factories.MemberFactory()

    response = match_to_member(admin_client, erin, selected)

    assert message_texts(response) == [
        f"Recorded 1 held message(s) as events of {erin}. The member's external ID "
        "is now u-9, so that user's later messages match by themselves. 1 more "
        "held message(s) of the member were recorded too."
    ]
    erin.refresh_from_db()
    selected.refresh_from_db()
    assert erin.external_id == "u-9"
    assert selected.status == HeldUsageEvent.Status.RECORDED
    assert selected.member == erin
    assert ActivityEvent.objects.filter(member=erin).count() == 2
    post_batch(client, segment_source.write_key, [track("m-3", user_id="u-9")])
    assert ActivityEvent.objects.filter(member=erin).count() == 3


def test_match_to_member_with_external_id_ties_identity(
    admin_client, client, segment_source
):
    selected, _ = hold(client, segment_source, "m-1", "m-2")
    erin = factories.MemberFactory(external_id="crm-1")

    response = match_to_member(admin_client, erin, selected)

    assert message_texts(response) == [
        f"Recorded 1 held message(s) as events of {erin}. {segment_source.name} "
        "now ties u-9 to the member, next to the external ID crm-1, so that "
        "user's later messages from it match by themselves. 1 more held "
        "message(s) of the member were recorded too."
    ]
    erin.refresh_from_db()
    assert erin.external_id == "crm-1"
    post_batch(client, segment_source.write_key, [track("m-3", user_id="u-9")])
    assert ActivityEvent.objects.filter(member=erin).count() == 3


def test_match_to_deleted_member_refused(admin_client, client, segment_source):
    (held,) = hold(client, segment_source, "m-1")
    departed = factories.MemberFactory(deactivated_at=timezone.now())

    response = match_to_member(admin_client, departed, held)

    held.refresh_from_db()
    assert held.status == HeldUsageEvent.Status.HELD
    assert message_texts(response) == [
        f"{departed} is deactivated or deleted, so no usage is recorded for them. "
        "Choose an active member, or discard the messages."
    ]


def test_identity_admin_cannot_add(admin_client):
    response = admin_client.get("/admin/lifecycle/segmentidentity/add/")

    assert response.status_code == 403


def test_match_without_member_changes_nothing(admin_client, client, segment_source):
    (held,) = hold(client, segment_source, "m-1")

    response = admin_client.post(
        HELD_URL, {"action": "match_to_member", ACTION_CHECKBOX_NAME: [held.pk]}
    )

    held.refresh_from_db()
    assert held.status == HeldUsageEvent.Status.HELD
    assert not ActivityEvent.objects.exists()
    assert message_texts(response) == [
        "No member selected: choose one in the Member box next to the action, "
        "then run “Match to member” again."
    ]


def test_match_to_member_skips_resolved_messages(admin_client, client, segment_source):
    (held,) = hold(client, segment_source, "m-1")
    HeldUsageEvent.objects.filter(pk=held.pk).update(status="discarded")
    erin = factories.MemberFactory(external_id="crm-1")

    match_to_member(admin_client, erin, held)

    held.refresh_from_db()
    assert held.status == HeldUsageEvent.Status.DISCARDED
    assert not ActivityEvent.objects.exists()


def test_discard_marks_held_messages(admin_client, client, segment_source):
    first, second = hold(client, segment_source, "m-1", "m-2")

    response = admin_client.post(
        HELD_URL, {"action": "discard", ACTION_CHECKBOX_NAME: [first.pk]}
    )

    first.refresh_from_db()
    second.refresh_from_db()
    assert message_texts(response) == ["Discarded 1 held message(s)."]
    assert first.status == HeldUsageEvent.Status.DISCARDED
    assert first.resolved_at is not None
    assert second.status == HeldUsageEvent.Status.HELD


def test_discarded_message_retry_not_held_again(admin_client, client, segment_source):
    (held,) = hold(client, segment_source, "m-1")
    admin_client.post(HELD_URL, {"action": "discard", ACTION_CHECKBOX_NAME: [held.pk]})

    response = post_batch(
        client, segment_source.write_key, [track("m-1", user_id="u-9")]
    )

    assert response.json()["duplicates"] == 1
    assert HeldUsageEvent.objects.get().status == HeldUsageEvent.Status.DISCARDED


def test_member_cannot_open_admin(member_client, segment_source):
    response = member_client.get(HELD_URL)

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_staff_without_permission_cannot_discard(staff_client, client, segment_source):
    (held,) = hold(client, segment_source, "m-1")

    response = staff_client.post(
        HELD_URL, {"action": "discard", ACTION_CHECKBOX_NAME: [held.pk]}
    )

    held.refresh_from_db()
    assert response.status_code == 403
    assert held.status == HeldUsageEvent.Status.HELD


def test_staff_without_permission_cannot_add_source(staff_client):
    response = staff_client.post(
        f"{SOURCES_URL}add/", {"name": "Product", "event_prefix": "product"}
    )

    assert response.status_code == 403
    assert not SegmentSource.objects.exists()


def test_held_change_page_has_no_save_button(admin_client, client, segment_source):
    (held,) = hold(client, segment_source, "m-1")

    response = admin_client.get(f"{HELD_URL}{held.pk}/change/")

    assert 'name="_save"' not in response.content.decode()


def test_match_from_browser_source_ties_only_that_source(admin_client, client):
    browser, write_key = create_segment_source(name="Web app")
    browser.write_key = write_key
    (held,) = hold(client, browser, "m-1")
    lynn = factories.MemberFactory(external_id="")

    response = match_to_member(admin_client, lynn, held)

    lynn.refresh_from_db()
    assert lynn.external_id == ""
    assert message_texts(response) == [
        f"Recorded 1 held message(s) as events of {lynn}. Web app now ties u-9 "
        "to the member, so that user's later messages from it match by "
        "themselves."
    ]
    identity = SegmentIdentity.objects.get()
    assert (identity.source, identity.member) == (browser, lynn)
