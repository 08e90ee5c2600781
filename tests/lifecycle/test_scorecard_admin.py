import re
import threading

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client

from apps.lifecycle import registry
from apps.lifecycle.admin_scoring import ScorecardAdmin
from apps.lifecycle.models import Scorecard, ScorecardMeasure

ADD_URL = "/admin/lifecycle/scorecard/add/"

pytestmark = pytest.mark.django_db


def scorecard_data(*measures: dict, level="member", is_active=False) -> dict:
    """Return the POST data of the scorecard add form with these measures."""
    data = {
        "name": "Engagement",
        "level": level,
        "description": "",
        "measures-TOTAL_FORMS": str(len(measures)),
        "measures-INITIAL_FORMS": "0",
        "measures-MIN_NUM_FORMS": "0",
        "measures-MAX_NUM_FORMS": "1000",
    }
    if is_active:
        data["is_active"] = "on"
    for index, measure in enumerate(measures):
        fields = {
            "position": "0",
            "label": "",
            "event_kinds": "",
            "window_days": "30",
            "weight": "1",
            "zero_at": "0",
            "full_at": "10",
            **measure,
        }
        for name, value in fields.items():
            data[f"measures-{index}-{name}"] = value
    return data


def measure_errors(response) -> dict:
    formset = response.context["inline_admin_formsets"][0].formset
    return formset.forms[0].errors


def test_scorecard_admin_saves_valid_scorecard(admin_client):
    data = scorecard_data(
        {"kind": "event_count", "event_kinds": "community.reply_posted,product.*"}
    )

    response = admin_client.post(ADD_URL, data)

    assert response.status_code == 302
    measure = ScorecardMeasure.objects.get(scorecard__name="Engagement")
    assert measure.event_kinds == ["community.reply_posted", "product.*"]


def test_scorecard_admin_ignores_empty_event_kinds(admin_client):
    data = scorecard_data(
        {"kind": "event_count", "event_kinds": "product.*, ,membership.signed_in,"}
    )

    response = admin_client.post(ADD_URL, data)

    assert response.status_code == 302
    measure = ScorecardMeasure.objects.get(scorecard__name="Engagement")
    assert measure.event_kinds == ["product.*", "membership.signed_in"]


def test_scorecard_admin_rejects_measure_without_source(admin_client, monkeypatch):
    # The portal registers this source at start-up; the test removes it.
    monkeypatch.delitem(registry._measure_sources, "course_completions")
    data = scorecard_data({"kind": "course_completions"})

    response = admin_client.post(ADD_URL, data)

    assert response.status_code == 200
    assert measure_errors(response)["kind"] == [
        "Course completions need the portal's courses, but no source is "
        "registered for them. Choose another measure."
    ]
    assert not Scorecard.objects.filter(name="Engagement").exists()


def test_scorecard_admin_accepts_registered_open_cases_source(admin_client):
    data = scorecard_data({"kind": "open_cases", "zero_at": "5", "full_at": "0"})

    response = admin_client.post(ADD_URL, data)

    assert response.status_code == 302


def test_scorecard_admin_accepts_registered_onboarding_source(admin_client):
    data = scorecard_data(
        {"kind": "onboarding_share", "zero_at": "0", "full_at": "100"},
        level="account",
    )

    response = admin_client.post(ADD_URL, data)

    assert response.status_code == 302


def test_scorecard_admin_rejects_account_kind_on_member_level(admin_client):
    data = scorecard_data({"kind": "active_member_share"})

    response = admin_client.post(ADD_URL, data)

    assert measure_errors(response)["kind"] == [
        "Share of active members (%) applies to account scorecards only."
    ]


def test_scorecard_admin_rejects_unregistered_event_kind(admin_client):
    data = scorecard_data({"kind": "event_count", "event_kinds": "community.nope"})

    response = admin_client.post(ADD_URL, data)

    assert measure_errors(response)["event_kinds"] == [
        "'community.nope' is not a registered event kind. Use a registered "
        "kind such as membership.signed_in, or a family such as product.*."
    ]


def test_scorecard_admin_rejects_band_change_kind(admin_client):
    data = scorecard_data(
        {"kind": "event_count", "event_kinds": "lifecycle.health_band_changed"}
    )

    response = admin_client.post(ADD_URL, data)

    assert measure_errors(response)["event_kinds"] == [
        "'lifecycle.health_band_changed' is recorded by scoring itself, so "
        "counting it would make each band change move the score again. Remove it."
    ]


def test_scorecard_admin_rejects_window_shorter_than_threshold(admin_client):
    data = scorecard_data(
        {
            "kind": "days_since_activity",
            "window_days": "7",
            "zero_at": "14",
            "full_at": "1",
        }
    )

    response = admin_client.post(ADD_URL, data)

    assert measure_errors(response)["window_days"] == [
        "The window (7 days) must be at least the largest threshold (14 days). "
        "Days since activity are counted only within the window, so a longer "
        "idle time would score as the window's length."
    ]


