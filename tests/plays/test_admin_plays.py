import json
import re

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.html import escape

from apps.advocacy.models import Badge
from apps.lifecycle import registry
from apps.lifecycle.models import (
    Enrolment,
    FatigueCap,
    Play,
    PlayStep,
    StepRun,
    Touch,
    WebhookDelivery,
    WebhookEndpoint,
)
from apps.lifecycle.plays.runner import run_enrolment
from apps.lifecycle.plays.services import Candidate, enrol_subjects
from apps.membership.models import AuditEntry, ConsentPurpose
from tests import factories
from tests.plays.factories import PlayFactory, PlayStepFactory

pytestmark = pytest.mark.django_db

PLAYS_URL = "/admin/lifecycle/play/"
ADD_URL = f"{PLAYS_URL}add/"


def _preview_url(play) -> str:
    return f"{PLAYS_URL}{play.pk}/preview/"


def _play_form(**overrides) -> dict:
    data = {
        "name": "Welcome",
        "play_id": "welcome",
        "campaign_id": "",
        "description": "",
        "subject_level": "member",
        "trigger": "event",
        "trigger_event_kind": "product.report_exported",
        "trigger_band": "",
        "trigger_hours": "",
        "trigger_days": "",
        "holdout_percent": "10",
        "steps-TOTAL_FORMS": "1",
        "steps-INITIAL_FORMS": "0",
        "steps-MIN_NUM_FORMS": "0",
        "steps-MAX_NUM_FORMS": "1000",
        "steps-0-position": "1",
        "steps-0-action": "test_touch",
        "steps-0-wait_hours": "",
        "steps-0-consent_purpose": "",
        "steps-0-config": "{}",
    }
    data.update(overrides)
    return data


def _account_play_form(**overrides) -> dict:
    """Return the add form of a play that enrols stagnant accounts."""
    return _play_form(
        subject_level="account",
        trigger="stagnant_account",
        trigger_event_kind="",
        trigger_days="30",
        **overrides,
    )


def _form_errors(response) -> dict:
    return response.context["adminform"].form.errors


def _step_errors(response) -> dict:
    return response.context["inline_admin_formsets"][0].formset.errors[0]


def test_play_add_creates_draft_with_steps(admin_client):
    response = admin_client.post(
        ADD_URL, _play_form(audience_roles=["champion", "admin"])
    )

    assert response.status_code == 302
    play = Play.objects.get(play_id="welcome")
    assert play.status == Play.Status.DRAFT
    assert play.audience_roles == ["champion", "admin"]
    assert list(play.steps.values_list("action", flat=True)) == ["test_touch"]


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        (
            {"trigger_event_kind": ""},
            "trigger_event_kind",
            "This trigger needs an event kind.",
        ),
        (
            {"trigger_event_kind": "community.nothing_here"},
            "trigger_event_kind",
            "Unknown event kind 'community.nothing_here': use a registered kind "
            "such as membership.signed_in, or a product.<feature> kind.",
        ),
        (
            {"trigger": "first_sign_in"},
            "trigger_event_kind",
            "Only event and first-use triggers take an event kind; leave it empty.",
        ),
        (
            {"trigger": "unanswered_question", "trigger_event_kind": ""},
            "trigger_hours",
            "Set after how many hours a question counts.",
        ),
        (
            {"trigger_days": "5"},
            "trigger_days",
            "Only stagnant-account and renewal-window triggers take days.",
        ),
        (
            {"trigger": "renewal_window", "trigger_event_kind": ""},
            "trigger_days",
            "Set the number of days.",
        ),
        (
            {
                "trigger": "health_band_change",
                "trigger_event_kind": "",
                "trigger_band": "blue",
            },
            "trigger_band",
            "Unknown band 'blue': use red, yellow or green, or leave empty.",
        ),
        (
            {"holdout_percent": "95"},
            "holdout_percent",
            "A holdout of 95% is out of range: enter 0 to 90, so that at least "
            "10% of the audience gets the play.",
        ),
        (
            {"holdout_percent": "100"},
            "holdout_percent",
            "A holdout of 100% is out of range: enter 0 to 90, so that at least "
            "10% of the audience gets the play.",
        ),
        (
            {"holdout_percent": "-1"},
            "holdout_percent",
            "A holdout of -1% is out of range: enter 0 to 90, so that at least "
            "10% of the audience gets the play.",
        ),
        (
            {
                "trigger": "unanswered_question",
                "trigger_event_kind": "",
                "trigger_hours": "2147483647",
            },
            "trigger_hours",
            "2147483647 hours is out of range: enter 1 to 8760 hours.",
        ),
        (
            {
                "trigger": "unanswered_question",
                "trigger_event_kind": "",
                "trigger_hours": "0",
            },
            "trigger_hours",
            "0 hours is out of range: enter 1 to 8760 hours.",
        ),
        (
            {
                "trigger": "stagnant_account",
                "trigger_event_kind": "",
                "trigger_days": "2147483647",
            },
            "trigger_days",
            "2147483647 days is out of range: enter 1 to 3650 days.",
        ),
        (
            {
                "trigger": "stagnant_account",
                "trigger_event_kind": "",
                "trigger_days": "0",
            },
            "trigger_days",
            "0 days is out of range: enter 1 to 3650 days.",
        ),
        (
            {
                "trigger": "renewal_window",
                "trigger_event_kind": "",
                "trigger_days": "3651",
            },
            "trigger_days",
            "3651 days is out of range: enter 0 to 3650 days.",
        ),
    ],
    ids=[
        "kind-missing",
        "kind-unknown",
        "kind-not-taken",
        "hours-missing",
        "days-not-taken",
        "days-missing",
        "band-unknown",
        "holdout-over-90",
        "holdout-100",
        "holdout-negative",
        "hours-too-many",
        "hours-zero",
        "stagnant-days-too-many",
        "stagnant-days-zero",
        "renewal-days-too-many",
    ],
)
def test_play_add_rejects_invalid_trigger(admin_client, overrides, field, message):
    response = admin_client.post(ADD_URL, _play_form(**overrides))

    assert response.status_code == 200
    assert _form_errors(response)[field] == [message]
    assert not Play.objects.exists()


