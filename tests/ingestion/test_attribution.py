"""Visit attribution kept through redirects, sign-in, sign-up and confirmation."""

import re
import time

import pytest
from django.core import mail
from django.urls import reverse

from apps.community.models import Space
from apps.lifecycle.attribution import (
    PARAMETERS,
    SESSION_KEY,
    VISIT_TIMEOUT_SECONDS,
    current_attribution,
)
from apps.lifecycle.models import ActivityEvent
from apps.lifecycle.services import ATTRIBUTION_FIELDS, record_activity
from tests import factories
from tests.factories import PASSWORD

QUESTION = {
    "title": "How do I export a report?",
    "body": "I cannot find the button.",
    "kind": "question",
}
NEW_PASSWORD = "a-long-unusual-passphrase"


@pytest.fixture
def acme(db):
    return factories.AccountFactory(email_domains=["acme.test"])


@pytest.fixture
def alice(acme):
    return factories.MemberFactory(account=acme, user__email="alice@acme.test")


@pytest.fixture
def space(db):
    return factories.SpaceFactory(slug="questions", visibility=Space.Visibility.MEMBERS)


def post_question(client, space):
    url = reverse("community:new_topic", kwargs={"slug": space.slug})
    response = client.post(url, QUESTION)
    assert response.status_code == 302
    return ActivityEvent.objects.get(kind="community.question_posted")


def attribution_of(event: ActivityEvent) -> dict[str, str]:
    values = {name: getattr(event, name) for name in ATTRIBUTION_FIELDS}
    return {name: value for name, value in values.items() if value}


