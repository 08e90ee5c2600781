"""A resubmitted case form files one case per attempt, never a 500."""

import datetime
import threading

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from apps.community.models import Topic
from apps.lifecycle.models import ActivityEvent
from apps.portal.models import Case, CaseAttempt
from apps.portal.services.cases import file_case, get_or_file_case
from apps.portal.services.deflection import start_attempt
from tests import factories
from tests.portal.cases.conftest import png
from tests.portal.cases.racing import race_against_held_insert

pytestmark = pytest.mark.django_db(transaction=True)


def form_data(attempt: CaseAttempt) -> dict:
    return {
        "subject": "Export fails",
        "body": "It stops.",
        "priority": "normal",
        "attempt": attempt.pk,
    }


def open_form(client, filer) -> CaseAttempt:
    client.force_login(filer.user)
    client.get(reverse("portal:case_new"))
    return CaseAttempt.objects.get(member=filer)


def test_form_sequential_resubmits_file_one_case(client, filer):
    attempt = open_form(client, filer)

    responses = [
        client.post(
            reverse("portal:case_new"), form_data(attempt) | {"attachments": [png()]}
        )
        for _ in range(3)
    ]

    case = Case.objects.get()
    detail_url = reverse("portal:case_detail", kwargs={"pk": case.pk})
    assert [r.status_code for r in responses] == [302, 302, 302]
    assert [r.url for r in responses] == [detail_url] * 3
    assert case.attempt_id == attempt.pk
    assert case.attachments.count() == 1
    assert ActivityEvent.objects.filter(kind="portal.case_filed").count() == 1


def test_form_resubmit_says_case_was_filed(client, filer):
    attempt = open_form(client, filer)
    client.post(reverse("portal:case_new"), form_data(attempt))

    response = client.post(reverse("portal:case_new"), form_data(attempt), follow=True)

    case = Case.objects.get()
    assert f"Case #{case.pk} was already filed from this form." in (
        response.content.decode()
    )


def test_escalation_form_resubmit_redirects_to_case(client, filer, settings):
    settings.RM6_ESCALATION_AFTER_HOURS = 24
    topic = factories.TopicFactory(
        author=filer,
        kind=Topic.Kind.QUESTION,
        created_at=timezone.now() - datetime.timedelta(hours=25),
    )
    client.force_login(filer.user)
    client.get(reverse("portal:case_new"), {"topic": topic.pk})
    attempt = CaseAttempt.objects.get(member=filer)
    data = form_data(attempt) | {"source_topic": topic.pk}

    responses = [client.post(reverse("portal:case_new"), data) for _ in range(2)]

    case = Case.objects.get()
    detail_url = reverse("portal:case_detail", kwargs={"pk": case.pk})
    assert [r.status_code for r in responses] == [302, 302]
    assert [r.url for r in responses] == [detail_url] * 2
    assert case.source_topic_id == topic.pk


def test_form_concurrent_resubmits_file_one_case(filer):
    attempt = start_attempt(member=filer, attribution={})
    barrier = threading.Barrier(2)
    responses: list = []
    errors: list = []

    def post():
        client = Client(raise_request_exception=True)
        client.force_login(filer.user)
        try:
            barrier.wait(timeout=10)
            responses.append(
                client.post(reverse("portal:case_new"), form_data(attempt))
            )
        except Exception as error:  # reported by the assert below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    case = Case.objects.get()
    assert errors == []
    assert [r.status_code for r in responses] == [302, 302]
    assert {r.url for r in responses} == {
        reverse("portal:case_detail", kwargs={"pk": case.pk})
    }
    assert case.attempt_id == attempt.pk
    assert ActivityEvent.objects.filter(kind="portal.case_filed").count() == 1


def test_losing_insert_returns_winner_case(filer):
    """Make the second insert wait on the first one's unique index row.

    The first case is inserted in another thread's open transaction, so the
    second filing gets the unique violation once that transaction commits.
    """
    attempt = start_attempt(member=filer, attribution={})
    winner, case, created = race_against_held_insert(
        hold=lambda: file_case(
            member=filer, subject="First", body="B", attempt_id=attempt.pk
        ),
        race=lambda: get_or_file_case(
            member=filer, subject="Second", body="B", attempt_id=attempt.pk
        ),
    )

    assert created is False
    assert case.pk == winner.pk
    assert case.subject == "First"
    assert Case.objects.count() == 1


def test_api_resubmit_returns_case_with_200(filer):
    attempt = start_attempt(member=filer, attribution={})
    client = APIClient()
    client.force_authenticate(filer.user)
    payload = {"subject": "Export fails", "body": "It stops.", "attempt": attempt.pk}

    first = client.post("/api/v1/portal/cases/", payload, format="json")
    second = client.post("/api/v1/portal/cases/", payload, format="json")

    assert first.status_code == 201
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    assert Case.objects.count() == 1


def test_other_members_attempt_files_case_without_it(filer, colleague):
    attempt = start_attempt(member=colleague, attribution={})

    case = file_case(member=filer, subject="S", body="B", attempt_id=attempt.pk)

    attempt.refresh_from_db()
    assert case.attempt_id is None
    assert attempt.outcome == CaseAttempt.Outcome.PENDING
