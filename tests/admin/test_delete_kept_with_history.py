"""The action "Delete selected" on admins that keep objects with history."""

import html
import json
import threading
import time

import pytest
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.models import DELETION, LogEntry
from django.contrib.auth.models import Permission
from django.db import connection, transaction
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone

from apps.lifecycle.models import (
    Enrolment,
    Play,
    PlayStep,
    WebhookDelivery,
    WebhookEndpoint,
)
from apps.lifecycle.plays.services import Candidate, enrol_subjects
from tests import factories
from tests.plays.factories import PlayFactory, PlayStepFactory

PLAYS_URL = reverse("admin:lifecycle_play_changelist")
ENDPOINTS_URL = reverse("admin:lifecycle_webhookendpoint_changelist")

WELCOME_KEPT = "Welcome: it has 1 enrolment, the play's history. Pause it instead."
RENEWAL_KEPT = "Renewal: it has 1 enrolment, the play's history. Pause it instead."
LOCK_WAIT_TIMEOUT_SECONDS = 10


def enrol(play: Play) -> None:
    member = factories.MemberFactory()
    enrol_subjects(
        play=play,
        candidates=[
            Candidate(
                occurrence_key="x", member_id=member.pk, account_id=member.account_id
            )
        ],
    )


def delete_selected(objs, *, is_confirmed: bool) -> dict:
    data = {"action": "delete_selected", ACTION_CHECKBOX_NAME: [o.pk for o in objs]}
    if is_confirmed:
        data["post"] = "yes"
    return data


