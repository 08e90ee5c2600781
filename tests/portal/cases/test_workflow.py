"""Statuses, replies, internal notes, CSAT and auto-close."""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from apps.lifecycle.models import ActivityEvent, Notification
from apps.portal.models import Case, CaseAttempt, CaseStatusChange
from apps.portal.services.case_schedules import close_solved_cases
from apps.portal.services.cases import (
    TRANSITIONS,
    assign_case,
    change_case_priority,
    change_case_status,
    file_case,
    rate_case,
    reply_to_case,
)
from apps.portal.services.deflection import start_attempt
from rm6.errors import DomainError
from tests import factories
from tests.portal.cases.conftest import png
from tests.portal.cases.factories import (
    CaseFactory,
    CaseTopicFactory,
    SlaPolicyFactory,
)

Status = Case.Status


@pytest.fixture
def case(filer):
    return file_case(member=filer, subject="Export fails", body="It stops.")


def history(case) -> list[tuple[str, str]]:
    return list(
        CaseStatusChange.objects.filter(case=case)
        .order_by("id")
        .values_list("from_status", "to_status")
    )


def kinds(case) -> list[str]:
    return list(
        ActivityEvent.objects.filter(
            subject_id=str(case.pk), kind__startswith="portal.case"
        )
        .order_by("id")
        .values_list("kind", flat=True)
    )


# Filing -------------------------------------------------------------------------


def test_file_case_records_history_event_and_search(filer):
    topic = CaseTopicFactory(name="Exports", slug="exports")

    case = file_case(
        member=filer, subject="Invoice export fails", body="Stops.", topic=topic
    )

    assert case.status == Status.NEW
    assert case.account == filer.account
    assert history(case) == [("", "new")]
    event = ActivityEvent.objects.get(kind="portal.case_filed")
    assert event.properties == {
        "priority": "normal",
        "topic": "exports",
        "attachments": 0,
        "source_topic_id": None,
    }
    assert Case.objects.filter(search_vector="invoice").get() == case


def test_file_case_ties_attempt_as_not_deflected(filer):
    attempt = start_attempt(member=filer, attribution={})

    case = file_case(member=filer, subject="S", body="B", attempt_id=attempt.pk)

    attempt.refresh_from_db()
    assert attempt.outcome == CaseAttempt.Outcome.NOT_DEFLECTED
    assert case.attempt_id == attempt.pk


def test_blank_subject_rejected(filer):
    with pytest.raises(DomainError) as error:
        file_case(member=filer, subject="  ", body="B")

    assert error.value.message == "The subject is missing; write one."
    assert Case.objects.count() == 0


def test_urgent_only_for_high_touch_accounts(filer):
    with pytest.raises(DomainError) as error:
        file_case(member=filer, subject="S", body="B", priority="urgent")

    assert error.value.message == (
        "Priority 'urgent' is not available to you. Choose one of: low, normal, high."
    )


def test_urgent_allowed_for_high_touch_account(db):
    account = factories.AccountFactory(cs_tier="high_touch")
    member = factories.MemberFactory(account=account)

    case = file_case(member=member, subject="S", body="B", priority="urgent")

    assert case.priority == "urgent"


def test_case_form_page_starts_attempt_and_files(client, filer, media_root):
    client.force_login(filer.user)

    form_page = client.get(reverse("portal:case_new"))
    attempt = CaseAttempt.objects.get(member=filer)
    response = client.post(
        reverse("portal:case_new"),
        {
            "subject": "Export fails",
            "body": "It stops.",
            "priority": "high",
            "attempt": attempt.pk,
            "attachments": [png()],
        },
    )

    case = Case.objects.get()
    assert f'name="attempt" value="{attempt.pk}"' in form_page.content.decode()
    assert 'id="case-suggestions" aria-live="polite"' in form_page.content.decode()
    assert response.status_code == 302
    assert response.url == reverse("portal:case_detail", kwargs={"pk": case.pk})
    assert case.priority == "high"
    assert case.attempt_id == attempt.pk
    assert case.attachments.count() == 1


