"""The default case description of an escalated question fits the case limit."""

import datetime
import html

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from apps.community.models import Topic
from apps.community.services import MAX_BODY_LENGTH
from apps.portal.models import Case
from apps.portal.services.cases import BODY_MAX_LENGTH, build_escalation_body
from tests import factories

pytestmark = pytest.mark.django_db

HOURS = 24


@pytest.fixture(autouse=True)
def escalation_delay(settings):
    settings.RM6_ESCALATION_AFTER_HOURS = HOURS


def ask(author, *, body: str) -> Topic:
    return factories.TopicFactory(
        author=author,
        kind=Topic.Kind.QUESTION,
        title="How do I export invoices?",
        body=body,
        created_at=timezone.now() - datetime.timedelta(hours=HOURS + 1),
    )


def topic_url(topic: Topic) -> str:
    return f"http://testserver{topic.get_absolute_url()}"


def test_build_escalation_body_keeps_short_text():
    body = build_escalation_body(question_body="  Greyed out. ", url="http://x/t/1/")

    assert body == "Greyed out.\n\nAsked in the community: http://x/t/1/"


def test_build_escalation_body_cuts_long_text():
    url = "http://testserver/community/t/1/"

    body = build_escalation_body(question_body="a" * MAX_BODY_LENGTH, url=url)

    assert len(body) == BODY_MAX_LENGTH
    assert body.endswith("a\u2026\n\nAsked in the community: " + url)


def test_build_escalation_body_at_limit_unchanged():
    url = "http://testserver/community/t/1/"
    link = f"\n\nAsked in the community: {url}"
    text = "a" * (BODY_MAX_LENGTH - len(link))

    assert build_escalation_body(question_body=text, url=url) == text + link


def test_escalate_api_long_question_files_case(filer):
    topic = ask(filer, body="x" * MAX_BODY_LENGTH)
    client = APIClient()
    client.force_authenticate(filer.user)

    response = client.post(
        f"/api/v1/portal/questions/{topic.pk}/escalate/", {}, format="json"
    )

    case = Case.objects.get()
    assert response.status_code == 201
    assert len(case.body) == BODY_MAX_LENGTH
    assert case.body.startswith("x" * 100)
    assert case.body.endswith(f"x\u2026\n\nAsked in the community: {topic_url(topic)}")


def test_case_form_long_question_initial_fits(client, filer):
    topic = ask(filer, body="x" * MAX_BODY_LENGTH)
    client.force_login(filer.user)

    response = client.get(reverse("portal:case_new"), {"topic": topic.pk})

    initial = response.context["form"].initial["body"]
    assert response.status_code == 200
    assert len(initial) == BODY_MAX_LENGTH
    assert initial.endswith(f"x\u2026\n\nAsked in the community: {topic_url(topic)}")
    assert html.escape(initial) in response.content.decode()


def test_case_form_long_question_initial_submits(client, filer):
    topic = ask(filer, body="x" * MAX_BODY_LENGTH)
    client.force_login(filer.user)
    form = client.get(reverse("portal:case_new"), {"topic": topic.pk}).context["form"]

    response = client.post(
        reverse("portal:case_new"),
        {
            "subject": form.initial["subject"],
            "body": form.initial["body"],
            "priority": "normal",
            "attempt": form.initial["attempt"],
            "source_topic": topic.pk,
        },
    )

    case = Case.objects.get()
    assert response.status_code == 302
    assert case.source_topic_id == topic.pk
    assert case.body == form.initial["body"]
