"""Escalating an unanswered community question to a support case by the API."""

import datetime

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from apps.community.models import Space, Topic
from apps.community.services import post_reply
from apps.lifecycle.models import ActivityEvent, Notification
from apps.portal.models import Case, EscalationOffer
from apps.portal.services.case_schedules import offer_question_escalations
from apps.portal.services.cases import file_case
from tests import factories
from tests.portal.cases.factories import CaseTopicFactory

pytestmark = pytest.mark.django_db

HOURS = 24


@pytest.fixture(autouse=True)
def escalation_delay(settings):
    settings.RM6_ESCALATION_AFTER_HOURS = HOURS


def ask(author, *, hours_ago: float, **fields) -> Topic:
    fields.setdefault("kind", Topic.Kind.QUESTION)
    return factories.TopicFactory(
        author=author,
        title="How do I export invoices?",
        body="The export button is greyed out.",
        created_at=timezone.now() - datetime.timedelta(hours=hours_ago),
        **fields,
    )


def escalate(user, topic_id: int, data: dict | None = None):
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client.post(
        f"/api/v1/portal/questions/{topic_id}/escalate/", data or {}, format="json"
    )


def test_escalate_api_files_case_from_question(filer):
    topic = ask(filer, hours_ago=HOURS + 1)

    response = escalate(filer.user, topic.pk)

    case = Case.objects.get()
    data = response.json()
    assert response.status_code == 201
    assert data["id"] == case.pk
    assert data["source_topic"] == topic.pk
    assert data["member"] == filer.pk
    assert data["status"] == Case.Status.NEW
    assert data["priority"] == Case.Priority.NORMAL
    assert data["subject"] == "How do I export invoices?"
    assert case.body == (
        "The export button is greyed out.\n\nAsked in the community: "
        f"http://testserver{topic.get_absolute_url()}"
    )


def test_escalate_api_takes_subject_body_priority_topic(filer):
    topic = ask(filer, hours_ago=HOURS + 1)
    case_topic = CaseTopicFactory()

    response = escalate(
        filer.user,
        topic.pk,
        {
            "subject": "Invoice export disabled",
            "body": "Since Monday.",
            "priority": "high",
            "topic": case_topic.slug,
        },
    )

    case = Case.objects.get()
    assert response.status_code == 201
    assert case.subject == "Invoice export disabled"
    assert case.body == "Since Monday."
    assert case.priority == Case.Priority.HIGH
    assert case.topic == case_topic


def test_escalate_api_repeat_returns_same_case(filer):
    topic = ask(filer, hours_ago=HOURS + 1)

    first = escalate(filer.user, topic.pk)
    second = escalate(filer.user, topic.pk, {"subject": "Another subject"})

    assert first.status_code == 201
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    assert second.json()["subject"] == "How do I export invoices?"
    assert Case.objects.count() == 1
    assert ActivityEvent.objects.filter(kind="portal.case_filed").count() == 1


def test_escalate_api_repeat_after_reply_returns_case(filer, colleague):
    topic = ask(filer, hours_ago=HOURS + 1)
    case = file_case(member=filer, subject="S", body="B", source_topic=topic)
    post_reply(author=colleague, topic=topic, body="Try the export menu.")

    response = escalate(filer.user, topic.pk)

    assert response.status_code == 200
    assert response.json()["id"] == case.pk
    assert Case.objects.count() == 1


def test_escalate_api_anonymous_rejected(filer):
    topic = ask(filer, hours_ago=HOURS + 1)

    response = escalate(None, topic.pk)

    assert response.status_code == 401
    assert Case.objects.count() == 0


def test_escalate_api_user_without_member_forbidden(filer, staff):
    topic = ask(filer, hours_ago=HOURS + 1)

    response = escalate(staff, topic.pk)

    assert response.status_code == 403
    assert response.json()["detail"].startswith("Filing a case needs a member")
    assert Case.objects.count() == 0


def test_escalate_api_unknown_question_not_found(filer):
    response = escalate(filer.user, 999_999)

    assert response.status_code == 404
    assert response.json()["detail"] == "No question 999999 that you may read."


def test_escalate_api_unreadable_question_not_found(outsider):
    private = factories.SpaceFactory(visibility=Space.Visibility.PRIVATE)
    topic = ask(factories.MemberFactory(), hours_ago=HOURS + 1, space=private)

    response = escalate(outsider.user, topic.pk)

    assert response.status_code == 404
    assert Case.objects.count() == 0