def test_play_add_ignores_untouched_extra_step(admin_client):
    page = admin_client.get(ADD_URL).content.decode()
    # A browser submits the option a select shows first when no one picks one.
    first_option = re.search(
        r'<select name="steps-0-action"[^>]*>\s*<option value="([^"]*)"', page
    )
    untouched_row = {
        "steps-TOTAL_FORMS": "2",
        "steps-1-position": "",
        "steps-1-action": first_option.group(1),
        "steps-1-wait_hours": "",
        "steps-1-consent_purpose": "",
        "steps-1-config": "{}",
        "initial-steps-1-config": "{}",
    }

    response = admin_client.post(ADD_URL, _play_form(**untouched_row))

    assert response.status_code == 302
    steps = Play.objects.get().steps.values_list("action", flat=True)
    assert list(steps) == ["test_touch"]


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        (
            {"steps-0-action": "wait"},
            "wait_hours",
            "A wait step needs wait hours above 0.",
        ),
        (
            {"steps-0-wait_hours": "4"},
            "wait_hours",
            "Only wait steps take wait hours.",
        ),
        (
            {"steps-0-action": "wait", "steps-0-wait_hours": "2147483647"},
            "wait_hours",
            "A wait of 2147483647 hours is too long: enter at most 87600 hours "
            "(ten years).",
        ),
        (
            {"steps-0-position": "32767"},
            "position",
            "Position 32767 is too high: use a position from 0 to 1000.",
        ),
        (
            {"steps-0-consent_purpose": "newsletter"},
            "consent_purpose",
            "No active consent purpose has the key 'newsletter'; add it under "
            "Consent purposes or leave this empty.",
        ),
        (
            {"steps-0-action": "send_fax"},
            "action",
            "Select a valid choice. send_fax is not one of the available choices.",
        ),
        (
            {"steps-0-config": "[1, 2]"},
            "config",
            'Enter a JSON object in braces, for example {"title": "Welcome"}.',
        ),
        (
            {"steps-0-config": '{"subject": "Hi",\n "body": \'Hello\'}'},
            "config",
            "The config is not valid JSON: Expecting value at line 2, column 10. "
            'Put keys and texts in double quotes, for example {"subject": '
            '"Welcome"}.',
        ),
    ],
    ids=[
        "wait-hours-missing",
        "wait-hours-not-taken",
        "wait-hours-too-many",
        "position-too-high",
        "purpose",
        "action",
        "config",
        "config-json",
    ],
)
def test_play_add_rejects_invalid_step(admin_client, overrides, field, message):
    response = admin_client.post(ADD_URL, _play_form(**overrides))

    assert response.status_code == 200
    assert _step_errors(response)[field] == [message]
    assert not Play.objects.exists()


def test_play_add_rejects_consent_purpose_on_wait(admin_client):
    ConsentPurpose.objects.get_or_create(
        key="marketing_email",
        defaults={"name": "Marketing email", "description": "Marketing email"},
    )
    form = _play_form(
        **{
            "steps-0-action": "wait",
            "steps-0-wait_hours": "24",
            "steps-0-consent_purpose": "marketing_email",
        }
    )

    response = admin_client.post(ADD_URL, form)

    assert _step_errors(response)["consent_purpose"] == [
        "A wait step contacts nobody, so it takes no consent purpose: set the "
        "purpose on the step that sends the message."
    ]
    assert not Play.objects.exists()


def test_play_add_accepts_zero_renewal_days(admin_client):
    response = admin_client.post(
        ADD_URL,
        _play_form(trigger="renewal_window", trigger_event_kind="", trigger_days="0"),
    )

    assert response.status_code == 302
    assert Play.objects.get().trigger_days == 0


def test_play_add_accepts_active_consent_purpose(admin_client):
    ConsentPurpose.objects.create(key="newsletter", name="News", description="-")

    response = admin_client.post(
        ADD_URL, _play_form(**{"steps-0-consent_purpose": "newsletter"})
    )

    assert response.status_code == 302
    assert Play.objects.get().steps.get().consent_purpose == "newsletter"


def test_play_add_page_states_trigger_rules(admin_client):
    page = admin_client.get(ADD_URL).content.decode()

    assert "occurred at most 5 minutes before it" in page
    assert "recorded at most 24 hours after they occurred" in page
    assert "first sign-in after they confirmed their email address" in page


def test_play_preview_shows_size_and_sample(admin_client):
    play = PlayFactory(
        status=Play.Status.DRAFT, activated_at=None, audience_roles=["champion"]
    )
    PlayStepFactory(play=play, position=1)
    champions = [factories.MemberFactory(role="champion") for _ in range(25)]
    factories.MemberFactory(role="member")

    response = admin_client.get(_preview_url(play))

    preview = response.context["preview"]
    assert response.status_code == 200
    assert preview.audience_size == 25
    assert [row.subject for row in preview.sample] == champions[:20]
    assert preview.warnings == []
    content = response.content.decode()
    assert '<td id="audience-size">25</td>' in content
    assert champions[0].email in content
    assert 'value="Activate"' in content


