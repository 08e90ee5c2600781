import logging
from datetime import date, timedelta

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse
from django.utils import timezone

from apps.advocacy.models import AdvocacyAsk
from apps.advocacy.services import (
    check_ask_config,
    complete_ask,
    create_advocacy_ask,
    respond_to_ask,
)
from apps.lifecycle.models import ActivityEvent, FatigueCap, Notification, Touch
from apps.lifecycle.plays.runner import run_enrolment
from rm6.errors import DomainError
from tests import factories
from tests.admin.rows import changelist_url
from tests.advocacy.helpers import enrol, grant_consent, outcomes
from tests.plays.factories import PlayFactory, PlayStepFactory

pytestmark = pytest.mark.django_db

ASKS_URL = reverse("advocacy:asks")
ASK_CONFIG = {"kind": "review", "message": "Would you review us on G2?"}


def make_ask(member, **fields) -> AdvocacyAsk:
    ask, _ = create_advocacy_ask(
        member=member, kind="review", message="Would you review us?", **fields
    )
    return ask


def ask_play(**fields):
    play = PlayFactory(**fields)
    PlayStepFactory(play=play, position=1, action="advocacy_ask", config=ASK_CONFIG)
    return play


def event_kinds(member) -> list[str]:
    return list(
        ActivityEvent.objects.filter(member=member)
        .order_by("pk")
        .values_list("kind", flat=True)
    )


def test_create_advocacy_ask_records_event_and_notifies():
    member = factories.MemberFactory()

    ask = make_ask(member)

    assert ask.status == AdvocacyAsk.Status.OPEN
    assert event_kinds(member) == ["advocacy.ask_sent"]
    notification = Notification.objects.get(member=member)
    assert notification.kind == "advocacy.ask"
    assert notification.url == ASKS_URL


def test_create_advocacy_ask_invalid_kind_rejected():
    member = factories.MemberFactory()

    with pytest.raises(DomainError, match="Invalid ask kind 'poem'"):
        create_advocacy_ask(member=member, kind="poem", message="Write us a poem.")

    assert not AdvocacyAsk.objects.exists()


def test_ask_action_sends_ask_with_consent():
    play = ask_play(play_id="g2-reviews")
    member = factories.MemberFactory()
    grant_consent(member)
    enrolment = enrol(play, member)

    run_enrolment(enrolment_id=enrolment.pk)

    ask = AdvocacyAsk.objects.get(member=member)
    assert (ask.kind, ask.message) == ("review", "Would you review us on G2?")
    assert ask.play == play
    assert ask.step_run.enrolment == enrolment
    assert outcomes(enrolment) == [(1, "done", "review ask sent")]
    assert Touch.objects.get(member=member).channel == "advocacy_ask"


def test_ask_action_due_in_days_sets_due_on():
    play = PlayFactory()
    config = {**ASK_CONFIG, "due_in_days": 14}
    PlayStepFactory(play=play, position=1, action="advocacy_ask", config=config)
    member = factories.MemberFactory()
    grant_consent(member)

    run_enrolment(enrolment_id=enrol(play, member).pk)

    ask = AdvocacyAsk.objects.get(member=member)
    assert ask.due_on == timezone.localdate() + timedelta(days=14)


def test_ask_action_without_consent_skipped():
    play = ask_play()
    member = factories.MemberFactory()
    enrolment = enrol(play, member)

    run_enrolment(enrolment_id=enrolment.pk)

    assert outcomes(enrolment) == [(1, "skipped", "no advocacy_contact consent")]
    assert not AdvocacyAsk.objects.exists()
    assert not Touch.objects.exists()


def test_ask_action_other_purpose_needs_consent():
    play = PlayFactory()
    PlayStepFactory(
        play=play,
        position=1,
        action="advocacy_ask",
        config=ASK_CONFIG,
        consent_purpose="newsletter",
    )
    member = factories.MemberFactory()
    grant_consent(member, "newsletter")
    enrolment = enrol(play, member)

    run_enrolment(enrolment_id=enrolment.pk)

    assert outcomes(enrolment) == [(1, "skipped", "no advocacy_contact consent")]


