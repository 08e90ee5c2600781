"""Two beat runs at once: each breach is flagged, escalated and recorded once."""

import datetime
import threading

import pytest
from django.db import connection
from django.utils import timezone

from apps.lifecycle.models import ActivityEvent, CsmTask
from apps.portal.models import Case, EscalationOffer
from apps.portal.services.case_schedules import (
    flag_sla_breaches,
    offer_question_escalations,
)
from tests import factories
from tests.portal.cases.factories import CaseFactory

pytestmark = pytest.mark.django_db(transaction=True)


def run_twice_at_once(function, **kwargs) -> list:
    barrier = threading.Barrier(2)
    results: list = []
    errors: list = []

    def run():
        try:
            barrier.wait(timeout=10)
            results.append(function(**kwargs))
        except Exception as error:  # reported by the assert below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    return results


def test_breach_flag_set_once_under_two_runs():
    owner = factories.StaffFactory()
    account = factories.AccountFactory(owner=owner)
    now = timezone.now()
    due = now - datetime.timedelta(minutes=5)
    cases = [
        CaseFactory(
            member=factories.MemberFactory(account=account),
            first_response_due_at=due,
            created_at=now - datetime.timedelta(hours=3),
        )
        for _ in range(20)
    ]

    results = run_twice_at_once(flag_sla_breaches, now=now)

    assert sum(results) == len(cases)
    assert Case.objects.filter(first_response_breached_at=now).count() == len(cases)
    assert ActivityEvent.objects.filter(kind="portal.case_sla_breached").count() == 20
    assert ActivityEvent.objects.filter(kind="portal.case_escalated").count() == 20
    assert CsmTask.objects.count() == 20


def test_escalation_offer_made_once_under_two_runs(settings):
    settings.RM6_ESCALATION_AFTER_HOURS = 24
    topics = [
        factories.TopicFactory(created_at=timezone.now() - datetime.timedelta(hours=25))
        for _ in range(10)
    ]

    results = run_twice_at_once(offer_question_escalations)

    assert sum(results) == len(topics)
    assert EscalationOffer.objects.count() == len(topics)
    assert ActivityEvent.objects.filter(
        kind="portal.escalation_offered"
    ).count() == len(topics)