def test_play_preview_counts_subjects_due_now(admin_client):
    play = PlayFactory(
        status=Play.Status.DRAFT,
        activated_at=None,
        subject_level="account",
        trigger="renewal_window",
        trigger_event_kind="",
        trigger_days=30,
    )
    today = timezone.localdate()
    factories.AccountFactory(renewal_date=today)
    enrolled = factories.AccountFactory(renewal_date=today)
    factories.AccountFactory(renewal_date=None)
    enrol_subjects(
        play=play,
        candidates=[
            Candidate(occurrence_key=today.isoformat(), account_id=enrolled.pk)
        ],
    )

    response = admin_client.get(_preview_url(play))

    assert response.context["preview"].audience_size == 3
    assert response.context["preview"].new_subjects_now == 1


def test_play_preview_warns_about_unregistered_kind(admin_client, monkeypatch):
    # The portal registers this kind at start-up; the test removes it.
    monkeypatch.delitem(registry._kinds, "portal.course_completed")
    play = PlayFactory(
        status=Play.Status.DRAFT,
        activated_at=None,
        trigger="course_completed",
        trigger_event_kind="",
    )

    response = admin_client.get(_preview_url(play))

    assert response.context["preview"].warnings == [
        "The play has no steps. Add at least one before activating.",
        "No installed app registers the event kind portal.course_completed, "
        "so no event can trigger this play until one does.",
    ]


def test_play_preview_post_activates(admin_client, admin_user):
    play = PlayFactory(status=Play.Status.DRAFT, activated_at=None)
    PlayStepFactory(play=play, position=1)

    response = admin_client.post(_preview_url(play))

    play.refresh_from_db()
    assert response.status_code == 302
    assert response.url == f"{PLAYS_URL}{play.pk}/change/"
    assert play.status == Play.Status.ACTIVE
    assert play.activated_at is not None
    audit = AuditEntry.objects.get(action="play.activated")
    assert audit.actor == admin_user
    assert audit.details == {"play_id": play.play_id}


def test_play_preview_post_when_active_changes_nothing(admin_client):
    play = PlayFactory()
    PlayStepFactory(play=play, position=1)
    activated_at = play.activated_at

    response = admin_client.post(_preview_url(play), follow=True)

    play.refresh_from_db()
    assert play.activated_at == activated_at
    assert [str(m) for m in response.context["messages"]] == [
        f"The play {play.name} was already active."
    ]
    assert not AuditEntry.objects.exists()


def test_play_preview_pause_button_pauses(admin_client, admin_user):
    play = PlayFactory()
    PlayStepFactory(play=play, position=1)

    page = admin_client.get(_preview_url(play))
    response = admin_client.post(_preview_url(play), {"pause": "Pause"}, follow=True)

    play.refresh_from_db()
    assert 'name="pause"' in page.content.decode()
    assert play.status == Play.Status.PAUSED
    assert [str(m) for m in response.context["messages"]] == [
        f"Paused the play {play.name}."
    ]
    assert AuditEntry.objects.get(action="play.paused").actor == admin_user


def test_play_preview_of_draft_offers_no_pause(admin_client):
    play = PlayFactory(status=Play.Status.DRAFT, activated_at=None)

    page = admin_client.get(_preview_url(play))
    response = admin_client.post(_preview_url(play), {"pause": "Pause"}, follow=True)

    play.refresh_from_db()
    assert 'name="pause"' not in page.content.decode()
    assert play.status == Play.Status.DRAFT
    assert [str(m) for m in response.context["messages"]] == [
        f"The play {play.name} was not active, so nothing changed."
    ]


def test_play_preview_post_without_steps_stays_draft(admin_client):
    play = PlayFactory(status=Play.Status.DRAFT, activated_at=None)

    response = admin_client.post(_preview_url(play), follow=True)

    play.refresh_from_db()
    assert play.status == Play.Status.DRAFT
    assert (
        f"Play {play.play_id!r} has no steps; add at least one step, then activate it."
        in [str(m) for m in response.context["messages"]]
    )


def test_play_preview_needs_view_permission(client):
    staff = factories.StaffFactory()
    client.force_login(staff)
    play = PlayFactory(status=Play.Status.DRAFT, activated_at=None)

    response = client.get(_preview_url(play))

    assert response.status_code == 403


def test_play_preview_post_needs_change_permission(client):
    staff = factories.StaffFactory()
    staff.user_permissions.add(Permission.objects.get(codename="view_play"))
    client.force_login(staff)
    play = PlayFactory(status=Play.Status.DRAFT, activated_at=None)
    PlayStepFactory(play=play, position=1)

    viewed = client.get(_preview_url(play))
    posted = client.post(_preview_url(play))

    play.refresh_from_db()
    assert viewed.status_code == 200
    assert 'value="Activate"' not in viewed.content.decode()
    assert posted.status_code == 403
    assert play.status == Play.Status.DRAFT
    assert not AuditEntry.objects.exists()


def test_play_pause_action_pauses_active_plays(admin_client):
    active = PlayFactory()
    draft = PlayFactory(status=Play.Status.DRAFT, activated_at=None)

    response = admin_client.post(
        PLAYS_URL,
        {"action": "pause_selected", ACTION_CHECKBOX_NAME: [active.pk, draft.pk]},
        follow=True,
    )

    active.refresh_from_db()
    draft.refresh_from_db()
    assert active.status == Play.Status.PAUSED
    assert draft.status == Play.Status.DRAFT
    assert "Paused 1 play(s)." in response.content.decode()