def test_case_form_offers_urgent_only_to_high_touch(client, filer):
    client.force_login(filer.user)

    html = client.get(reverse("portal:case_new")).content.decode()

    assert '<option value="high">' in html
    assert 'value="urgent"' not in html


# Transitions ---------------------------------------------------------------------


def test_transition_table_lets_closed_go_nowhere():
    assert TRANSITIONS[Status.CLOSED] == frozenset()


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (["open", "waiting", "open", "solved", "closed"], "closed"),
        (["solved", "open"], "open"),
        (["waiting", "solved"], "solved"),
    ],
)
def test_staff_transitions_allowed(case, staff, path, expected):
    for status in path:
        change_case_status(case=case, status=status, actor=staff)

    case.refresh_from_db()
    assert case.status == expected
    assert history(case)[1:] == list(zip(["new", *path[:-1]], path, strict=True))


@pytest.mark.parametrize(
    ("path", "bad"), [(["closed"], "open"), (["solved"], "waiting"), (["open"], "new")]
)
def test_invalid_transition_rejected_and_changes_nothing(case, staff, path, bad):
    for status in path:
        change_case_status(case=case, status=status, actor=staff)
    before = history(case)

    with pytest.raises(DomainError) as error:
        change_case_status(case=case, status=bad, actor=staff)

    case.refresh_from_db()
    assert error.value.code == "invalid_transition"
    assert history(case) == before


def test_member_may_only_mark_solved(case, filer):
    with pytest.raises(DomainError) as error:
        change_case_status(case=case, status="closed", actor=filer.user)

    change_case_status(case=case, status="solved", actor=filer.user)
    case.refresh_from_db()
    assert error.value.message == (
        "Members can only mark a case solved; reply to reopen it."
    )
    assert case.status == "solved"
    assert case.solved_at is not None


def test_solved_records_solved_event(case, staff):
    change_case_status(case=case, status="solved", actor=staff)

    assert kinds(case) == [
        "portal.case_filed",
        "portal.case_status_changed",
        "portal.case_solved",
    ]


# Replies ----------------------------------------------------------------------


def test_first_staff_reply_sets_first_response_and_opens(case, staff):
    reply_to_case(case=case, author=staff, body="Looking at it.")
    first = Case.objects.get(pk=case.pk).first_responded_at
    reply_to_case(case=case, author=staff, body="Found it.")

    case.refresh_from_db()
    assert first is not None
    assert case.first_responded_at == first
    assert case.status == Status.OPEN
    assert history(case) == [("", "new"), ("new", "open")]


def test_staff_reply_notifies_filer(case, staff, filer):
    reply_to_case(case=case, author=staff, body="Looking at it.")

    notification = Notification.objects.get(member=filer)
    assert notification.title == f"Support replied on case #{case.pk}: Export fails"
    assert notification.url == reverse("portal:case_detail", kwargs={"pk": case.pk})


def test_member_reply_does_not_count_as_first_response(case, filer):
    reply_to_case(case=case, author=filer.user, body="More detail.")

    case.refresh_from_db()
    assert case.first_responded_at is None
    assert case.status == Status.NEW


def test_member_reply_reopens_waiting_case(case, staff, filer):
    change_case_status(case=case, status="waiting", actor=staff)

    reply_to_case(case=case, author=filer.user, body="Here you go.")

    case.refresh_from_db()
    assert case.status == Status.OPEN
    assert history(case)[-1] == ("waiting", "open")


def test_member_reply_reopens_solved_case(case, staff, filer):
    change_case_status(case=case, status="solved", actor=staff)

    reply_to_case(case=case, author=filer.user, body="It is back.")

    case.refresh_from_db()
    assert case.status == Status.OPEN
    assert case.solved_at is None


def test_closed_case_takes_no_reply(case, staff, filer):
    change_case_status(case=case, status="closed", actor=staff)

    with pytest.raises(DomainError) as error:
        reply_to_case(case=case, author=filer.user, body="Hello?")

    assert error.value.message == (
        f"Case #{case.pk} is closed and takes no replies; file a new case."
    )
    assert case.messages.count() == 0


