"""The first sign-in trigger fires once, for a member with a confirmed email.

A self sign-up is signed in at once, before its address is confirmed and
before it joins the account of its email domain. These tests sign up, confirm
and sign in through the real allauth pages and evaluate plays with the sweep.
"""

import re

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.test import Client

from apps.lifecycle.models import ActivityEvent, Enrolment, Play
from apps.lifecycle.plays.triggers import (
    UNCONFIRMED_SIGN_IN_PROPERTY,
    evaluate_event_triggers,
    sweep_event_triggers,
)
from apps.membership.models import Member
from tests import factories
from tests.plays.factories import PlayFactory

pytestmark = pytest.mark.django_db

EMAIL = "hank@globex.test"
PASSWORD = "a-long-unusual-passphrase"
SIGN_IN = "membership.signed_in"


@pytest.fixture
def globex(db):
    return factories.AccountFactory(email_domains=["globex.test"], segment="mid_market")


def first_sign_in_play(**fields) -> Play:
    return PlayFactory(
        trigger=Play.Trigger.FIRST_SIGN_IN, trigger_event_kind="", **fields
    )


def sign_up(client: Client) -> None:
    response = client.post(
        "/accounts/signup/",
        {"email": EMAIL, "password1": PASSWORD, "password2": PASSWORD},
    )
    assert response.status_code == 302


def confirm(client: Client) -> None:
    match = re.search(
        r"http://testserver(/accounts/confirm-email/\S+/)", mail.outbox[-1].body
    )
    response = client.post(match.group(1))
    assert response.status_code == 302


def sign_in(client: Client) -> None:
    response = client.post("/accounts/login/", {"login": EMAIL, "password": PASSWORD})
    assert response.status_code == 302


def sign_out(client: Client) -> None:
    response = client.post("/accounts/logout/")
    assert response.status_code == 302


def enrolments(play: Play) -> list[tuple[str, str, int | None]]:
    return list(
        Enrolment.objects.filter(play=play)
        .order_by("pk")
        .values_list("subject_key", "occurrence_key", "account_id")
    )


def sign_in_properties() -> list[dict]:
    return list(
        ActivityEvent.objects.filter(kind=SIGN_IN)
        .order_by("pk")
        .values_list("properties", flat=True)
    )


def test_unconfirmed_sign_up_not_enrolled(client, globex):
    play = first_sign_in_play()

    sign_up(client)
    sign_out(client)
    sign_in(client)

    assert sweep_event_triggers() == 0
    assert enrolments(play) == []
    assert sign_in_properties() == [
        {UNCONFIRMED_SIGN_IN_PROPERTY: True},
        {UNCONFIRMED_SIGN_IN_PROPERTY: True},
    ]


def test_confirmation_while_signed_in_enrols(client, globex):
    play = first_sign_in_play(audience_segments=["mid_market"])
    sign_up(client)
    assert sweep_event_triggers() == 0

    confirm(client)

    member = Member.objects.get(user__email=EMAIL)
    assert member.account == globex
    assert sweep_event_triggers() == 1
    assert enrolments(play) == [(f"member:{member.pk}", "first", globex.pk)]
    assert sign_in_properties() == [
        {UNCONFIRMED_SIGN_IN_PROPERTY: True},
        {"on_email_confirmation": True},
    ]


def test_later_sign_ins_enrol_no_more(client, globex):
    play = first_sign_in_play(audience_segments=["mid_market"])
    sign_up(client)
    confirm(client)
    assert sweep_event_triggers() == 1

    sign_out(client)
    sign_in(client)
    sign_out(client)
    sign_in(client)

    assert sweep_event_triggers() == 0
    assert len(enrolments(play)) == 1
    event_ids = list(ActivityEvent.objects.values_list("pk", flat=True))
    assert evaluate_event_triggers(event_ids=event_ids) == 0


def test_confirmation_signed_out_enrols_at_next_sign_in(client, globex):
    play = first_sign_in_play(audience_segments=["mid_market"])
    sign_up(client)
    other_browser = Client()

    confirm(other_browser)

    assert sweep_event_triggers() == 0
    assert enrolments(play) == []
    sign_in(other_browser)
    member = Member.objects.get(user__email=EMAIL)
    assert sweep_event_triggers() == 1
    assert enrolments(play) == [(f"member:{member.pk}", "first", globex.pk)]