def message_texts(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def make_endpoint(name: str) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(
        name=name,
        url=f"https://{name.lower()}.example.com/hooks",
        secret="whsec_test-secret",
    )


@pytest.mark.django_db
def test_delete_selected_plays_confirmation_lists_kept(admin_client):
    used = PlayFactory(name="Welcome")
    enrol(used)
    drafts = [PlayFactory(name="Draft A"), PlayFactory(name="Draft B")]

    response = admin_client.post(
        PLAYS_URL, delete_selected([used, *drafts], is_confirmed=False)
    )

    assert response.status_code == 200
    assert response.context["kept"] == [WELCOME_KEPT]
    assert response.context["protected"] == []
    assert list(response.context["model_count"]) == [("plays", 2)]
    assert "Draft A</a>" in response.content.decode()
    assert "Draft B</a>" in response.content.decode()
    assert 'name="post" value="yes"' in response.content.decode()
    assert Play.objects.count() == 3


@pytest.mark.django_db
def test_delete_selected_plays_keeps_enrolled(admin_client):
    used = PlayFactory(name="Welcome")
    enrol(used)
    drafts = [PlayFactory(name="Draft A"), PlayFactory(name="Draft B")]

    response = admin_client.post(
        PLAYS_URL, delete_selected([used, *drafts], is_confirmed=True), follow=True
    )

    assert response.status_code == 200
    assert list(Play.objects.values_list("name", flat=True)) == ["Welcome"]
    assert Enrolment.objects.filter(play=used).count() == 1
    assert message_texts(response) == [
        "Successfully deleted 2 plays.",
        f"Kept the play {WELCOME_KEPT}",
    ]
    deletions = LogEntry.objects.filter(action_flag=DELETION)
    assert sorted(deletions.values_list("object_repr", flat=True)) == [
        "Draft A",
        "Draft B",
    ]


@pytest.mark.django_db
def test_delete_selected_endpoints_keeps_used(admin_client):
    logged = make_endpoint("CRM")
    WebhookDelivery.objects.create(
        endpoint=logged,
        delivery_key="test:one",
        event_kind="play.step",
        payload={},
    )
    targeted = make_endpoint("Billing")
    PlayStepFactory(
        play=PlayFactory(play_id="renewal", name="Renewal nudge"),
        position=2,
        action="webhook",
        config={"endpoint_id": targeted.pk},
    )
    spare = make_endpoint("Spare")
    selected = [logged, targeted, spare]

    confirmation = admin_client.post(
        ENDPOINTS_URL, delete_selected(selected, is_confirmed=False)
    )
    response = admin_client.post(
        ENDPOINTS_URL, delete_selected(selected, is_confirmed=True), follow=True
    )

    crm_kept = (
        "CRM: it has 1 logged delivery, the record of what was sent. Untick "
        "“Is active” to stop sending to it."
    )
    billing_kept = (
        "Billing: step 2 of the active play Renewal nudge sends webhooks to it. "
        "Point that step at another endpoint first."
    )
    assert confirmation.context["kept"] == [billing_kept, crm_kept]
    assert list(confirmation.context["model_count"]) == [("webhook endpoints", 1)]
    assert sorted(WebhookEndpoint.objects.values_list("name", flat=True)) == [
        "Billing",
        "CRM",
    ]
    assert message_texts(response) == [
        "Successfully deleted 1 webhook endpoint.",
        f"Kept the webhook endpoint {billing_kept}",
        f"Kept the webhook endpoint {crm_kept}",
    ]


@pytest.mark.django_db
def test_delete_selected_all_used_deletes_nothing(admin_client):
    plays = [PlayFactory(name="Welcome"), PlayFactory(name="Renewal")]
    for play in plays:
        enrol(play)

    confirmation = admin_client.post(
        PLAYS_URL, delete_selected(plays, is_confirmed=False)
    )
    response = admin_client.post(
        PLAYS_URL, delete_selected(plays, is_confirmed=True), follow=True
    )

    page = confirmation.content.decode()
    assert confirmation.context["title"] == "Cannot delete plays"
    assert confirmation.context["protected"] == []
    assert confirmation.context["kept"] == [RENEWAL_KEPT, WELCOME_KEPT]
    assert not confirmation.context["perms_lacking"]
    assert "None of the selected plays can be deleted:" in page
    assert "protected related objects" not in page
    assert 'name="post"' not in page
    assert Play.objects.count() == 2
    assert message_texts(response) == [
        f"Kept the play {RENEWAL_KEPT}",
        f"Kept the play {WELCOME_KEPT}",
    ]


def used_endpoint(name: str) -> WebhookEndpoint:
    endpoint = make_endpoint(name)
    WebhookDelivery.objects.create(
        endpoint=endpoint,
        delivery_key=f"test:{name}",
        event_kind="play.step",
        payload={},
    )
    return endpoint


@pytest.mark.django_db
def test_delete_selected_one_used_endpoint_singular(admin_client):
    endpoint = used_endpoint("CRM")

    confirmation = admin_client.post(
        ENDPOINTS_URL, delete_selected([endpoint], is_confirmed=False)
    )

    page = confirmation.content.decode()
    assert confirmation.context["title"] == "Cannot delete webhook endpoint"
    assert "The selected webhook endpoint cannot be deleted:" in page
    assert "None of the selected" not in page
    assert 'name="post"' not in page
    assert WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()


@pytest.mark.django_db
def test_delete_selected_used_endpoints_plural(admin_client):
    endpoints = [used_endpoint("CRM"), used_endpoint("Billing")]

    confirmation = admin_client.post(
        ENDPOINTS_URL, delete_selected(endpoints, is_confirmed=False)
    )

    page = confirmation.content.decode()
    assert confirmation.context["title"] == "Cannot delete webhook endpoints"
    assert "None of the selected webhook endpoints can be deleted:" in page
    assert 'name="post"' not in page
    assert WebhookEndpoint.objects.count() == 2


@pytest.mark.django_db
def test_delete_selected_checks_again_when_confirmed(admin_client):
    play = PlayFactory(name="Welcome")
    draft = PlayFactory(name="Draft")

    confirmation = admin_client.post(
        PLAYS_URL, delete_selected([play, draft], is_confirmed=False)
    )
    enrol(play)
    response = admin_client.post(
        PLAYS_URL, delete_selected([play, draft], is_confirmed=True), follow=True
    )

    assert confirmation.context["kept"] == []
    assert list(confirmation.context["model_count"]) == [("plays", 2)]
    assert list(Play.objects.values_list("name", flat=True)) == ["Welcome"]
    assert message_texts(response) == [
        "Successfully deleted 1 play.",
        f"Kept the play {WELCOME_KEPT}",
    ]


@pytest.mark.django_db
def test_delete_selected_needs_delete_permission(client):
    staff = factories.StaffFactory()
    staff.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_play", "change_play"])
    )
    client.force_login(staff)
    draft = PlayFactory(name="Draft")

    response = client.post(
        PLAYS_URL, delete_selected([draft], is_confirmed=True), follow=True
    )

    assert Play.objects.filter(pk=draft.pk).exists()
    assert message_texts(response) == ["No action selected."]