def sign_up(client, email: str):
    response = client.post(
        "/accounts/signup/",
        {"email": email, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert response.status_code == 302
    return response


def confirmation_path() -> str:
    match = re.search(
        r"http://testserver(/accounts/confirm-email/\S+/)", mail.outbox[-1].body
    )
    return match.group(1)


def move_last_seen_back(client, seconds: float) -> None:
    session = client.session
    stored = session[SESSION_KEY]
    session[SESSION_KEY] = {**stored, "last_seen": stored["last_seen"] - seconds}
    session.save()


def test_parameters_match_event_fields():
    assert PARAMETERS == ATTRIBUTION_FIELDS


def test_sign_in_path_keeps_attribution(client, alice, space):
    response = client.get("/?utm_source=newsletter&play_id=welcome")
    assert response.status_code == 302
    login_page = client.get(response["Location"])
    assert login_page.status_code == 200
    anonymous_session_key = client.session.session_key

    response = client.post(
        "/accounts/login/", {"login": "alice@acme.test", "password": PASSWORD}
    )

    assert response.status_code == 302
    assert client.session.session_key != anonymous_session_key
    sign_in = ActivityEvent.objects.get(kind="membership.signed_in")
    assert attribution_of(sign_in) == {"utm_source": "newsletter", "play_id": "welcome"}
    question = post_question(client, space)
    assert question.member == alice
    assert attribution_of(question) == {
        "utm_source": "newsletter",
        "play_id": "welcome",
    }


def test_sign_up_path_keeps_attribution(client, acme, space):
    client.get("/community/?utm_campaign=spring&campaign_id=c-7")

    sign_up(client, "sam@acme.test")

    question = post_question(client, space)
    assert question.member.user.email == "sam@acme.test"
    assert attribution_of(question) == {"utm_campaign": "spring", "campaign_id": "c-7"}


def test_email_confirmation_link_keeps_attribution(client, acme, space):
    client.get("/community/?utm_source=newsletter&play_id=welcome")
    sign_up(client, "sam@acme.test")
    path = confirmation_path()

    assert client.get(path).status_code == 200
    assert client.post(path).status_code == 302

    question = post_question(client, space)
    assert attribution_of(question) == {
        "utm_source": "newsletter",
        "play_id": "welcome",
    }


def test_mandatory_confirmation_keeps_attribution(client, acme, space, settings):
    settings.ACCOUNT_EMAIL_VERIFICATION = "mandatory"
    client.get("/community/?utm_medium=email&play_id=welcome")
    response = sign_up(client, "sam@acme.test")
    assert response["Location"] == "/accounts/confirm-email/"

    client.post(confirmation_path())
    response = client.post(
        "/accounts/login/", {"login": "sam@acme.test", "password": NEW_PASSWORD}
    )

    assert response.status_code == 302
    question = post_question(client, space)
    assert attribution_of(question) == {"utm_medium": "email", "play_id": "welcome"}


def test_first_touch_of_visit_wins(client, alice, space):
    client.get("/community/?utm_source=newsletter")
    client.get("/community/?utm_source=webinar&play_id=welcome")
    client.force_login(alice.user)

    question = post_question(client, space)

    assert attribution_of(question) == {"utm_source": "newsletter"}


def test_events_of_other_members_not_attributed(client, alice, acme, space):
    question = factories.TopicFactory(space=space, author=alice, kind="question")
    reply = factories.ReplyFactory(
        topic=question, author=factories.MemberFactory(account=acme)
    )
    client.force_login(alice.user)
    client.get("/community/?utm_source=newsletter&play_id=welcome")

    response = client.post(
        reverse("community:solution_accept", kwargs={"pk": question.pk}),
        {"reply": reply.pk},
    )

    assert response.status_code == 302
    accepted = ActivityEvent.objects.get(kind="community.solution_accepted")
    assert accepted.member == reply.author
    assert attribution_of(accepted) == {}


def test_visit_expires_after_inactivity(client, alice, space):
    client.force_login(alice.user)
    client.get("/community/?utm_source=newsletter")
    move_last_seen_back(client, VISIT_TIMEOUT_SECONDS + 1)

    question = post_question(client, space)

    assert attribution_of(question) == {}
    assert SESSION_KEY not in client.session


def test_new_visit_replaces_expired_attribution(client, alice, space):
    client.force_login(alice.user)
    client.get("/community/?utm_source=newsletter")
    move_last_seen_back(client, VISIT_TIMEOUT_SECONDS + 1)

    client.get("/community/?utm_source=webinar&play_id=welcome")

    question = post_question(client, space)
    assert attribution_of(question) == {"utm_source": "webinar", "play_id": "welcome"}


def test_activity_keeps_visit_alive(client, alice, space):
    client.force_login(alice.user)
    client.get("/community/?utm_source=newsletter")
    move_last_seen_back(client, VISIT_TIMEOUT_SECONDS - 60)

    client.get("/community/")
    move_last_seen_back(client, VISIT_TIMEOUT_SECONDS - 60)

    question = post_question(client, space)
    assert attribution_of(question) == {"utm_source": "newsletter"}
    assert client.session[SESSION_KEY]["last_seen"] > time.time() - 60 * 60


def test_invalid_values_dropped(client, alice, space):
    client.force_login(alice.user)
    long_value = "x" * 101
    client.get(
        "/community/",
        {
            "utm_source": long_value,
            "utm_medium": "e\nmail",
            "utm_term": "tab\there",
            "utm_content": "   ",
            "play_id": "welcome",
            "campaign_id": "c" * 100,
        },
    )

    question = post_question(client, space)

    assert attribution_of(question) == {"play_id": "welcome", "campaign_id": "c" * 100}


def test_only_invalid_values_store_nothing(client, db):
    client.get("/community/", {"utm_source": "\x00"})

    assert SESSION_KEY not in client.session


def test_post_parameters_not_captured(client, alice, space):
    client.force_login(alice.user)
    url = reverse("community:new_topic", kwargs={"slug": space.slug})

    client.post(f"{url}?utm_source=form", QUESTION)

    question = ActivityEvent.objects.get(kind="community.question_posted")
    assert attribution_of(question) == {}


def test_plain_request_creates_no_session(client, db):
    client.get("/community/")

    assert "sessionid" not in client.cookies


def test_sign_out_ends_attribution(client, alice, space):
    client.force_login(alice.user)
    client.get("/community/?utm_source=newsletter")

    client.post("/accounts/logout/")
    client.force_login(alice.user)

    question = post_question(client, space)
    assert attribution_of(question) == {}


def test_current_attribution_empty_outside_request(client, alice):
    client.get("/community/?utm_source=newsletter")

    event = record_activity(member=alice, kind="membership.signed_in")

    assert current_attribution() == {}
    assert attribution_of(event) == {}


def test_record_activity_explicit_attribution_wins(client, alice, space):
    # The Segment endpoint and the API pass attribution explicitly, so an
    # explicit empty attribution must stay empty inside a request too.
    from apps.lifecycle import attribution

    token = attribution._current.set({"utm_source": "newsletter"})
    try:
        explicit = record_activity(
            member=alice, kind="membership.signed_in", attribution={}
        )
        implicit = record_activity(member=alice, kind="membership.signed_in")
    finally:
        attribution._current.reset(token)

    assert attribution_of(explicit) == {}
    assert attribution_of(implicit) == {"utm_source": "newsletter"}