def _failed_enrolment() -> Enrolment:
    member = factories.MemberFactory()
    play = PlayFactory()
    PlayStepFactory(play=play, position=1)
    PlayStepFactory(
        play=play, position=2, action="test_fail", config={"member_ids": [member.pk]}
    )
    [enrolment_id] = enrol_subjects(
        play=play,
        candidates=[
            Candidate(
                occurrence_key="x", member_id=member.pk, account_id=member.account_id
            )
        ],
    )
    run_enrolment(enrolment_id=enrolment_id)
    return Enrolment.objects.get(pk=enrolment_id)


def test_enrolment_change_page_shows_step_outcomes_and_errors(admin_client):
    enrolment = _failed_enrolment()

    response = admin_client.get(f"/admin/lifecycle/enrolment/{enrolment.pk}/change/")

    content = response.content.decode()
    assert response.status_code == 200
    assert "notified" in content
    assert f"RuntimeError: test failure for member {enrolment.member_id}" in content


def test_enrolment_page_links_webhook_delivery_status(admin_client):
    endpoint = WebhookEndpoint.objects.create(
        name="CRM", url="https://crm.example.com/hooks", secret="whsec_x"
    )
    play = PlayFactory()
    PlayStepFactory(
        play=play, position=1, action="webhook", config={"endpoint_id": endpoint.pk}
    )
    member = factories.MemberFactory()
    [enrolment_id] = enrol_subjects(
        play=play,
        candidates=[
            Candidate(
                occurrence_key="x", member_id=member.pk, account_id=member.account_id
            )
        ],
    )
    run_enrolment(enrolment_id=enrolment_id)
    delivery = WebhookDelivery.objects.get()
    delivery.status = WebhookDelivery.Status.FAILED
    delivery.save(update_fields=["status"])

    response = admin_client.get(f"/admin/lifecycle/enrolment/{enrolment_id}/change/")

    delivery_url = f"/admin/lifecycle/webhookdelivery/{delivery.pk}/change/"
    assert f'<a href="{delivery_url}">failed (gave up)</a>' in response.content.decode()


def test_enrolment_retry_action_makes_failed_enrolment_due(admin_client):
    enrolment = _failed_enrolment()

    admin_client.post(
        "/admin/lifecycle/enrolment/",
        {"action": "retry_failed", ACTION_CHECKBOX_NAME: [enrolment.pk]},
    )

    enrolment.refresh_from_db()
    assert enrolment.status == Enrolment.Status.ACTIVE
    assert enrolment.last_error == ""


def test_fatigue_cap_add_offers_registered_channels(admin_client):
    response = admin_client.post(
        "/admin/lifecycle/fatiguecap/add/",
        {"channel": "test", "max_touches": "2", "period_days": "30"},
    )

    assert response.status_code == 302
    assert FatigueCap.objects.get().channel == "test"


def test_fatigue_cap_add_rejects_zero_days(admin_client):
    response = admin_client.post(
        "/admin/lifecycle/fatiguecap/add/",
        {"channel": "test", "max_touches": "2", "period_days": "0"},
    )

    assert response.status_code == 200
    assert _form_errors(response)["period_days"] == [
        "A period of 0 days counts no touches: enter 1 day or more."
    ]
    assert not FatigueCap.objects.exists()


def _make_rows(count: int) -> None:
    for _ in range(count):
        member = factories.MemberFactory()
        play = PlayFactory()
        step = PlayStepFactory(play=play, position=1)
        [enrolment_id] = enrol_subjects(
            play=play,
            candidates=[
                Candidate(
                    occurrence_key="x",
                    member_id=member.pk,
                    account_id=member.account_id,
                )
            ],
        )
        step_run = StepRun.objects.create(
            enrolment_id=enrolment_id,
            step=step,
            status="done",
            started_at=timezone.now(),
        )
        Touch.objects.create(
            member=member,
            channel="test",
            play=play,
            step_run=step_run,
            touched_at=timezone.now(),
        )
        FatigueCap.objects.create(
            channel=f"channel-{member.pk}", max_touches=1, period_days=1
        )


@pytest.mark.parametrize("model", ["play", "enrolment", "fatiguecap", "touch"])
def test_changelist_query_count_fixed(admin_client, model):
    url = f"/admin/lifecycle/{model}/"
    _make_rows(2)
    admin_client.get(url)
    with CaptureQueriesContext(connection) as few:
        first = admin_client.get(url)
    _make_rows(6)

    with CaptureQueriesContext(connection) as many:
        second = admin_client.get(url)

    assert first.status_code == 200
    assert second.status_code == 200
    assert len(many) == len(few)


def test_account_play_rejects_member_only_step(admin_client):
    data = _account_play_form(
        **{
            "steps-0-action": "email",
            "steps-0-config": '{"subject": "Hi", "body": "Hello."}',
        },
    )

    response = admin_client.post(ADD_URL, data)

    assert response.status_code == 200
    formset = response.context["inline_admin_formsets"][0].formset
    assert formset.non_form_errors() == []
    [error] = _step_errors(response)["action"]
    assert error.startswith(
        "Email acts on a member, and this play enrols accounts, so the step "
        "would be skipped for every enrolment. Use "
    )
    assert "CSM task" in error
    assert "Email," not in error
    assert not Play.objects.filter(play_id="welcome").exists()


