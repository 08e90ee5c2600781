"""Turning an unanswered community question into a support case."""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.community.models import Topic
from apps.lifecycle.models import Notification
from apps.portal.models import Case, EscalationOffer
from apps.portal.services.case_schedules import offer_question_escalations
from apps.portal.services.cases import file_case
from rm6.errors import DomainError
from tests import factories

HOURS = 24


@pytest.fixture(autouse=True)
def escalation_delay(settings):
    settings.RM6_ESCALATION_AFTER_HOURS = HOURS


def ask(author, *, hours_ago: float, kind=Topic.Kind.QUESTION) -> Topic:
    return factories.TopicFactory(
        author=author,
        kind=kind,
        title="How do I export invoices?",
        created_at=timezone.now() - datetime.timedelta(hours=hours_ago),
    )


def topic_page(client, user, topic) -> str:
    client.force_login(user)
    response = client.get(reverse("community:topic", kwargs={"pk": topic.pk}))
    assert response.status_code == 200
    return response.content.decode()


def test_author_sees_ask_support_after_delay(client, filer):
    topic = ask(filer, hours_ago=HOURS + 1)

    html = topic_page(client, filer.user, topic)

    assert "Ask support" in html
    assert f"{reverse('portal:case_new')}?topic={topic.pk}" in html


def test_author_sees_nothing_before_delay(client, filer):
    topic = ask(filer, hours_ago=HOURS - 1)

    assert "Ask support" not in topic_page(client, filer.user, topic)


def test_other_members_never_see_option(client, filer, colleague, staff):
    topic = ask(filer, hours_ago=HOURS + 1)

    assert "Ask support" not in topic_page(client, colleague.user, topic)
    assert "Ask support" not in topic_page(client, staff, topic)


def test_reply_by_someone_else_removes_option(client, filer, colleague):
    from apps.community.services import post_reply

    topic = ask(filer, hours_ago=HOURS + 1)
    post_reply(author=colleague, topic=topic, body="Try the export menu.")

    assert "Ask support" not in topic_page(client, filer.user, topic)


def test_own_reply_keeps_option(client, filer):
    from apps.community.services import post_reply

    topic = ask(filer, hours_ago=HOURS + 1)
    post_reply(author=filer, topic=topic, body="Still stuck.")

    assert "Ask support" in topic_page(client, filer.user, topic)


def test_discussions_never_escalate(client, filer):
    topic = ask(filer, hours_ago=HOURS + 1, kind=Topic.Kind.DISCUSSION)

    assert "Ask support" not in topic_page(client, filer.user, topic)


def test_case_form_prefilled_from_question(client, filer):
    topic = ask(filer, hours_ago=HOURS + 1)
    client.force_login(filer.user)

    response = client.get(reverse("portal:case_new"), {"topic": topic.pk})

    html = response.content.decode()
    assert response.status_code == 200
    assert 'value="How do I export invoices?"' in html
    assert f'name="source_topic" value="{topic.pk}"' in html


def test_case_form_for_others_question_not_found(client, filer, colleague):
    topic = ask(filer, hours_ago=HOURS + 1)
    client.force_login(colleague.user)

    response = client.get(reverse("portal:case_new"), {"topic": topic.pk})

    assert response.status_code == 404


def test_posting_escalation_sets_source_topic(client, filer):
    topic = ask(filer, hours_ago=HOURS + 1)
    client.force_login(filer.user)

    response = client.post(
        reverse("portal:case_new"),
        {
            "subject": topic.title,
            "body": "Details",
            "priority": "normal",
            "source_topic": topic.pk,
        },
    )

    case = Case.objects.get()
    assert response.status_code == 302
    assert case.source_topic == topic
    html = topic_page(client, filer.user, topic)
    assert "Ask support" not in html
    assert f"case #{case.pk}" in html


def test_case_form_for_escalated_question_goes_to_case(client, filer):
    topic = ask(filer, hours_ago=HOURS + 1)
    case = file_case(member=filer, subject="Stuck", body="Still", source_topic=topic)
    client.force_login(filer.user)

    response = client.get(reverse("portal:case_new"), {"topic": topic.pk}, follow=True)

    assert response.redirect_chain == [
        (reverse("portal:case_detail", kwargs={"pk": case.pk}), 302)
    ]
    assert f"already with support as case #{case.pk}" in response.content.decode()


def test_case_form_for_others_escalated_question_not_found(client, filer, colleague):
    topic = ask(filer, hours_ago=HOURS + 1)
    file_case(member=filer, subject="Stuck", body="Still", source_topic=topic)
    client.force_login(colleague.user)

    response = client.get(reverse("portal:case_new"), {"topic": topic.pk})

    assert response.status_code == 404


def test_one_case_per_question(filer):
    topic = ask(filer, hours_ago=HOURS + 1)
    file_case(member=filer, subject="S", body="B", source_topic=topic)

    with pytest.raises(DomainError) as error:
        file_case(member=filer, subject="S", body="B", source_topic=topic)

    assert error.value.code == "conflict"
    assert Case.objects.count() == 1


def test_service_rejects_escalation_by_other_member(filer, colleague):
    topic = ask(filer, hours_ago=HOURS + 1)

    with pytest.raises(DomainError) as error:
        file_case(member=colleague, subject="S", body="B", source_topic=topic)

    assert error.value.message == (
        "Only the author of a question that has had no reply for 24 hours can "
        "turn it into a case."
    )
    assert Case.objects.count() == 0


def test_service_rejects_escalation_before_delay(filer):
    topic = ask(filer, hours_ago=1)

    with pytest.raises(DomainError):
        file_case(member=filer, subject="S", body="B", source_topic=topic)


def test_beat_notifies_author_once_after_delay(filer):
    fresh = ask(filer, hours_ago=HOURS - 1)
    due = ask(filer, hours_ago=HOURS + 1)

    first = offer_question_escalations()
    second = offer_question_escalations()

    notification = Notification.objects.get()
    assert (first, second) == (1, 0)
    assert notification.member == filer
    assert notification.url == f"{reverse('portal:case_new')}?topic={due.pk}"
    assert notification.subject_id == str(due.pk)
    assert not EscalationOffer.objects.filter(topic=fresh).exists()


def test_beat_skips_answered_and_escalated_questions(filer, colleague):
    answered = ask(filer, hours_ago=HOURS + 1)
    Topic.objects.filter(pk=answered.pk).update(first_reply_at=timezone.now())
    escalated = ask(filer, hours_ago=HOURS + 1)
    file_case(member=filer, subject="S", body="B", source_topic=escalated)

    assert offer_question_escalations() == 0
    assert Notification.objects.count() == 0


def test_beat_skips_week_old_questions(filer):
    ask(filer, hours_ago=HOURS + 8 * 24)

    assert offer_question_escalations() == 0