def wait_for_lock_waiter(
    *, count: int = 1, unless_finished: threading.Thread | None = None
) -> bool:
    """Poll until `count` other sessions of the test database wait for a lock.

    Return False if they do not within LOCK_WAIT_TIMEOUT_SECONDS, or as soon
    as the thread `unless_finished` ends, because then it did not wait.
    """
    deadline = time.monotonic() + LOCK_WAIT_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0] >= count:
                return True
        if unless_finished is not None and not unless_finished.is_alive():
            return False
        time.sleep(0.05)
    return False


def post_while_enrolment_waits(client, play, url: str, data: dict):
    """Post to `url` while another session keeps an enrolment uncommitted.

    Return the response. The enrolment's transaction has passed its foreign
    key check, so it keeps a key-share lock on the play until it commits,
    which it does once the request waits for a lock.
    """
    member = factories.MemberFactory()
    key_checked = threading.Event()
    release = threading.Event()
    responses = []
    errors = []

    def enrol_and_commit():
        try:
            with transaction.atomic():
                # Created directly, so that its commit sends no Celery message.
                Enrolment.objects.create(
                    play=play,
                    member=member,
                    subject_key=f"member:{member.pk}",
                    occurrence_key="x",
                    enrolled_at=timezone.now(),
                )
                # Run the deferred foreign key check now, as the commit would,
                # so this transaction holds its key-share lock on the play
                # when the deletion starts.
                with connection.cursor() as cursor:
                    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                key_checked.set()
                release.wait(timeout=30)
        except Exception as error:
            # An exception in a thread would not fail the test by itself.
            errors.append(error)
        finally:
            connection.close()

    def post():
        try:
            responses.append(client.post(url, data, follow=True))
        except Exception as error:
            errors.append(error)
        finally:
            connection.close()

    enroller = threading.Thread(target=enrol_and_commit)
    poster = threading.Thread(target=post)
    enroller.start()
    try:
        assert key_checked.wait(timeout=10)
        poster.start()
        assert wait_for_lock_waiter()
    finally:
        release.set()
        enroller.join(timeout=30)
        if poster.ident is not None:
            poster.join(timeout=30)

    assert errors == []
    return responses[0]


@pytest.mark.django_db(transaction=True)
def test_delete_selected_waits_for_enrolment_commit(admin_client):
    play = PlayFactory(name="Welcome")

    response = post_while_enrolment_waits(
        admin_client, play, PLAYS_URL, delete_selected([play], is_confirmed=True)
    )

    assert Play.objects.filter(pk=play.pk).exists()
    assert Enrolment.objects.filter(play=play).count() == 1
    assert message_texts(response) == [f"Kept the play {WELCOME_KEPT}"]