def test_escalate_api_hidden_question_not_found(filer):
    topic = ask(filer, hours_ago=HOURS + 1, is_hidden=True)

    response = escalate(filer.user, topic.pk)

    assert response.status_code == 404
    assert Case.objects.count() == 0


def test_escalate_api_other_member_forbidden(filer, colleague):
    topic = ask(filer, hours_ago=HOURS + 1)

    response = escalate(colleague.user, topic.pk)

    assert response.status_code == 403
    assert response.json()["detail"] == (
        f"Only the author of question {topic.pk} can escalate it to support."
    )
    assert Case.objects.count() == 0


def test_escalate_api_other_member_sees_no_existing_case(filer, colleague):
    topic = ask(filer, hours_ago=HOURS + 1)
    file_case(member=filer, subject="S", body="B", source_topic=topic)

    response = escalate(colleague.user, topic.pk)

    assert response.status_code == 403
    assert "id" not in response.json()
    assert Case.objects.count() == 1


def test_escalate_api_before_delay_forbidden(filer):
    topic = ask(filer, hours_ago=HOURS - 1)
    eligible_at = topic.created_at + datetime.timedelta(hours=HOURS)

    response = escalate(filer.user, topic.pk)

    assert response.status_code == 403
    assert response.json()["detail"] == (
        f"Question {topic.pk} can be escalated from {eligible_at.isoformat()}, "
        "once it has had no reply for 24 hours."
    )
    assert Case.objects.count() == 0


def test_escalate_api_answered_question_forbidden(filer, colleague):
    topic = ask(filer, hours_ago=HOURS + 1)
    post_reply(author=colleague, topic=topic, body="Try the export menu.")

    response = escalate(filer.user, topic.pk)

    assert response.status_code == 403
    assert response.json()["detail"] == (
        f"Question {topic.pk} has a reply already, so it cannot be escalated; "
        "file a new case instead if the reply did not help."
    )
    assert Case.objects.count() == 0


def test_escalate_api_own_reply_keeps_question_eligible(filer):
    topic = ask(filer, hours_ago=HOURS + 1)
    post_reply(author=filer, topic=topic, body="Still stuck.")

    response = escalate(filer.user, topic.pk)

    assert response.status_code == 201


def test_escalate_api_discussion_forbidden(filer):
    topic = ask(filer, hours_ago=HOURS + 1, kind=Topic.Kind.DISCUSSION)

    response = escalate(filer.user, topic.pk)

    assert response.status_code == 403
    assert response.json()["detail"] == (
        f"Topic {topic.pk} is a discussion, not a question; only questions can "
        "be escalated to support."
    )
    assert Case.objects.count() == 0


@pytest.mark.parametrize(
    ("kind", "words"),
    [(Topic.Kind.IDEA, "an idea"), (Topic.Kind.ANNOUNCEMENT, "an announcement")],
)
def test_escalate_api_names_topic_kind(filer, kind, words):
    topic = ask(filer, hours_ago=HOURS + 1, kind=kind)

    response = escalate(filer.user, topic.pk)

    assert response.status_code == 403
    assert response.json()["detail"].startswith(f"Topic {topic.pk} is {words}, not")


def test_escalate_api_member_without_account_forbidden(db):
    pending = factories.MemberFactory(account=None)
    topic = ask(pending, hours_ago=HOURS + 1)

    response = escalate(pending.user, topic.pk)

    assert response.status_code == 403
    assert Case.objects.count() == 0


def test_escalate_api_invalid_priority_rejected(filer):
    topic = ask(filer, hours_ago=HOURS + 1)

    response = escalate(filer.user, topic.pk, {"priority": "urgent"})

    assert response.status_code == 400
    assert response.json()["priority"] == [
        "Priority 'urgent' is not available to you. Choose one of: low, normal, high."
    ]
    assert Case.objects.count() == 0


def test_escalate_api_stops_later_offer(filer):
    topic = ask(filer, hours_ago=HOURS + 1)

    escalate(filer.user, topic.pk)

    assert offer_question_escalations() == 0
    assert Notification.objects.count() == 0
    assert not EscalationOffer.objects.filter(topic=topic).exists()


def test_schema_documents_escalate_endpoint(staff_client):
    schema = staff_client.get("/api/schema/?format=json").json()

    operation = schema["paths"]["/api/v1/portal/questions/{id}/escalate/"]["post"]
    assert set(operation["responses"]) == {"200", "201", "400", "401", "403", "404"}
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert body["$ref"].endswith("/QuestionEscalationRequest")