def test_mandatory_confirmation_enrols_at_sign_in(client, globex, settings):
    settings.ACCOUNT_EMAIL_VERIFICATION = "mandatory"
    play = first_sign_in_play(audience_segments=["mid_market"])
    sign_up(client)
    assert not Member.objects.filter(user__email=EMAIL).exists()

    confirm(client)
    sign_in(client)

    member = Member.objects.get(user__email=EMAIL)
    assert sweep_event_triggers() == 1
    assert enrolments(play) == [(f"member:{member.pk}", "first", globex.pk)]
    assert sign_in_properties() == [{}]


def test_confirmation_by_staff_records_no_sign_in(client, admin_client, globex):
    sign_up(client)
    sign_out(client)
    address = EmailAddress.objects.get(email=EMAIL)

    response = admin_client.post(
        "/admin/account/emailaddress/",
        {"action": "make_verified", "_selected_action": [address.pk]},
    )

    assert response.status_code == 302
    address.refresh_from_db()
    assert address.verified
    assert sign_in_properties() == [{UNCONFIRMED_SIGN_IN_PROPERTY: True}]


def test_unmarked_sign_in_of_unconfirmed_member_skipped():
    """A sign-in recorded without the property still waits for confirmation."""
    play = first_sign_in_play()
    member = factories.MemberFactory(account=None)
    EmailAddress.objects.create(
        user=member.user, email=member.user.email, verified=False, primary=True
    )
    event = factories.ActivityEventFactory(member=member, kind=SIGN_IN)

    assert evaluate_event_triggers(event_ids=[event.pk]) == 0
    assert enrolments(play) == []


def test_member_created_by_staff_enrolled():
    """A member without an unconfirmed address, as staff create them, counts."""
    play = first_sign_in_play()
    member = factories.MemberFactory()
    event = factories.ActivityEventFactory(member=member, kind=SIGN_IN)

    assert evaluate_event_triggers(event_ids=[event.pk]) == 1
    assert enrolments(play) == [(f"member:{member.pk}", "first", member.account_id)]


def test_event_play_skips_unconfirmed_sign_up(client, globex):
    """Plays of any trigger wait until a self-sign-up confirms its email."""
    play = PlayFactory(trigger=Play.Trigger.EVENT, trigger_event_kind=SIGN_IN)

    sign_up(client)

    assert sweep_event_triggers() == 0
    assert enrolments(play) == []

    # Confirming while signed in records a sign-in as a confirmed member.
    confirm(client)

    assert sweep_event_triggers() == 1
    member = Member.objects.get(user__email=EMAIL)
    assert [key for key, _, _ in enrolments(play)] == [f"member:{member.pk}"]


def test_event_play_enrols_confirmation_once(client, globex):
    """The sign-in marked unconfirmed triggers nothing once the member confirms."""
    play = PlayFactory(trigger=Play.Trigger.EVENT, trigger_event_kind=SIGN_IN)

    sign_up(client)
    confirm(client)

    member = Member.objects.get(user__email=EMAIL)
    assert sweep_event_triggers() == 1
    assert enrolments(play) == [
        (
            f"member:{member.pk}",
            str(ActivityEvent.objects.order_by("pk").last().pk),
            globex.pk,
        )
    ]


@pytest.mark.parametrize(
    "trigger", [Play.Trigger.EVENT, Play.Trigger.FEATURE_FIRST_USE]
)
def test_marked_sign_in_skipped_by_all(trigger):
    play = PlayFactory(trigger=trigger, trigger_event_kind=SIGN_IN)
    member = factories.MemberFactory()
    event = factories.ActivityEventFactory(
        member=member, kind=SIGN_IN, properties={UNCONFIRMED_SIGN_IN_PROPERTY: True}
    )

    assert evaluate_event_triggers(event_ids=[event.pk]) == 0
    assert enrolments(play) == []


def test_first_use_ignores_marked_sign_in():
    play = PlayFactory(
        trigger=Play.Trigger.FEATURE_FIRST_USE, trigger_event_kind=SIGN_IN
    )
    member = factories.MemberFactory()
    factories.ActivityEventFactory(
        member=member, kind=SIGN_IN, properties={UNCONFIRMED_SIGN_IN_PROPERTY: True}
    )
    event = factories.ActivityEventFactory(member=member, kind=SIGN_IN)

    assert evaluate_event_triggers(event_ids=[event.pk]) == 1
    assert enrolments(play) == [(f"member:{member.pk}", "first", member.account_id)]