def test_account_play_csm_task_rejects_member_name(admin_client):
    data = _account_play_form(
        **{
            "steps-0-action": "csm_task",
            "steps-0-config": '{"title": "Call {{ member_name }}"}',
        },
    )

    response = admin_client.post(ADD_URL, data)

    assert _step_errors(response)["config"] == [
        "'title' uses member_name, which this step does not know, so it would "
        "render empty. Use account_name."
    ]


def test_account_play_keeps_old_member_step_editable(admin_client):
    play = PlayFactory(
        subject_level=Play.SubjectLevel.ACCOUNT,
        trigger=Play.Trigger.STAGNANT_ACCOUNT,
        trigger_event_kind="",
        trigger_days=30,
    )
    # Saved before admin checked step actions against the play's level.
    step = PlayStepFactory(
        play=play,
        position=1,
        action="email",
        config={"subject": "Hi", "body": "Hello."},
    )
    data = _account_play_form(
        name=play.name,
        play_id=play.play_id,
        description="Edited",
        **{
            "steps-INITIAL_FORMS": "1",
            "steps-0-id": str(step.pk),
            "steps-0-play": str(play.pk),
            "steps-0-action": "email",
            "steps-0-config": json.dumps(step.config),
        },
    )

    response = admin_client.post(f"{PLAYS_URL}{play.pk}/change/", data)

    assert response.status_code == 302
    play.refresh_from_db()
    assert play.description == "Edited"


def test_account_play_accepts_csm_task_step(admin_client):
    data = _account_play_form(
        **{"steps-0-action": "csm_task", "steps-0-config": '{"title": "Call"}'},
    )

    response = admin_client.post(ADD_URL, data)

    assert response.status_code == 302
    assert Play.objects.get(play_id="welcome").steps.get().action == "csm_task"


def test_play_with_enrolments_delete_page_says_pause(admin_client):
    play = PlayFactory(name="Welcome", holdout_percent=10)
    member = factories.MemberFactory()
    enrol_subjects(
        play=play,
        candidates=[
            Candidate(
                occurrence_key="x", member_id=member.pk, account_id=member.account_id
            )
        ],
    )
    unused = PlayFactory(name="Unused")

    protected = admin_client.get(f"{PLAYS_URL}{play.pk}/delete/")
    deletable = admin_client.get(f"{PLAYS_URL}{unused.pk}/delete/")

    assert protected.context["protected"] == [
        "Welcome: it has 1 enrolment, the play's history and its holdout "
        "comparison. Pause it instead."
    ]
    assert not protected.context["perms_lacking"]
    assert deletable.context["protected"] == []
    assert (
        admin_client.post(
            f"{PLAYS_URL}{unused.pk}/delete/", {"post": "yes"}
        ).status_code
        == 302
    )
    assert not Play.objects.filter(pk=unused.pk).exists()
    assert Play.objects.filter(pk=play.pk).exists()


def test_play_change_page_links_preview(admin_client):
    play = PlayFactory()
    PlayStepFactory(play=play, position=1)

    response = admin_client.get(f"{PLAYS_URL}{play.pk}/change/")

    assert response.status_code == 200
    assert f'href="{_preview_url(play)}"' in response.content.decode()