def test_ask_action_invalid_config_fails_step():
    play = PlayFactory()
    PlayStepFactory(
        play=play, position=1, action="advocacy_ask", config={"kind": "review"}
    )
    member = factories.MemberFactory()
    grant_consent(member)
    enrolment = enrol(play, member)

    run_enrolment(enrolment_id=enrolment.pk)

    step_run = enrolment.step_runs.get()
    assert step_run.status == "failed"
    assert step_run.error == (
        'Missing "message" in the step config; set it to the text the member '
        "reads with the ask."
    )


def test_ask_action_renders_message_template():
    play = PlayFactory()
    config = {
        "kind": "review",
        "message": "Hi {{ member_name }}, would {{ account_name }} review us?",
    }
    PlayStepFactory(play=play, position=1, action="advocacy_ask", config=config)
    account = factories.AccountFactory(name="Acme")
    member = factories.MemberFactory(account=account, display_name="Ada")
    grant_consent(member)

    run_enrolment(enrolment_id=enrol(play, member).pk)

    ask = AdvocacyAsk.objects.get(member=member)
    assert ask.message == "Hi Ada, would Acme review us?"
    notification = Notification.objects.get(member=member)
    assert notification.body == "Hi Ada, would Acme review us?"


def test_ask_action_invalid_template_fails_step():
    # A config written outside admin skips the check that rejects this.
    play = PlayFactory(play_id="g2-reviews")
    config = {"kind": "review", "message": "Hi {% if member_name %}"}
    PlayStepFactory(play=play, position=1, action="advocacy_ask", config=config)
    member = factories.MemberFactory()
    grant_consent(member)
    enrolment = enrol(play, member)

    run_enrolment(enrolment_id=enrolment.pk)

    step_run = enrolment.step_runs.get()
    assert step_run.status == "failed"
    assert step_run.error == (
        "The 'message' template of the advocacy_ask step at position 1 of play "
        "'g2-reviews' is invalid: Unclosed tag on line 1: 'if'. Looking for one "
        "of: elif, else, endif. Fix it in admin, then run the play again."
    )
    assert not AdvocacyAsk.objects.exists()


def test_ask_action_empty_message_fails_step(caplog):
    play = PlayFactory(play_id="g2-reviews")
    config = {"kind": "review", "message": "{% if account_name %}Review us{% endif %}"}
    PlayStepFactory(play=play, position=1, action="advocacy_ask", config=config)
    member = factories.MemberFactory(account=None)
    grant_consent(member)
    enrolment = enrol(play, member)

    with caplog.at_level(logging.WARNING, logger="apps.lifecycle.plays.runner"):
        run_enrolment(enrolment_id=enrolment.pk)

    # An expected failure is one line without a traceback.
    assert [(r.levelname, r.exc_info) for r in caplog.records] == [("WARNING", None)]
    assert caplog.messages == [
        f"play step failed: enrolment {enrolment.pk}, step 1, code invalid_step_config"
    ]
    step_run = enrolment.step_runs.get()
    assert step_run.status == "failed"
    assert step_run.error == (
        "The 'message' text of the advocacy_ask step at position 1 of play "
        "'g2-reviews' rendered empty, so nothing was sent. Put text outside its "
        "if tags, or add an else."
    )
    assert not AdvocacyAsk.objects.exists()


def test_check_ask_config_template_accepted():
    config = {"kind": "review", "message": "Hi {{ member_name|upper }}"}

    assert check_ask_config(config) == []