# Internal notes --------------------------------------------------------------------


def test_member_cannot_write_internal_note(case, filer):
    with pytest.raises(DomainError):
        reply_to_case(case=case, author=filer.user, body="x", is_internal=True)

    assert case.messages.count() == 0


def test_internal_note_hidden_from_member_page_and_api(
    client, case, staff, filer, account_admin
):
    reply_to_case(
        case=case,
        author=staff,
        body="Customer is on old build",
        is_internal=True,
        uploads=[png("internal.png")],
    )
    reply_to_case(case=case, author=staff, body="Please update.")
    note_file = case.attachments.get()
    api = APIClient()

    for member in (filer, account_admin):
        client.force_login(member.user)
        api.force_authenticate(member.user)
        html = client.get(reverse("portal:case_detail", kwargs={"pk": case.pk}))
        thread = api.get(f"/api/v1/portal/cases/{case.pk}/messages/").json()
        files = api.get(f"/api/v1/portal/cases/{case.pk}/attachments/").json()
        download = client.get(
            reverse(
                "portal:case_attachment",
                kwargs={"pk": case.pk, "attachment_pk": note_file.pk},
            )
        )
        assert "Customer is on old build" not in html.content.decode()
        assert "internal.png" not in html.content.decode()
        assert [m["body"] for m in thread] == ["Please update."]
        assert files == []
        assert download.status_code == 404


def test_internal_note_shown_to_staff(client, case, staff):
    reply_to_case(
        case=case, author=staff, body="Customer is on old build", is_internal=True
    )
    client.force_login(staff)

    html = client.get(reverse("portal:case_staff", kwargs={"pk": case.pk})).content

    assert b"Customer is on old build" in html
    assert b"Internal note" in html


def test_internal_note_leaves_first_response_unset(case, staff):
    reply_to_case(case=case, author=staff, body="Note", is_internal=True)

    case.refresh_from_db()
    assert case.first_responded_at is None
    assert case.status == Status.NEW


def test_member_export_leaves_out_internal_notes(case, staff, filer):
    from apps.portal.selectors.cases import export_member_cases

    reply_to_case(case=case, author=staff, body="Secret note", is_internal=True)
    reply_to_case(case=case, author=staff, body="Public answer")

    exported = export_member_cases(filer)

    assert [m["body"] for m in exported[0]["messages"]] == ["Public answer"]


# Staff changes ------------------------------------------------------------------


def test_assign_only_to_staff(case, staff, filer):
    with pytest.raises(DomainError):
        assign_case(case=case, assignee=filer.user, actor=staff)

    assign_case(case=case, assignee=staff, actor=staff)
    case.refresh_from_db()
    assert case.assignee == staff


def test_member_cannot_assign(case, filer, staff):
    with pytest.raises(DomainError):
        assign_case(case=case, assignee=staff, actor=filer.user)

    case.refresh_from_db()
    assert case.assignee is None


def test_priority_change_recomputes_due_times(filer, staff):
    SlaPolicyFactory(
        priority="normal", first_response_minutes=600, resolution_minutes=6000
    )
    SlaPolicyFactory(
        priority="urgent", first_response_minutes=30, resolution_minutes=240
    )
    case = file_case(member=filer, subject="S", body="B")

    change_case_priority(case=case, priority="urgent", actor=staff)

    case.refresh_from_db()
    assert case.first_response_due_at == case.created_at + datetime.timedelta(
        minutes=30
    )
    assert case.resolution_due_at == case.created_at + datetime.timedelta(minutes=240)


def test_staff_page_update_form(client, case, staff):
    client.force_login(staff)

    response = client.post(
        reverse("portal:case_staff_update", kwargs={"pk": case.pk}),
        {"status": "waiting", "priority": "high", "assignee": str(staff.pk)},
    )

    case.refresh_from_db()
    assert response.status_code == 302
    assert (case.status, case.priority, case.assignee) == ("waiting", "high", staff)