def test_scorecard_admin_rejects_equal_thresholds_and_zero_weight(admin_client):
    data = scorecard_data(
        {"kind": "event_count", "zero_at": "5", "full_at": "5", "weight": "0"}
    )

    response = admin_client.post(ADD_URL, data)

    errors = measure_errors(response)
    assert errors["full_at"] == [
        "Zero at and Full at are both 5, but they must differ: Zero at is the "
        "value that scores 0 and Full at the value that scores 100. Change one "
        "of them."
    ]
    assert errors["weight"] == [
        "The weight 0 must be above 0. Enter a positive weight such as 1, or "
        "delete the measure to leave it out of the score."
    ]


def test_scorecard_admin_rejects_zero_day_window(admin_client):
    data = scorecard_data({"kind": "event_count", "window_days": "0"})

    response = admin_client.post(ADD_URL, data)

    assert response.status_code == 200
    assert measure_errors(response)["window_days"] == [
        "The window (0 days) must be at least 1 day. Enter how many days back "
        "from now the measure reads."
    ]
    assert not Scorecard.objects.filter(name="Engagement").exists()


@pytest.mark.parametrize(
    ("zero_at", "full_at", "field", "message"),
    [
        (
            "-1e308",
            "1e308",
            "zero_at",
            "Zero at -1e+308 is out of range. Enter a value from "
            "-1,000,000,000 to 1,000,000,000.",
        ),
        (
            "0",
            "1e10",
            "full_at",
            "Full at 1e+10 is out of range. Enter a value from "
            "-1,000,000,000 to 1,000,000,000.",
        ),
        (
            "0",
            "1e-320",
            "full_at",
            "Zero at (0) and Full at (9.99989e-321) are less than 0.001 apart. "
            "Move them at least 0.001 apart.",
        ),
    ],
)
def test_scorecard_admin_rejects_unsafe_thresholds(
    admin_client, zero_at, full_at, field, message
):
    # Saved, the first and last pair would make every refresh of the level
    # fail with PostgreSQL's "value out of range: overflow".
    data = scorecard_data(
        {"kind": "event_count", "zero_at": zero_at, "full_at": full_at}
    )

    response = admin_client.post(ADD_URL, data)

    assert response.status_code == 200
    assert measure_errors(response)[field] == [message]
    assert not Scorecard.objects.filter(name="Engagement").exists()


def test_scorecard_admin_rejects_second_active_scorecard(admin_client):
    Scorecard.objects.filter(level="member").delete()
    Scorecard.objects.create(name="Current", level="member", is_active=True)
    data = scorecard_data({"kind": "event_count"}, is_active=True)

    response = admin_client.post(ADD_URL, data)

    assert response.context["adminform"].form.errors["is_active"] == [
        "The member scorecard “Current” is already active, and only one per "
        "level can be. Deactivate it first."
    ]
    assert Scorecard.objects.filter(level="member").count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_activations_keep_one_active_scorecard(monkeypatch):
    Scorecard.objects.filter(level="member").delete()
    admin = get_user_model().objects.create_superuser(
        "racer", "racer@example.com", "secret-password"
    )
    first_saved = threading.Event()
    release_first = threading.Event()
    save_related = ScorecardAdmin.save_related

    def held_save_related(self, request, form, formsets, change):
        save_related(self, request, form, formsets, change)
        if form.instance.name == "First":
            first_saved.set()
            release_first.wait(10)

    monkeypatch.setattr(ScorecardAdmin, "save_related", held_save_related)
    responses = {}
    errors = []

    def post(name: str) -> None:
        try:
            if name == "Second":
                first_saved.wait(10)
            client = Client()
            client.force_login(admin)
            data = {**scorecard_data({"kind": "event_count"}, is_active=True)}
            data["name"] = name
            responses[name] = client.post(ADD_URL, data)
        except Exception as exc:  # A thread cannot raise into the test.
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=post, args=(n,)) for n in ("First", "Second")]
    for thread in threads:
        thread.start()
    first_saved.wait(10)
    # Give the second request time to reach its check before the first commits.
    threading.Event().wait(0.5)
    release_first.set()
    for thread in threads:
        thread.join(20)

    assert errors == []
    assert responses["First"].status_code == 302
    assert responses["Second"].status_code == 200
    assert responses["Second"].context["adminform"].form.errors["is_active"] == [
        "The member scorecard “First” is already active, and only one per "
        "level can be. Deactivate it first."
    ]
    active = Scorecard.objects.filter(level="member", is_active=True)
    assert list(active.values_list("name")) == [("First",)]