@pytest.mark.parametrize(
    ("action", "config", "message"),
    [
        ("in_app", {}, "Missing 'title': add a text under 'title'."),
        (
            "in_app",
            {"title": "Hi", "colour": "red"},
            "Unknown field 'colour': this action reads only body, title, "
            "url. Remove it or fix its name.",
        ),
        (
            "email",
            {"subject": "Hi {% if x %}", "body": "Welcome."},
            "'subject' is not a valid template: Unclosed tag on line 1: "
            "'if'. Looking for one of: elif, else, endif. Fix its tags.",
        ),
        (
            "email",
            {"subject": "Hi {{ member.name }}", "body": "Welcome."},
            "'subject' uses member, which this step does not know, so "
            "it would render empty. Use member_name, account_name, url, links, "
            "unsubscribe_url.",
        ),
        (
            "in_app",
            {"title": "{% for x in rows %}{{ x }}{% endfor %}{{ url }}{{ links.a }}"},
            "'title' uses links, url, which this step does not know, so "
            "it would render empty. Use member_name, account_name.",
        ),
        (
            "csm_task",
            {"title": "Call {% if vip %}{{ member_title }}{% endif %}"},
            "'title' uses member_title, which this step does not know, so "
            "it would render empty. Use member_name, account_name.",
        ),
        (
            "email",
            {"subject": "Hi", "body": "{% if 1 %}{% include 'x.html' %}{% endif %}"},
            "'body' uses include or extends, which step templates cannot: "
            "they render without other templates. Write the text in place.",
        ),
        (
            "email",
            {"subject": "Hi", "body": "See {% url 'does-not-exist' %}"},
            "'body' uses the url tag, which step templates cannot: it fails "
            "every run when the URL name does not exist. Write the page's full "
            "https URL instead.",
        ),
        (
            "in_app",
            {"title": "Hi {% debug %}"},
            "'title' uses the debug tag, which step templates cannot: it would "
            "send the server's loaded modules and template context to members. "
            "Remove it.",
        ),
        (
            "in_app",
            {"title": "Hi", "url": "javascript:alert(1)"},
            "'javascript:alert(1)' is not a link members can follow: use a "
            "path here such as /community/, or a full http or https URL.",
        ),
        (
            "email",
            {"subject": "Hi", "body": "Welcome.", "links": {"docs": "//evil.test"}},
            "'//evil.test' is not a link members can follow: use a path "
            "here such as /community/, or a full http or https URL.",
        ),
        (
            "email",
            {"subject": "Hi", "body": "Welcome.", "consent_purpose": "newsletter"},
            "No active consent purpose has the key 'newsletter': "
            "add it under Consent purposes, or remove consent_purpose to use "
            "marketing_email.",
        ),
        (
            "csm_task",
            {"title": "Call", "due_in_days": "3"},
            "due_in_days '3' is invalid: use a whole number of days "
            "from 0 to 3650, or leave it out for no due date.",
        ),
        (
            "csm_task",
            {"title": "Call", "due_in_days": 99999999999},
            "due_in_days 99999999999 is invalid: use a whole number "
            "of days from 0 to 3650, or leave it out for no due date.",
        ),
        (
            "webhook",
            {"endpoint_id": 999999},
            "endpoint_id 999999 is not an existing webhook endpoint: "
            "set it to the id of one listed under Webhook endpoints.",
        ),
        (
            "points",
            {"points": "abc"},
            "Invalid points 'abc' in the step config; set "
            '{"points": <whole number from -100,000 to 100,000, not 0>}.',
        ),
        (
            "points",
            {"points": 10**12},
            "Invalid points 1000000000000 in the step config",
        ),
        (
            "badge",
            {"badge": "nope"},
            "Unknown badge 'nope' in the step config; set "
            '{"badge": "<slug>"} to the slug of a badge in admin.',
        ),
        (
            "advocacy_ask",
            {"kind": "poem", "message": "Hi"},
            "Invalid ask kind 'poem' in the step config",
        ),
        (
            "advocacy_ask",
            {"kind": "review", "message": " "},
            'Missing "message" in the step config',
        ),
        (
            "advocacy_ask",
            {"kind": "review", "message": "Hi {{ first_name }}"},
            "'message' uses first_name, which this step does not know, "
            "so it would render empty. Use member_name, account_name.",
        ),
        (
            "advocacy_ask",
            {"kind": "review", "message": "Hi {% if member_name %}"},
            "'message' is not a valid template: Unclosed tag on line 1: "
            "'if'. Looking for one of: elif, else, endif. Fix its tags.",
        ),
        (
            "advocacy_ask",
            {"kind": "review", "message": "Hi", "due_in_days": 99999999999},
            'Invalid "due_in_days" 99999999999 in the step config; '
            "set a number of days from 1 to 3650 or leave it out.",
        ),
    ],
    ids=[
        "missing",
        "unknown",
        "template",
        "email-variable",
        "in-app-variable",
        "task-variable-in-if",
        "email-include",
        "email-url-tag",
        "in-app-debug-tag",
        "in-app-javascript-url",
        "email-protocol-relative-link",
        "purpose",
        "days",
        "days-too-many",
        "endpoint",
        "points-text",
        "points-huge",
        "badge-unknown",
        "ask-kind",
        "ask-message",
        "ask-message-variable",
        "ask-message-template",
        "ask-days-too-many",
    ],
)
def test_play_add_rejects_invalid_step_config(admin_client, action, config, message):
    response = admin_client.post(
        ADD_URL,
        _play_form(**{"steps-0-action": action, "steps-0-config": json.dumps(config)}),
    )

    assert response.status_code == 200
    assert any(message in error for error in _step_errors(response)["config"])
    assert not Play.objects.exists()


def test_play_add_rejects_inactive_badge(admin_client):
    Badge.objects.create(slug="retired", name="Retired", is_active=False)
    config = {"badge": "retired"}

    response = admin_client.post(
        ADD_URL,
        _play_form(**{"steps-0-action": "badge", "steps-0-config": json.dumps(config)}),
    )

    assert response.status_code == 200
    assert _step_errors(response)["config"] == [
        "The badge 'retired' is inactive, and an inactive badge cannot be "
        "awarded: activate it in admin, or set the slug of an active badge."
    ]
    assert not Play.objects.exists()


@pytest.mark.parametrize(
    "event_kind", ["play\r\nX-Injected: 1", "play welcome", "p" * 101]
)
def test_play_add_rejects_webhook_event_kind(admin_client, event_kind):
    endpoint = WebhookEndpoint.objects.create(
        name="CRM", url="https://crm.example.com/hooks", secret="whsec_test"
    )
    config = {"endpoint_id": endpoint.pk, "event_kind": event_kind}

    response = admin_client.post(
        ADD_URL,
        _play_form(
            **{"steps-0-action": "webhook", "steps-0-config": json.dumps(config)}
        ),
    )

    assert response.status_code == 200
    assert _step_errors(response)["config"] == [
        f"event_kind {event_kind!r} is invalid: use up to 100 letters, "
        'digits and . _ : - characters, for example "play.welcome".'
    ]
    assert not Play.objects.exists()