@pytest.mark.parametrize(
    ("message", "error"),
    [
        (
            "Hi {{ first_name }}, would {{ account.name }} review us?",
            "'message' uses account, first_name, which this step does not know, "
            "so it would render empty. Use member_name, account_name.",
        ),
        (
            "Hi {% if member_name %}{{ member_name }}",
            "'message' is not a valid template: Unclosed tag on line 1: 'if'. "
            "Looking for one of: elif, else, endif. Fix its tags.",
        ),
        (
            "Hi {{ member_name|no_such_filter }}",
            "'message' is not a valid template: Invalid filter: "
            "'no_such_filter'. Fix its tags.",
        ),
        (
            "{% include 'advocacy/asks.html' %}",
            "'message' uses include or extends, which step templates cannot: "
            "they render without other templates. Write the text in place.",
        ),
        (
            "{% load static %}Hi {{ member_name }}",
            "'message' loads a tag library, which step templates cannot. Remove "
            "the load tag and use Django's built-in tags and filters.",
        ),
        (
            "Hi {{ member_name }}, see {% url 'reviews' %}",
            "'message' uses the url tag, which step templates cannot: it fails "
            "every run when the URL name does not exist. Write the page's full "
            "https URL instead.",
        ),
        (
            "Hi {{ member_name , tell us your story",
            "'message' has a {{ or {% without its closing }} or %}, so it would "
            "reach members as written. Close the tag.",
        ),
    ],
    ids=[
        "unknown-variable",
        "unclosed-tag",
        "unknown-filter",
        "include",
        "load",
        "url-tag",
        "unclosed-variable",
    ],
)
def test_check_ask_config_invalid_template_rejected(message, error):
    config = {"kind": "review", "message": message}

    assert check_ask_config(config) == [("message", error)]


def test_check_ask_config_missing_message_reported_once():
    assert check_ask_config({"kind": "review"}) == [
        (
            "message",
            'Missing "message" in the step config; set it to the text the '
            "member reads with the ask.",
        )
    ]


def test_admin_ask_message_stored_as_written(admin_client):
    member = factories.MemberFactory(display_name="Ada")

    response = admin_client.post(
        reverse("admin:advocacy_advocacyask_add"),
        {"member": member.pk, "kind": "review", "message": "Hi {{ member_name }}"},
    )

    assert response.status_code == 302
    assert AdvocacyAsk.objects.get(member=member).message == "Hi {{ member_name }}"


def test_ask_action_run_twice_asks_once():
    play = ask_play()
    member = factories.MemberFactory()
    grant_consent(member)
    enrolment = enrol(play, member)

    run_enrolment(enrolment_id=enrolment.pk)
    run_enrolment(enrolment_id=enrolment.pk)

    assert AdvocacyAsk.objects.filter(member=member).count() == 1


def test_create_advocacy_ask_same_step_run_returns_first():
    play = ask_play()
    member = factories.MemberFactory()
    grant_consent(member)
    enrolment = enrol(play, member)
    run_enrolment(enrolment_id=enrolment.pk)
    step_run = enrolment.step_runs.get()

    ask, created = create_advocacy_ask(
        member=member, kind="story", message="Again.", play=play, step_run=step_run
    )

    assert created is False
    assert ask.kind == "review"
    assert AdvocacyAsk.objects.count() == 1


def test_ask_action_fatigue_cap_across_plays():
    FatigueCap.objects.create(channel="advocacy_ask", max_touches=2, period_days=30)
    member = factories.MemberFactory()
    grant_consent(member)
    enrolments = [enrol(ask_play(), member) for _ in range(3)]

    for enrolment in enrolments:
        run_enrolment(enrolment_id=enrolment.pk)

    assert [outcomes(enrolment) for enrolment in enrolments] == [
        [(1, "done", "review ask sent")],
        [(1, "done", "review ask sent")],
        [(1, "skipped", "fatigue cap: 2 per 30 days on advocacy_ask")],
    ]
    assert AdvocacyAsk.objects.filter(member=member).count() == 2
    assert Touch.objects.filter(member=member, channel="advocacy_ask").count() == 2


def test_ask_action_fatigue_cap_counts_only_window():
    FatigueCap.objects.create(channel="advocacy_ask", max_touches=2, period_days=30)
    member = factories.MemberFactory()
    grant_consent(member)
    first, second, third = (enrol(ask_play(), member) for _ in range(3))
    long_ago = timezone.now() - timedelta(days=31)

    run_enrolment(enrolment_id=first.pk, now=long_ago)
    run_enrolment(enrolment_id=second.pk)
    run_enrolment(enrolment_id=third.pk)

    assert outcomes(third) == [(1, "done", "review ask sent")]