def test_scorecard_admin_rejects_repeated_labels(admin_client):
    data = scorecard_data(
        {"kind": "event_count", "label": "Activity"},
        {"kind": "days_since_activity", "label": "activity", "zero_at": "30"},
        {"kind": "course_completions"},
        {"kind": "course_completions", "position": "1"},
    )

    response = admin_client.post(ADD_URL, data)

    formset = response.context["inline_admin_formsets"][0].formset
    assert formset.non_form_errors() == [
        "More than one measure is labelled 'Activity', 'activity', 'Course "
        "completions', so "
        "score pages could not tell them apart. Give each a label of its own."
    ]
    assert not Scorecard.objects.filter(name="Engagement").exists()


def test_scorecard_admin_rejects_too_many_measures(admin_client):
    # Saved, 51 measures would make every refresh of the level fail with
    # PostgreSQL's "cannot pass more than 100 arguments to a function".
    measures = [{"kind": "event_count", "label": f"M{n}"} for n in range(51)]
    data = scorecard_data(*measures)

    response = admin_client.post(ADD_URL, data)

    assert response.status_code == 200
    formset = response.context["inline_admin_formsets"][0].formset
    assert formset.non_form_errors() == [
        "This scorecard has 51 measures, but a scorecard can have at most 50. "
        "Delete 1 of them."
    ]
    assert not Scorecard.objects.filter(name="Engagement").exists()


def test_scorecard_admin_rejects_active_scorecard_without_measures(admin_client):
    Scorecard.objects.filter(level="member").delete()
    data = scorecard_data(is_active=True)

    response = admin_client.post(ADD_URL, data)

    formset = response.context["inline_admin_formsets"][0].formset
    assert formset.non_form_errors() == [
        "An active scorecard needs at least one measure. Add one, or untick Active."
    ]
    assert not Scorecard.objects.filter(level="member").exists()


def test_scorecard_admin_change_page_explains_measures(admin_client):
    scorecard = Scorecard.objects.create(name="Usage", level="member")
    ScorecardMeasure.objects.create(
        scorecard=scorecard,
        kind="product_usage",
        weight=2,
        zero_at=0,
        full_at=50,
        window_days=14,
    )

    response = admin_client.get(f"/admin/lifecycle/scorecard/{scorecard.pk}/change/")

    assert response.status_code == 200
    assert (
        "Counts product usage events (product.*) in the last 14 days. 0 or less "
        "scores 0 and 50 or more scores 100, linear between. Weight 2 (100 % of "
        "the score)." in response.content.decode()
    )


def test_scorecard_admin_changelist_query_count_fixed(
    admin_client, django_assert_max_num_queries
):
    for number in range(10):
        scorecard = Scorecard.objects.create(name=f"Card {number}", level="member")
        ScorecardMeasure.objects.create(
            scorecard=scorecard, kind="event_count", zero_at=0, full_at=1
        )
    admin_client.get("/admin/lifecycle/scorecard/")

    with django_assert_max_num_queries(8):
        response = admin_client.get("/admin/lifecycle/scorecard/")

    assert response.status_code == 200


def test_scorecard_admin_rescore_action_queues_full_passes(admin_client, monkeypatch):
    queued = []
    monkeypatch.setattr(
        "apps.lifecycle.tasks.rescore_all_members_task.delay",
        lambda: queued.append("member"),
    )
    monkeypatch.setattr(
        "apps.lifecycle.tasks.rescore_all_accounts_task.delay",
        lambda: queued.append("account"),
    )
    ids = [
        str(Scorecard.objects.create(name=f"{level} card", level=level).pk)
        for level in ["member", "account"]
    ]

    response = admin_client.post(
        "/admin/lifecycle/scorecard/",
        {"action": "rescore_now", "_selected_action": ids},
    )

    assert response.status_code == 302
    assert sorted(queued) == ["account", "member"]


def test_scorecard_measure_inputs_have_labels_and_help(admin_client):
    page = admin_client.get(ADD_URL).content.decode()

    fields = ("position", "kind", "label", "event_kinds", "window_days")
    for field in (*fields, "weight", "zero_at", "full_at"):
        assert re.search(rf'<label[^>]* for="id_measures-0-{field}"', page), field
    assert "Raw value that scores 100." in page


def test_measure_heading_after_failed_save(admin_client):
    """A measure keeps its stored label as heading when the save fails."""
    scorecard = Scorecard.objects.create(name="Engagement", level="member")
    measure = ScorecardMeasure.objects.create(
        scorecard=scorecard, kind="event_count", label="Activity", zero_at=0, full_at=10
    )
    data = scorecard_data({"kind": "event_count", "label": "Renamed", "full_at": "0"})
    data.update({"measures-INITIAL_FORMS": "1", "measures-0-id": str(measure.pk)})
    data["measures-0-scorecard"] = str(scorecard.pk)

    response = admin_client.post(
        f"/admin/lifecycle/scorecard/{scorecard.pk}/change/", data
    )

    assert response.status_code == 200
    assert "full_at" in measure_errors(response)
    headings = re.findall(
        r'<span class="inline_label">\s*(.*?)\s*</span>', response.content.decode()
    )
    assert headings[0] == "Activity"
    measure.refresh_from_db()
    assert measure.label == "Activity"