def test_staff_page_rejects_bad_transition_with_message(client, case, staff):
    change_case_status(case=case, status="closed", actor=staff)
    client.force_login(staff)

    response = client.post(
        reverse("portal:case_staff_update", kwargs={"pk": case.pk}),
        {"status": "open"},
    )

    assert response.status_code == 400
    assert "cannot go from closed to open" in response.content.decode()


# CSAT -------------------------------------------------------------------------


def test_filer_rates_solved_case_once(case, staff, filer):
    change_case_status(case=case, status="solved", actor=staff)

    rate_case(case=case, member=filer, score=4, comment="Quick help")
    with pytest.raises(DomainError) as error:
        rate_case(case=case, member=filer, score=1)

    case.refresh_from_db()
    assert (case.csat_score, case.csat_comment) == (4, "Quick help")
    assert (
        error.value.message
        == f"Case #{case.pk} was already rated; a case is rated once."
    )
    assert ActivityEvent.objects.filter(kind="portal.case_rated").count() == 1


def test_only_filer_may_rate(case, staff, account_admin, colleague):
    change_case_status(case=case, status="solved", actor=staff)

    for member in (account_admin, colleague, None):
        with pytest.raises(DomainError) as error:
            rate_case(case=case, member=member, score=5)
        assert error.value.message == "Only the member who filed the case can rate it."

    case.refresh_from_db()
    assert case.csat_score is None


def test_open_case_cannot_be_rated(case, filer):
    with pytest.raises(DomainError) as error:
        rate_case(case=case, member=filer, score=5)

    assert error.value.message == f"Case #{case.pk} is new; rate it once it is solved."


@pytest.mark.parametrize("score", [0, 6, True])
def test_rating_out_of_range_rejected(case, staff, filer, score):
    change_case_status(case=case, status="closed", actor=staff)

    with pytest.raises(DomainError):
        rate_case(case=case, member=filer, score=score)

    case.refresh_from_db()
    assert case.csat_score is None


def test_rating_form_only_for_filer(client, case, staff, filer, account_admin):
    change_case_status(case=case, status="solved", actor=staff)
    url = reverse("portal:case_detail", kwargs={"pk": case.pk})

    client.force_login(filer.user)
    filer_html = client.get(url).content.decode()
    client.force_login(account_admin.user)
    admin_html = client.get(url).content.decode()
    post = client.post(
        reverse("portal:case_rate", kwargs={"pk": case.pk}), {"score": 1}
    )

    assert "Rate the support" in filer_html
    assert "Rate the support" not in admin_html
    assert post.status_code == 400
    case.refresh_from_db()
    assert case.csat_score is None