def test_respond_to_ask_accept_records_event():
    member = factories.MemberFactory()
    ask = make_ask(member)

    ask = respond_to_ask(ask=ask, member=member, accept=True)

    assert ask.status == AdvocacyAsk.Status.ACCEPTED
    assert ask.responded_at is not None
    assert event_kinds(member) == ["advocacy.ask_sent", "advocacy.ask_accepted"]


def test_respond_to_ask_other_member_not_found():
    ask = make_ask(factories.MemberFactory())

    with pytest.raises(AdvocacyAsk.DoesNotExist):
        respond_to_ask(ask=ask, member=factories.MemberFactory(), accept=True)

    ask.refresh_from_db()
    assert ask.status == AdvocacyAsk.Status.OPEN


def test_respond_to_ask_answered_ask_rejected():
    member = factories.MemberFactory()
    ask = respond_to_ask(ask=make_ask(member), member=member, accept=False)

    with pytest.raises(DomainError, match="This ask is declined"):
        respond_to_ask(ask=ask, member=member, accept=True)

    ask.refresh_from_db()
    assert ask.status == AdvocacyAsk.Status.DECLINED


def test_complete_ask_records_completed_event():
    member = factories.MemberFactory()
    staff = factories.StaffFactory()
    ask = respond_to_ask(ask=make_ask(member), member=member, accept=True)

    ask = complete_ask(ask=ask, staff_user=staff)

    assert ask.status == AdvocacyAsk.Status.COMPLETED
    assert ask.completed_by == staff
    assert ask.completed_at is not None
    assert event_kinds(member)[-1] == "advocacy.ask_completed"


def test_complete_ask_twice_records_once():
    member = factories.MemberFactory()
    staff = factories.StaffFactory()
    ask = make_ask(member)

    complete_ask(ask=ask, staff_user=staff)
    complete_ask(ask=ask, staff_user=staff)

    completed = ActivityEvent.objects.filter(kind="advocacy.ask_completed")
    assert completed.count() == 1


def test_complete_ask_declined_rejected():
    member = factories.MemberFactory()
    ask = respond_to_ask(ask=make_ask(member), member=member, accept=False)

    with pytest.raises(DomainError, match="only open or accepted asks"):
        complete_ask(ask=ask, staff_user=factories.StaffFactory())

    ask.refresh_from_db()
    assert ask.status == AdvocacyAsk.Status.DECLINED


def test_complete_ask_non_staff_rejected():
    member = factories.MemberFactory()
    ask = make_ask(member)

    with pytest.raises(DomainError, match="Only staff"):
        complete_ask(ask=ask, staff_user=member.user)

    ask.refresh_from_db()
    assert ask.status == AdvocacyAsk.Status.OPEN


def test_ask_list_shows_own_asks_open_first(member_client, member):
    answered = respond_to_ask(ask=make_ask(member), member=member, accept=True)
    open_ask = make_ask(member, due_on=date(2030, 1, 31))
    make_ask(factories.MemberFactory())

    response = member_client.get(ASKS_URL)

    assert response.status_code == 200
    assert [ask.pk for ask in response.context["asks"]] == [open_ask.pk, answered.pk]
    content = response.content.decode()
    assert reverse("advocacy:ask_accept", args=[open_ask.pk]) in content
    assert reverse("advocacy:ask_accept", args=[answered.pk]) not in content


def test_ask_accept_by_member(member_client, member):
    ask = make_ask(member)

    response = member_client.post(reverse("advocacy:ask_accept", args=[ask.pk]))

    assert response.status_code == 302
    assert response.url == ASKS_URL
    ask.refresh_from_db()
    assert ask.status == AdvocacyAsk.Status.ACCEPTED


def test_ask_decline_by_member(member_client, member):
    ask = make_ask(member)

    response = member_client.post(reverse("advocacy:ask_decline", args=[ask.pk]))

    assert response.status_code == 302
    ask.refresh_from_db()
    assert ask.status == AdvocacyAsk.Status.DECLINED
    assert event_kinds(member)[-1] == "advocacy.ask_declined"


