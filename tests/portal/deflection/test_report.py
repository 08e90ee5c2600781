"""The staff deflection report."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from apps.portal.models import CaseAttempt
from tests import factories
from tests.portal.knowledge.factories import (
    make_article,
    make_attempt,
    make_case_topic,
    make_solved_question,
    make_suggestion,
)

pytestmark = pytest.mark.django_db
URL = reverse("portal:deflection_report")
DEFLECTED = CaseAttempt.Outcome.DEFLECTED
NOT_DEFLECTED = CaseAttempt.Outcome.NOT_DEFLECTED


def _make_attempts(count: int) -> None:
    topic = make_case_topic("Reporting")
    article = make_article(title="Export guide")
    question = make_solved_question(title="Export limits")
    for number in range(count):
        attempt = make_attempt(
            topic=topic,
            segment="smb" if number % 2 else "enterprise",
            campaign_id="spring",
            play_id="p1",
            outcome=DEFLECTED if number % 2 else NOT_DEFLECTED,
        )
        opened = timezone.now()
        make_suggestion(attempt=attempt, article=article, opened_at=opened)
        make_suggestion(attempt=attempt, topic=question)


def test_report_staff_only(member_client):
    assert member_client.get(URL).status_code == 403


def test_report_shares(staff_client):
    _make_attempts(4)
    make_attempt(outcome=CaseAttempt.Outcome.PENDING)

    response = staff_client.get(URL)

    report = response.context["report"]
    assert (report.overall.attempts, report.overall.deflected) == (5, 2)
    assert report.overall.pending == 1
    # The pending attempt is left out of the share: 2 deflected of 4 settled.
    assert report.overall.share == 0.5
    segments = {row.label: (row.attempts, row.deflected) for row in report.by_segment}
    assert segments == {"Enterprise": (2, 0), "SMB": (2, 2), "No segment": (1, 0)}
    content = {
        row.label: (row.shown, row.opened, row.deflected) for row in report.by_content
    }
    assert content == {"Export guide": (4, 4, 2), "Export limits": (4, 0, 0)}
    campaigns = {row.label: row.attempts for row in report.by_campaign}
    assert campaigns["campaign spring · play p1"] == 4


def test_report_no_data_when_empty(staff_client):
    response = staff_client.get(URL)

    assert response.context["report"].overall.share is None
    assert "no data" in response.text


def test_report_window_excludes_end(staff_client):
    old = make_attempt(outcome=DEFLECTED)
    CaseAttempt.objects.filter(pk=old.pk).update(
        started_at=timezone.now() - timedelta(days=40)
    )
    make_attempt(outcome=DEFLECTED)

    response = staff_client.get(URL)

    assert response.context["report"].overall.attempts == 1


def test_report_campaign_filter(staff_client):
    _make_attempts(2)
    make_attempt(campaign_id="autumn", outcome=DEFLECTED)

    response = staff_client.get(URL, {"campaign": "autumn"})

    assert response.context["report"].overall.attempts == 1


def test_report_rejects_bad_date(staff_client):
    response = staff_client.get(URL, {"start": "yesterday"})

    assert response.status_code == 400
    assert response.context["error"] == (
        "Invalid start date 'yesterday': use the form YYYY-MM-DD, for example "
        "2026-01-31."
    )


@pytest.mark.parametrize("name", ["start", "end"])
@pytest.mark.parametrize("raw", ["0001-01-01", "1899-12-31", "9999-12-31"])
def test_report_rejects_date_out_of_range(staff_client, name, raw):
    response = staff_client.get(URL, {name: raw})

    assert response.status_code == 400
    assert response.context["error"] == (
        f"The {name} date {raw} is out of range: choose a date from 1900-01-01 "
        "to 9999-12-30."
    )


def _count(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(URL).status_code == 200
    return len(queries)


def test_report_query_count_fixed(staff_client):
    _make_attempts(2)
    few = _count(staff_client)

    _make_attempts(6)
    factories.MemberFactory()
    many = _count(staff_client)

    assert few == many