def test_api_rating_by_filer(case, staff, filer):
    change_case_status(case=case, status="solved", actor=staff)
    api = APIClient()
    api.force_authenticate(filer.user)

    response = api.post(
        f"/api/v1/portal/cases/{case.pk}/rating/", {"score": 5}, format="json"
    )
    again = api.post(
        f"/api/v1/portal/cases/{case.pk}/rating/", {"score": 2}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["csat_score"] == 5
    assert again.status_code == 400
    assert again.json()["code"] == "conflict"


# Auto-close --------------------------------------------------------------------


def test_solved_cases_close_after_delay(case, staff, settings):
    settings.RM6_CASE_AUTO_CLOSE_DAYS = 7
    change_case_status(case=case, status="solved", actor=staff)
    solved_at = Case.objects.get(pk=case.pk).solved_at

    early = close_solved_cases(now=solved_at + datetime.timedelta(days=6))
    late = close_solved_cases(now=solved_at + datetime.timedelta(days=8))

    case.refresh_from_db()
    assert (early, late) == (0, 1)
    assert case.status == Status.CLOSED
    assert history(case)[-1] == ("solved", "closed")
    assert CaseStatusChange.objects.filter(case=case).last().changed_by is None


def test_auto_close_leaves_reopened_cases(case, staff, filer):
    change_case_status(case=case, status="solved", actor=staff)
    reply_to_case(case=case, author=filer.user, body="Back again")

    closed = close_solved_cases(now=timezone.now() + datetime.timedelta(days=30))

    assert closed == 0


# API -----------------------------------------------------------------------------


def test_api_create_case_with_file(filer, media_root):
    api = APIClient()
    api.force_authenticate(filer.user)

    response = api.post(
        "/api/v1/portal/cases/",
        {
            "subject": "Export",
            "body": "Fails",
            "priority": "low",
            "attachments": [png()],
        },
        format="multipart",
    )

    body = response.json()
    assert response.status_code == 201
    assert body["priority"] == "low"
    assert "first_response_due_at" not in body
    assert Case.objects.get().attachments.count() == 1


def test_api_staff_status_change_and_member_refusal(case, staff, filer):
    api = APIClient()
    api.force_authenticate(filer.user)
    refused = api.post(
        f"/api/v1/portal/cases/{case.pk}/status/", {"status": "closed"}, format="json"
    )
    api.force_authenticate(staff)
    allowed = api.post(
        f"/api/v1/portal/cases/{case.pk}/status/", {"status": "waiting"}, format="json"
    )

    assert refused.status_code == 400
    assert allowed.status_code == 200
    assert allowed.json()["status"] == "waiting"
    assert "resolution_minutes_left" in allowed.json()


def test_api_member_cannot_post_internal_note(case, filer):
    api = APIClient()
    api.force_authenticate(filer.user)

    response = api.post(
        f"/api/v1/portal/cases/{case.pk}/messages/",
        {"body": "x", "visibility": "internal"},
        format="json",
    )

    assert response.status_code == 400
    assert case.messages.count() == 0


def test_api_schema_lists_case_paths(api_client):
    paths = api_client.get("/api/schema/", {"format": "json"}).json()["paths"]

    for path in [
        "/api/v1/portal/cases/",
        "/api/v1/portal/cases/{id}/",
        "/api/v1/portal/cases/{id}/messages/",
        "/api/v1/portal/cases/{id}/attachments/",
        "/api/v1/portal/cases/{id}/status/",
        "/api/v1/portal/cases/{id}/rating/",
    ]:
        assert path in paths


# Staff queue ----------------------------------------------------------------------


def test_queue_breach_flag_and_order(client, staff):
    now = timezone.now()
    closed = CaseFactory(
        subject="Closed long ago",
        status=Status.CLOSED,
        resolution_due_at=now - datetime.timedelta(days=30),
    )
    later = CaseFactory(
        subject="Due later", resolution_due_at=now + datetime.timedelta(days=2)
    )
    breached = CaseFactory(
        subject="Overdue",
        first_response_due_at=now - datetime.timedelta(hours=1),
        first_response_breached_at=now,
    )
    client.force_login(staff)

    response = client.get(reverse("portal:case_queue"))
    breached_only = client.get(reverse("portal:case_queue"), {"breached": "yes"})

    order = [case.pk for case in response.context["page_obj"].object_list]
    assert order == [breached.pk, later.pk, closed.pk]
    assert "First response breached" in response.content.decode()
    assert [c.pk for c in breached_only.context["page_obj"].object_list] == [
        breached.pk
    ]


# Member merges and exports ------------------------------------------------------


def test_member_merge_moves_cases_to_survivor(case, filer, staff):
    from apps.membership.services.merge import merge_members

    survivor = factories.MemberFactory(account=filer.account)

    merge_members(survivor=survivor, duplicate=filer, actor=staff)

    case.refresh_from_db()
    assert case.member == survivor


def test_case_form_subject_asks_for_suggestions(client, filer):
    client.force_login(filer.user)

    html = client.get(reverse("portal:case_new")).content.decode()

    assert f'hx-get="{reverse("portal:case_suggestions")}"' in html
    assert 'hx-trigger="input changed delay:250ms"' in html
    assert 'hx-target="#case-suggestions"' in html
    assert 'hx-include="[name=attempt]"' in html
    assert "hx-vals='js:{q: this.value}'" in html