@pytest.mark.parametrize("url_name", ["advocacy:ask_accept", "advocacy:ask_decline"])
def test_ask_response_by_other_member_not_found(member_client, url_name):
    owner = factories.MemberFactory()
    ask = make_ask(owner)

    response = member_client.post(reverse(url_name, args=[ask.pk]))

    assert response.status_code == 404
    ask.refresh_from_db()
    assert ask.status == AdvocacyAsk.Status.OPEN
    assert ask.responded_at is None
    assert event_kinds(owner) == ["advocacy.ask_sent"]


def test_ask_response_by_staff_without_member_not_found(staff_client):
    ask = make_ask(factories.MemberFactory())

    response = staff_client.post(reverse("advocacy:ask_accept", args=[ask.pk]))

    assert response.status_code == 404
    ask.refresh_from_db()
    assert ask.status == AdvocacyAsk.Status.OPEN


def test_ask_response_anonymous_redirected_to_sign_in(client):
    ask = make_ask(factories.MemberFactory())

    response = client.post(reverse("advocacy:ask_accept", args=[ask.pk]))

    assert response.status_code == 302
    assert response.url.startswith(reverse("account_login"))
    ask.refresh_from_db()
    assert ask.status == AdvocacyAsk.Status.OPEN


def test_ask_accept_get_not_allowed(member_client, member):
    ask = make_ask(member)

    response = member_client.get(reverse("advocacy:ask_accept", args=[ask.pk]))

    assert response.status_code == 405
    ask.refresh_from_db()
    assert ask.status == AdvocacyAsk.Status.OPEN


def test_ask_accept_answered_ask_shows_error(member_client, member):
    ask = respond_to_ask(ask=make_ask(member), member=member, accept=False)

    response = member_client.post(
        reverse("advocacy:ask_accept", args=[ask.pk]), follow=True
    )

    assert [str(message) for message in response.context["messages"]] == [
        "This ask is declined, so it can no longer be accepted or declined."
    ]
    ask.refresh_from_db()
    assert ask.status == AdvocacyAsk.Status.DECLINED


def test_ask_accept_requires_csrf_token(member):
    from django.test import Client

    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(member.user)
    ask = make_ask(member)

    response = csrf_client.post(reverse("advocacy:ask_accept", args=[ask.pk]))

    assert response.status_code == 403
    ask.refresh_from_db()
    assert ask.status == AdvocacyAsk.Status.OPEN


@pytest.mark.parametrize("size", [1, 6])
def test_ask_list_query_count_fixed(
    member_client, member, django_assert_num_queries, size
):
    for _ in range(size):
        make_ask(member)

    # Session, user, member, unread notification count, asks.
    with django_assert_num_queries(5):
        response = member_client.get(ASKS_URL)

    assert len(response.context["asks"]) == size


def test_admin_mark_completed_action(admin_client):
    member = factories.MemberFactory()
    open_ask = make_ask(member)
    declined = respond_to_ask(ask=make_ask(member), member=member, accept=False)

    response = admin_client.post(
        changelist_url(AdvocacyAsk),
        {
            "action": "mark_completed",
            ACTION_CHECKBOX_NAME: [open_ask.pk, declined.pk],
        },
        follow=True,
    )

    assert response.status_code == 200
    open_ask.refresh_from_db()
    declined.refresh_from_db()
    assert open_ask.status == AdvocacyAsk.Status.COMPLETED
    assert declined.status == AdvocacyAsk.Status.DECLINED
    assert ActivityEvent.objects.filter(kind="advocacy.ask_completed").count() == 1


def test_admin_ask_change_page_read_only(admin_client):
    ask = make_ask(factories.MemberFactory())

    response = admin_client.post(
        reverse("admin:advocacy_advocacyask_change", args=[ask.pk]),
        {"message": "Changed.", "kind": "story"},
    )

    assert response.status_code == 403
    ask.refresh_from_db()
    assert ask.message == "Would you review us?"