NON_FINITE = (
    "The config contains the non-finite number {} (from NaN, Infinity or a "
    "number too large for a float, such as 1e400), which cannot be stored; use "
    "a finite number or null."
)
SURROGATE = (
    "The config contains an unpaired UTF-16 surrogate, which is not valid "
    "Unicode; remove it or complete the surrogate pair."
)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            '{"a": "\\u0000"}',
            "The config contains a NUL character (\\u0000), which cannot be "
            "stored; remove it.",
        ),
        ('{"a": "\\ud800"}', SURROGATE),
        ('{"\\udc00": 1}', SURROGATE),
        ('{"a": NaN}', NON_FINITE.format("nan")),
        ('{"a": -Infinity}', NON_FINITE.format("-inf")),
        ('{"a": 1e400}', NON_FINITE.format("inf")),
        (
            '{"a": ' * 40 + "1" + "}" * 40,
            "The config is nested deeper than 32 levels; flatten it to 32 "
            "levels or fewer.",
        ),
        (
            '{"a": ' * 3000 + "1" + "}" * 3000,
            "The config is nested too deeply to read; flatten it to 32 levels "
            "or fewer.",
        ),
        (
            "9" * 5000,
            "The config has a number of more than 4300 digits, which cannot be "
            "read. Write it as a text in double quotes.",
        ),
    ],
    ids=[
        "nul",
        "surrogate",
        "surrogate-key",
        "nan",
        "infinity",
        "overflow",
        "nested-40",
        "nested-3000",
        "long-integer",
    ],
)
def test_play_add_rejects_unstorable_config(admin_client, data, message):
    endpoint = WebhookEndpoint.objects.create(
        name="CRM", url="https://crm.example.com/hooks", secret="whsec_test"
    )
    config = f'{{"endpoint_id": {endpoint.pk}, "data": {data}}}'

    response = admin_client.post(
        ADD_URL, _play_form(**{"steps-0-action": "webhook", "steps-0-config": config})
    )

    assert response.status_code == 200
    assert _step_errors(response)["config"] == [message]
    assert not Play.objects.exists()
    # Shown again as typed, for the author to fix.
    assert escape(config) in response.content.decode()


def test_play_add_accepts_email_consent_purpose(admin_client):
    ConsentPurpose.objects.create(key="newsletter", name="News", description="-")
    config = {"subject": "Hi", "body": "Welcome.", "consent_purpose": "newsletter"}

    response = admin_client.post(
        ADD_URL,
        _play_form(**{"steps-0-action": "email", "steps-0-config": json.dumps(config)}),
    )

    assert response.status_code == 302
    assert Play.objects.get().steps.get().config == config


def test_play_add_accepts_valid_step_config(admin_client):
    config = {"title": "Call {{ member_name }}", "due_in_days": 2}

    response = admin_client.post(
        ADD_URL,
        _play_form(
            **{"steps-0-action": "csm_task", "steps-0-config": json.dumps(config)}
        ),
    )

    assert response.status_code == 302
    assert Play.objects.get().steps.get().config == config


def test_play_add_accepts_allowed_template_tag(admin_client):
    config = {
        "title": "Call {% firstof member_name 'the member' %}",
        "description": "{% now 'Y' as year %}Ask about {{ year }} plans.",
    }

    response = admin_client.post(
        ADD_URL,
        _play_form(
            **{"steps-0-action": "csm_task", "steps-0-config": json.dumps(config)}
        ),
    )

    assert response.status_code == 302
    assert Play.objects.get().steps.get().config == config


def test_play_change_keeps_step_that_has_run(admin_client):
    play = PlayFactory(play_id="welcome")
    step = PlayStepFactory(play=play, position=1)
    [enrolment_id] = enrol_subjects(
        play=play,
        candidates=[
            Candidate(occurrence_key="test", member_id=factories.MemberFactory().pk)
        ],
    )
    run_enrolment(enrolment_id=enrolment_id)
    assert StepRun.objects.filter(step=step).exists()
    form = _play_form(
        **{
            "steps-INITIAL_FORMS": "1",
            "steps-0-id": str(step.pk),
            "steps-0-play": str(play.pk),
            "steps-0-DELETE": "on",
        }
    )

    response = admin_client.post(f"{PLAYS_URL}{play.pk}/change/", form)

    assert response.status_code == 200
    assert PlayStep.objects.filter(pk=step.pk).exists()
    formset = response.context["inline_admin_formsets"][0].formset
    assert formset.non_form_errors() == [
        "Step 1 (test_touch) has run for 1 enrolment(s), and those runs are the "
        "play's history, so the step cannot be deleted. Leave the step in place, "
        "or pause this play and set up a new play without it."
    ]


def test_play_change_names_run_count_not_runs(admin_client):
    play = PlayFactory(play_id="welcome")
    step = PlayStepFactory(play=play, position=1)
    candidates = [
        Candidate(occurrence_key=f"test-{index}", member_id=member.pk)
        for index, member in enumerate(factories.MemberFactory.create_batch(3))
    ]
    for enrolment_id in enrol_subjects(play=play, candidates=candidates):
        run_enrolment(enrolment_id=enrolment_id)
    form = _play_form(
        **{
            "steps-INITIAL_FORMS": "1",
            "steps-0-id": str(step.pk),
            "steps-0-play": str(play.pk),
            "steps-0-DELETE": "on",
        }
    )

    response = admin_client.post(f"{PLAYS_URL}{play.pk}/change/", form)

    formset = response.context["inline_admin_formsets"][0].formset
    [error] = formset.non_form_errors()
    assert response.status_code == 200
    assert "has run for 3 enrolment(s)" in error
    assert "for enrolment" not in error
    assert StepRun.objects.filter(step=step).count() == 3


def test_play_change_fixes_ids_and_holdout_after_activation(admin_client):
    play = PlayFactory(play_id="welcome", campaign_id="q3", holdout_percent=10)
    form = _play_form(play_id="renamed", campaign_id="q4", holdout_percent="50")

    response = admin_client.post(f"{PLAYS_URL}{play.pk}/change/", form)

    play.refresh_from_db()
    assert response.status_code == 302
    assert play.play_id == "welcome"
    assert play.campaign_id == "q3"
    assert play.holdout_percent == 10


def test_play_change_draft_ids_editable(admin_client):
    play = PlayFactory(
        status=Play.Status.DRAFT, activated_at=None, play_id="welcome", campaign_id=""
    )
    form = _play_form(play_id="renamed", campaign_id="q4", holdout_percent="20")

    admin_client.post(f"{PLAYS_URL}{play.pk}/change/", form)

    play.refresh_from_db()
    assert play.play_id == "renamed"
    assert play.campaign_id == "q4"
    assert play.holdout_percent == 20