@pytest.mark.django_db
def test_delete_page_with_new_history_deletes_nothing(admin_client):
    play = PlayFactory(name="Welcome")
    delete_url = reverse("admin:lifecycle_play_delete", args=[play.pk])

    page = admin_client.get(delete_url)
    enrol(play)
    response = admin_client.post(delete_url, {"post": "yes"})

    assert page.context["protected"] == []
    assert response.status_code == 200
    assert response.context["protected"] == [WELCOME_KEPT]
    assert Play.objects.filter(pk=play.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_delete_page_waits_for_enrolment_commit(admin_client):
    play = PlayFactory(name="Welcome")
    delete_url = reverse("admin:lifecycle_play_delete", args=[play.pk])

    response = post_while_enrolment_waits(
        admin_client, play, delete_url, {"post": "yes"}
    )

    assert Play.objects.filter(pk=play.pk).exists()
    assert Enrolment.objects.filter(play=play).count() == 1
    assert response.redirect_chain[-1][0] == reverse(
        "admin:lifecycle_play_change", args=[play.pk]
    )
    assert message_texts(response) == [f"Kept the play {WELCOME_KEPT}"]


@pytest.mark.django_db
def test_delete_page_deletes_unused_play(admin_client):
    draft = PlayFactory(name="Draft")
    delete_url = reverse("admin:lifecycle_play_delete", args=[draft.pk])

    response = admin_client.post(delete_url, {"post": "yes"}, follow=True)

    assert not Play.objects.filter(pk=draft.pk).exists()
    assert response.redirect_chain[-1][0] == PLAYS_URL


@pytest.mark.django_db
def test_delete_page_lists_reason_not_protected_objects(admin_client):
    play = PlayFactory(name="Welcome")
    enrol(play)

    response = admin_client.get(reverse("admin:lifecycle_play_delete", args=[play.pk]))

    page = response.content.decode()
    assert "This play cannot be deleted:" in page
    assert html.escape(WELCOME_KEPT) in page
    assert "protected related objects" not in page
    assert 'name="post"' not in page


@pytest.mark.django_db
def test_paused_play_kept_without_pause_advice(admin_client):
    play = PlayFactory(name="Welcome", status=Play.Status.PAUSED)
    enrol(play)

    response = admin_client.get(reverse("admin:lifecycle_play_delete", args=[play.pk]))

    assert response.context["kept_reasons"] == [
        "Welcome: it has 1 enrolment, the play's history. It enrols no one while "
        "it is not active, so it can stay as it is."
    ]


@pytest.mark.django_db
def test_endpoint_delete_page_names_draft_and_paused_steps(admin_client):
    endpoint = make_endpoint("Billing")
    draft = PlayFactory(name="Welcome", status=Play.Status.DRAFT, activated_at=None)
    paused = PlayFactory(name="Renewal nudge", status=Play.Status.PAUSED)
    for play, position in [(draft, 3), (draft, 1), (paused, 2)]:
        PlayStepFactory(
            play=play,
            position=position,
            action="webhook",
            config={"endpoint_id": endpoint.pk},
        )
    delete_url = reverse("admin:lifecycle_webhookendpoint_delete", args=[endpoint.pk])

    page = admin_client.get(delete_url)
    response = admin_client.post(delete_url, {"post": "yes"})

    assert page.context["kept_reasons"] == [
        "Billing: step 2 of the paused play Renewal nudge and steps 1 and 3 of the "
        "draft play Welcome send webhooks to it. Point them at another endpoint "
        "first. Steps of draft and paused plays count, because those plays can be "
        "activated later."
    ]
    assert 'name="post"' not in page.content.decode()
    assert response.status_code == 200
    assert WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()


def _play_change_with_webhook_step(play: Play, endpoint: WebhookEndpoint) -> dict:
    """Return the POST data of a play's change form that adds a webhook step."""
    return {
        "name": play.name,
        "play_id": play.play_id,
        "campaign_id": "",
        "description": "",
        "subject_level": play.subject_level,
        "trigger": play.trigger,
        "trigger_event_kind": play.trigger_event_kind,
        "trigger_band": "",
        "trigger_hours": "",
        "trigger_days": "",
        "holdout_percent": "0",
        "steps-TOTAL_FORMS": "1",
        "steps-INITIAL_FORMS": "0",
        "steps-MIN_NUM_FORMS": "0",
        "steps-MAX_NUM_FORMS": "1000",
        "steps-0-position": "1",
        "steps-0-action": "webhook",
        "steps-0-wait_hours": "",
        "steps-0-consent_purpose": "",
        "steps-0-config": json.dumps({"endpoint_id": endpoint.pk}),
    }


def _start_thread(target, errors: list) -> threading.Thread:
    """Start `target` in a thread with its own database connection.

    An exception in a thread would not fail the test by itself, so it is
    appended to `errors`.
    """

    def run():
        try:
            target()
        except Exception as error:
            errors.append(error)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _signed_in_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("is_bulk", [False, True], ids=["delete-page", "bulk-action"])
@pytest.mark.django_db(transaction=True)
def test_endpoint_delete_waits_for_step_save(admin_user, is_bulk):
    endpoint = make_endpoint("Billing")
    play = PlayFactory(name="Welcome", status=Play.Status.DRAFT, activated_at=None)
    change_url = reverse("admin:lifecycle_play_change", args=[play.pk])
    if is_bulk:
        delete_url = ENDPOINTS_URL
        delete_data = delete_selected([endpoint], is_confirmed=True)
    else:
        delete_url = reverse(
            "admin:lifecycle_webhookendpoint_delete", args=[endpoint.pk]
        )
        delete_data = {"post": "yes"}
    saver = _signed_in_client(admin_user)
    deleter = _signed_in_client(admin_user)
    play_locked = threading.Event()
    release = threading.Event()
    responses = {}
    errors = []

    def hold_play_row():
        # The step save validates its forms, then waits here to update the
        # play, with its transaction and the locks it took still open.
        with transaction.atomic():
            Play.objects.select_for_update().get(pk=play.pk)
            play_locked.set()
            release.wait(timeout=30)

    def save_step():
        data = _play_change_with_webhook_step(play, endpoint)
        responses["save"] = saver.post(change_url, data)

    def delete_endpoint():
        responses["delete"] = deleter.post(delete_url, delete_data, follow=True)

    threads = [_start_thread(hold_play_row, errors)]
    try:
        assert play_locked.wait(timeout=10)
        threads.append(_start_thread(save_step, errors))
        assert wait_for_lock_waiter()
        threads.append(_start_thread(delete_endpoint, errors))
        delete_waited = wait_for_lock_waiter(count=2, unless_finished=threads[-1])
    finally:
        release.set()
        for thread in threads:
            thread.join(timeout=30)

    assert errors == []
    assert responses["save"].status_code == 302
    assert WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()
    assert PlayStep.objects.filter(play=play, action="webhook").count() == 1
    assert message_texts(responses["delete"]) == [
        "Kept the webhook endpoint Billing: step 1 of the draft play Welcome sends "
        "webhooks to it. Point that step at another endpoint first. Steps of "
        "draft and paused plays count, because those plays can be activated later."
    ]
    assert delete_waited


@pytest.mark.django_db(transaction=True)
def test_step_save_waits_for_endpoint_delete(admin_user):
    endpoint = make_endpoint("Billing")
    play = PlayFactory(name="Welcome", status=Play.Status.DRAFT, activated_at=None)
    change_url = reverse("admin:lifecycle_play_change", args=[play.pk])
    saver = _signed_in_client(admin_user)
    deleted = threading.Event()
    release = threading.Event()
    responses = {}
    errors = []

    def delete_endpoint():
        # The admin's own delete, held open before its commit. It gets its own
        # copy of the endpoint, because deleting sets the copy's pk to None.
        request = RequestFactory().post("/")
        request.user = admin_user
        with transaction.atomic():
            endpoint_copy = WebhookEndpoint.objects.get(pk=endpoint.pk)
            endpoint_admin = admin.site._registry[WebhookEndpoint]
            endpoint_admin.delete_model(request, endpoint_copy)
            deleted.set()
            release.wait(timeout=30)

    def save_step():
        data = _play_change_with_webhook_step(play, endpoint)
        responses["save"] = saver.post(change_url, data)

    threads = [_start_thread(delete_endpoint, errors)]
    try:
        assert deleted.wait(timeout=10)
        threads.append(_start_thread(save_step, errors))
        save_waited = wait_for_lock_waiter(unless_finished=threads[-1])
    finally:
        release.set()
        for thread in threads:
            thread.join(timeout=30)

    assert errors == []
    response = responses["save"]
    assert response.status_code == 200
    assert response.context["inline_admin_formsets"][0].formset.errors[0] == {
        "config": [
            f"endpoint_id {endpoint.pk} is not an existing webhook endpoint: set it "
            "to the id of one listed under Webhook endpoints."
        ]
    }
    assert not PlayStep.objects.filter(play=play).exists()
    assert not WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()
    assert save_waited
