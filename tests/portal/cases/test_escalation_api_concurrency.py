"""Concurrent escalations of one question file one case."""

import datetime
import threading

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from apps.community.models import Topic
from apps.lifecycle.models import ActivityEvent
from apps.portal.models import Case
from apps.portal.services.cases import escalate_question, file_case
from tests import factories
from tests.portal.cases.racing import race_against_held_insert

pytestmark = pytest.mark.django_db(transaction=True)

HOURS = 24


@pytest.fixture(autouse=True)
def escalation_delay(settings):
    settings.RM6_ESCALATION_AFTER_HOURS = HOURS


@pytest.fixture
def question() -> Topic:
    author = factories.MemberFactory(account=factories.AccountFactory())
    return factories.TopicFactory(
        author=author,
        kind=Topic.Kind.QUESTION,
        created_at=timezone.now() - datetime.timedelta(hours=HOURS + 1),
    )


def test_escalate_api_concurrent_calls_one_case(question):
    barrier = threading.Barrier(2)
    responses: list = []
    errors: list = []

    def post():
        client = APIClient()
        client.force_authenticate(question.author.user)
        try:
            barrier.wait(timeout=10)
            responses.append(
                client.post(f"/api/v1/portal/questions/{question.pk}/escalate/")
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

    assert errors == []
    assert sorted(response.status_code for response in responses) == [200, 201]
    assert {response.json()["id"] for response in responses} == {Case.objects.get().pk}
    assert ActivityEvent.objects.filter(kind="portal.case_filed").count() == 1


def test_escalate_question_losing_insert_returns_winner(question):
    """Make the second insert wait on the first one's unique index row.

    The first case is inserted in another thread's open transaction, so
    `escalate_question` finds no case, tries its own insert, and gets the
    unique violation once the other transaction commits.
    """
    winner, case, created = race_against_held_insert(
        hold=lambda: file_case(
            member=question.author,
            subject="First",
            body="B",
            source_topic=question,
        ),
        race=lambda: escalate_question(
            member=question.author, topic=question, subject="Second", body="B"
        ),
    )

    assert created is False
    assert case.pk == winner.pk
    assert case.subject == "First"
    assert Case.objects.count() == 1