def test_play_step_inputs_have_labels_and_help(admin_client):
    page = admin_client.get(ADD_URL).content.decode()

    for field in ("position", "action", "wait_hours", "consent_purpose", "config"):
        assert re.search(rf'<label[^>]* for="id_steps-0-{field}"', page), field
    assert "Action settings, for example subject and body" in page


def test_play_add_marks_repeated_step_position(admin_client):
    data = _play_form(
        **{
            "steps-TOTAL_FORMS": "2",
            "steps-1-position": "1",
            "steps-1-action": "test_touch",
            "steps-1-wait_hours": "",
            "steps-1-consent_purpose": "",
            "steps-1-config": "{}",
        }
    )

    response = admin_client.post(ADD_URL, data)

    formset = response.context["inline_admin_formsets"][0].formset
    assert response.status_code == 200
    assert formset.errors[1]["position"] == [
        "Another step of this play has position 1: give each step its own position."
    ]
    assert not Play.objects.exists()


def test_play_step_title_shows_action_label():
    step = PlayStepFactory(position=2, action="csm_task", config={"title": "Call"})

    assert str(step) == "2. CSM task"


@pytest.mark.django_db(transaction=True)
def test_play_change_swaps_step_positions(admin_client):
    play = PlayFactory(status=Play.Status.DRAFT, activated_at=None)
    first = PlayStepFactory(play=play, position=1, action="wait", wait_hours=2)
    second = PlayStepFactory(play=play, position=2, action="test_touch")
    data = _play_form(
        name=play.name,
        play_id=play.play_id,
        **{
            "steps-TOTAL_FORMS": "2",
            "steps-INITIAL_FORMS": "2",
            "steps-0-id": str(first.pk),
            "steps-0-play": str(play.pk),
            "steps-0-position": "2",
            "steps-0-action": "wait",
            "steps-0-wait_hours": "2",
            "steps-0-config": "{}",
            "steps-1-id": str(second.pk),
            "steps-1-play": str(play.pk),
            "steps-1-position": "1",
            "steps-1-action": "test_touch",
            "steps-1-wait_hours": "",
            "steps-1-consent_purpose": "",
            "steps-1-config": "{}",
        },
    )

    response = admin_client.post(f"{PLAYS_URL}{play.pk}/change/", data)

    assert response.status_code == 302
    assert list(play.steps.order_by("position").values_list("pk", flat=True)) == [
        second.pk,
        first.pk,
    ]


def test_play_add_control_character_error_reads_once(admin_client):
    config = '{"title": "Hi\tthere"}'

    response = admin_client.post(
        ADD_URL, _play_form(**{"steps-0-action": "in_app", "steps-0-config": config})
    )

    assert _step_errors(response)["config"] == [
        "The config is not valid JSON: Invalid control character at line 1, "
        'column 14. Put keys and texts in double quotes, for example {"subject": '
        '"Welcome"}.'
    ]


def _step_headings(response) -> list[str]:
    """Return the text of each step heading on the play's change page."""
    page = response.content.decode()
    return re.findall(r'<span class="inline_label">\s*(.*?)\s*</span>', page)


def test_step_headings_after_failed_save(admin_client):
    play = PlayFactory(status=Play.Status.DRAFT, activated_at=None)
    wait = PlayStepFactory(play=play, position=1, action="wait", wait_hours=2)
    touch = PlayStepFactory(play=play, position=2, action="test_touch")
    data = _play_form(
        name=play.name,
        play_id=play.play_id,
        **{
            "steps-TOTAL_FORMS": "3",
            "steps-INITIAL_FORMS": "2",
            "steps-0-id": str(wait.pk),
            "steps-0-play": str(play.pk),
            "steps-0-position": "5",
            "steps-0-action": "test_touch",
            "steps-0-wait_hours": "",
            "steps-0-config": "{}",
            "steps-1-id": str(touch.pk),
            "steps-1-play": str(play.pk),
            "steps-1-position": "6",
            "steps-1-action": "test_touch",
            "steps-1-wait_hours": "",
            "steps-1-consent_purpose": "",
            # Invalid, so that the save fails.
            "steps-1-config": "[]",
            "steps-2-position": "7",
            "steps-2-action": "test_touch",
            "steps-2-wait_hours": "",
            "steps-2-consent_purpose": "",
            "steps-2-config": "{}",
        },
    )

    response = admin_client.post(f"{PLAYS_URL}{play.pk}/change/", data)

    assert response.status_code == 200
    assert _step_errors(response) == {}
    assert response.context["inline_admin_formsets"][0].formset.errors[1] == {
        "config": ['Enter a JSON object in braces, for example {"title": "Welcome"}.']
    }
    # The saved steps, the typed new step and the template for "Add another".
    assert _step_headings(response) == ["1. Wait", "2. Test touch", "#3", "#4"]
    assert list(play.steps.values_list("position", "action")) == [
        (1, "wait"),
        (2, "test_touch"),
    ]


def test_step_headings_on_change_page(admin_client):
    play = PlayFactory(status=Play.Status.DRAFT, activated_at=None)
    PlayStepFactory(play=play, position=3, action="test_touch")

    response = admin_client.get(f"{PLAYS_URL}{play.pk}/change/")

    # The stored step, the blank extra step and the template for "Add another".
    assert _step_headings(response) == ["3. Test touch", "#2", "#3"]
