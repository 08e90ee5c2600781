import json

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth import authenticate
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from apps.advocacy.models import PointsEntry
from apps.advocacy.services import award_points
from apps.community.models import MemberStats, Space, Topic
from apps.lifecycle.models import ActivityEvent
from apps.lifecycle.selectors import EXPORT_EVENT_LIMIT
from apps.membership.models import (
    AccountAffiliation,
    AuditEntry,
    ConsentGrant,
    ConsentPurpose,
    Member,
    validate_time_zone,
)
from apps.membership.services.profiles import delete_member_account
from apps.membership.services.roles import sync_role_groups
from rm6.errors import DomainError
from tests import factories

PROFILE_EDIT_URL = reverse("membership:profile_edit")
DATA_EXPORT_URL = reverse("membership:data_export")
DELETE_URL = reverse("membership:delete_account")


def make_member(**fields) -> Member:
    member = factories.MemberFactory(**fields)
    sync_role_groups(member)
    return member


def profile_url(member: Member) -> str:
    return reverse("membership:profile", kwargs={"pk": member.pk})


def posts_url(member: Member) -> str:
    return reverse("community:member_posts", kwargs={"pk": member.pk})


@pytest.fixture
def account(db):
    return factories.AccountFactory(name="Acme Rockets")


@pytest.fixture
def member(account):
    return make_member(
        account=account,
        display_name="Ada Lovelace",
        headline="Head of analytics",
        bio="Writes about engines.",
    )


@pytest.fixture
def member_client(client, member):
    client.force_login(member.user)
    return client


@pytest.fixture
def viewer_client(client, account):
    """A client signed in as another member, who reads `member`'s profile."""
    client.force_login(make_member(account=factories.AccountFactory()).user)
    return client


def profile_form_data(**changes) -> dict:
    data = {
        "display_name": "Ada L.",
        "headline": "Engine whisperer",
        "bio": "Numbers and looms.",
        "time_zone": "Europe/London",
        "locale": "en-gb",
        "email_notifications": "instant",
        "in_app_notifications": "on",
        "show_headline": "on",
        "show_bio": "on",
        "show_activity": "on",
    }
    data.update(changes)
    return {name: value for name, value in data.items() if value is not None}


# Profile edit


def test_profile_edit_shows_current_values(member_client, member):
    response = member_client.get(PROFILE_EDIT_URL)

    assert response.status_code == 200
    assert response.context["form"]["headline"].value() == "Head of analytics"


def test_profile_edit_saves_valid_form(member_client, member):
    response = member_client.post(PROFILE_EDIT_URL, profile_form_data())

    member.refresh_from_db()
    assert response.status_code == 302
    assert response.url == PROFILE_EDIT_URL
    assert member.display_name == "Ada L."
    assert member.headline == "Engine whisperer"
    assert member.bio == "Numbers and looms."
    assert member.time_zone == "Europe/London"
    assert member.locale == "en-gb"
    assert member.email_notifications == Member.EmailNotifications.INSTANT
    assert member.in_app_notifications is True
    assert member.show_headline is True
    assert member.show_bio is True
    assert member.show_account is False
    assert member.show_activity is True


def test_profile_edit_unticked_switch_turns_off(member_client, member):
    member_client.post(PROFILE_EDIT_URL, profile_form_data(show_bio=None))

    member.refresh_from_db()
    assert member.show_bio is False


def test_profile_edit_invalid_time_zone_message(member_client, member):
    response = member_client.post(
        PROFILE_EDIT_URL, profile_form_data(time_zone="Mars/Olympus_Mons")
    )

    assert response.status_code == 200
    assert response.context["form"].errors["time_zone"] == [
        "Invalid time zone 'Mars/Olympus_Mons': use an IANA time zone name "
        "such as Europe/Paris or America/New_York."
    ]


@pytest.mark.parametrize("name", ["localtime", "Factory"])
def test_profile_edit_host_time_zone_rejected(member_client, member, name):
    response = member_client.post(PROFILE_EDIT_URL, profile_form_data(time_zone=name))

    assert response.context["form"].errors["time_zone"] == [
        f"Invalid time zone {name!r}: use an IANA time zone name "
        "such as Europe/Paris or America/New_York."
    ]
    member.refresh_from_db()
    assert member.time_zone == "UTC"


@pytest.mark.parametrize("name", ["localtime", "Factory"])
def test_model_time_zone_validator_rejects(name):
    with pytest.raises(ValidationError):
        validate_time_zone(name)


def test_profile_edit_invalid_time_zone_changes_nothing(member_client, member):
    member_client.post(
        PROFILE_EDIT_URL, profile_form_data(time_zone="Mars/Olympus_Mons")
    )

    member.refresh_from_db()
    assert member.time_zone == "UTC"
    assert member.display_name == "Ada Lovelace"


def test_profile_edit_reserved_display_name_rejected(member_client, member):
    response = member_client.post(
        PROFILE_EDIT_URL, profile_form_data(display_name="deleted MEMBER")
    )

    assert response.context["form"].errors["display_name"] == [
        "The display name 'deleted MEMBER' is reserved for members who left; "
        "choose another name."
    ]


def test_profile_edit_unknown_locale_rejected(member_client, member):
    response = member_client.post(PROFILE_EDIT_URL, profile_form_data(locale="xx"))

    assert "locale" in response.context["form"].errors
    member.refresh_from_db()
    assert member.locale == "en"


def test_profile_edit_anonymous_redirected(client, db):
    response = client.get(PROFILE_EDIT_URL)

    assert response.status_code == 302
    assert response.url == f"{reverse('account_login')}?next={PROFILE_EDIT_URL}"


def test_profile_edit_staff_without_member_not_found(staff_client):
    response = staff_client.get(PROFILE_EDIT_URL)

    assert response.status_code == 404
    assert b"No member profile" in response.content


def test_nav_member_sees_profile_link(member_client):
    html = member_client.get(reverse("community:spaces")).content.decode()

    assert f'<a href="{PROFILE_EDIT_URL}">Profile</a>' in html


def test_nav_staff_without_member_sees_no_profile_link(staff_client):
    html = staff_client.get(reverse("community:spaces")).content.decode()

    assert PROFILE_EDIT_URL not in html


# Public profile


def test_public_profile_shows_name(viewer_client, member):
    response = viewer_client.get(profile_url(member))

    assert response.status_code == 200
    assert "Ada Lovelace" in response.content.decode()


@pytest.mark.parametrize(
    ("switch", "text"),
    [
        ("show_headline", "Head of analytics"),
        ("show_bio", "Writes about engines."),
        ("show_account", "Acme Rockets"),
        ("show_activity", "See posts by Ada Lovelace"),
    ],
)
def test_public_profile_switch_on_shows_field(viewer_client, member, switch, text):
    Member.objects.filter(pk=member.pk).update(**{switch: True})

    html = viewer_client.get(profile_url(member)).content.decode()

    assert text in html


@pytest.mark.parametrize(
    ("switch", "text"),
    [
        ("show_headline", "Head of analytics"),
        ("show_bio", "Writes about engines."),
        ("show_account", "Acme Rockets"),
        ("show_activity", "See posts by Ada Lovelace"),
    ],
)
def test_public_profile_switch_off_hides_field(viewer_client, member, switch, text):
    Member.objects.filter(pk=member.pk).update(**{switch: False})

    html = viewer_client.get(profile_url(member)).content.decode()

    assert text not in html


def test_public_profile_shows_community_counters(viewer_client, member):
    Member.objects.filter(pk=member.pk).update(show_activity=True)
    MemberStats.objects.create(
        member=member, topic_count=3, reply_count=7, solution_count=2, trust_level=2
    )

    html = viewer_client.get(profile_url(member)).content.decode()

    assert "In the community" in html
    assert "Trust level: Member" in html
    assert "<dt>Replies</dt><dd>7</dd>" in html
    assert "<dt>Accepted solutions</dt><dd>2</dd>" in html


def test_public_profile_counters_follow_activity_switch(viewer_client, member):
    Member.objects.filter(pk=member.pk).update(show_activity=False)
    MemberStats.objects.create(member=member, reply_count=7)

    html = viewer_client.get(profile_url(member)).content.decode()

    assert "In the community" not in html


def test_public_profile_no_counters_without_posts(viewer_client, member):
    Member.objects.filter(pk=member.pk).update(show_activity=True)

    html = viewer_client.get(profile_url(member)).content.decode()

    assert "In the community" not in html


def test_public_profile_hides_email(viewer_client, member):
    html = viewer_client.get(profile_url(member)).content.decode()

    assert member.user.email not in html


def test_public_profile_deactivated_member_shows_status_only(viewer_client, member):
    Member.objects.filter(pk=member.pk).update(deactivated_at=timezone.now())

    html = viewer_client.get(profile_url(member)).content.decode()

    assert "Deactivated member" in html
    assert "Ada Lovelace" not in html
    assert "Head of analytics" not in html


def test_public_profile_merged_member_redirects(viewer_client, member, account):
    duplicate = make_member(account=account)
    Member.objects.filter(pk=duplicate.pk).update(
        merged_into=member, deactivated_at=timezone.now()
    )

    response = viewer_client.get(profile_url(duplicate))

    assert response.status_code == 302
    assert response.url == profile_url(member)


def test_public_profile_unknown_member_not_found(viewer_client, db):
    response = viewer_client.get(reverse("membership:profile", kwargs={"pk": 999999}))

    assert response.status_code == 404


# Member posts page


def test_member_posts_lists_visible_topics(viewer_client, member):
    factories.TopicFactory(author=member, title="Visible question")

    html = viewer_client.get(posts_url(member)).content.decode()

    assert "Visible question" in html


def test_member_posts_skips_spaces_viewer_cannot_read(viewer_client, member, account):
    private = factories.SpaceFactory(
        visibility=Space.Visibility.ACCOUNT, account=account
    )
    factories.TopicFactory(author=member, space=private, title="Private question")

    html = viewer_client.get(posts_url(member)).content.decode()

    assert "Private question" not in html


def test_member_posts_hidden_when_switch_off(viewer_client, member):
    Member.objects.filter(pk=member.pk).update(show_activity=False)

    response = viewer_client.get(posts_url(member))

    assert response.status_code == 404


def test_member_posts_own_list_shown_when_switch_off(member_client, member):
    Member.objects.filter(pk=member.pk).update(show_activity=False)
    factories.TopicFactory(author=member, title="My question")

    html = member_client.get(posts_url(member)).content.decode()

    assert "My question" in html


def test_member_posts_anonymous_redirected(client, member):
    response = client.get(posts_url(member))

    assert response.status_code == 302


# Data export


@pytest.fixture
def newsletter(db):
    return ConsentPurpose.objects.create(
        key="newsletter", name="Newsletter", description="Monthly product news."
    )


def grant(member: Member, purpose: ConsentPurpose) -> ConsentGrant:
    return ConsentGrant.objects.create(
        member=member,
        purpose=purpose,
        source=ConsentGrant.Source.PRIVACY_PAGE,
        evidence="Ticked the newsletter box.",
        granted_at=timezone.now(),
    )


def get_export(client) -> dict:
    response = client.get(DATA_EXPORT_URL)
    assert response.status_code == 200
    return json.loads(response.content)


def test_data_export_is_json_attachment(member_client, member):
    response = member_client.get(DATA_EXPORT_URL)

    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"] == (
        f'attachment; filename="rm6-member-{member.pk}-data.json"'
    )
    assert "no-store" in response["Cache-Control"]


def test_data_export_has_every_section(member_client):
    export = get_export(member_client)

    assert set(export) == {
        "exported_at",
        "profile",
        "account",
        "consents",
        "affiliations",
        "community",
        "activity_events",
        "segment_identities",
        "points",
        "courses",
        "onboarding",
        "advocacy",
        "support_cases",
    }


def test_data_export_profile_and_account(member_client, member):
    export = get_export(member_client)

    assert export["profile"]["email"] == member.user.email
    assert export["profile"]["display_name"] == "Ada Lovelace"
    assert export["account"] == {"name": "Acme Rockets"}


def test_data_export_consents_and_affiliations(member_client, member, newsletter):
    grant(member, newsletter)
    partner = factories.AccountFactory(name="Partner Co")
    AccountAffiliation.objects.create(
        member=member, account=partner, relationship="partner"
    )

    export = get_export(member_client)

    assert [c["purpose"] for c in export["consents"]] == ["newsletter"]
    assert export["consents"][0]["evidence"] == "Ticked the newsletter box."
    assert [a["account"] for a in export["affiliations"]] == ["Partner Co"]


def test_data_export_posts_events_and_points(member_client, member):
    topic = factories.TopicFactory(author=member, title="My question")
    factories.ReplyFactory(author=member, topic=topic, body="My own answer.")
    factories.ActivityEventFactory(member=member, kind="product.report_exported")
    award_points(member=member, points=5, reason="welcome")

    export = get_export(member_client)

    assert [t["title"] for t in export["community"]["topics"]] == ["My question"]
    assert [r["body"] for r in export["community"]["replies"]] == ["My own answer."]
    kinds = [e["kind"] for e in export["activity_events"]["events"]]
    assert "product.report_exported" in kinds
    assert export["activity_events"]["limit"] == EXPORT_EVENT_LIMIT
    assert export["points"]["balance"] == 5
    assert [e["reason"] for e in export["points"]["entries"]] == ["welcome"]


def test_data_export_states_event_cap(member_client):
    export = get_export(member_client)

    assert export["activity_events"]["note"].startswith(
        "The 5,000 most recent events at most;"
    )


def test_data_export_contains_only_own_data(member_client, member, newsletter):
    other = make_member(account=member.account, display_name="Grace Hopper")
    factories.TopicFactory(author=other, title="Other's question")
    factories.ReplyFactory(author=other, body="Other's reply.")
    factories.ActivityEventFactory(member=other, kind="product.other_thing")
    award_points(member=other, points=7, reason="other_award")
    grant(other, newsletter)

    raw = member_client.get(DATA_EXPORT_URL).content.decode()

    assert other.user.email not in raw
    assert "Grace Hopper" not in raw
    assert "Other's question" not in raw
    assert "Other's reply." not in raw
    assert "product.other_thing" not in raw
    assert "other_award" not in raw
    assert json.loads(raw)["consents"] == []


def test_data_export_anonymous_redirected(client, db):
    response = client.get(DATA_EXPORT_URL)

    assert response.status_code == 302
    assert response.url == f"{reverse('account_login')}?next={DATA_EXPORT_URL}"


# Account deletion


@pytest.fixture
def posted(member):
    """A topic and a reply by the member, with counters as the services keep them."""
    space = factories.SpaceFactory(topic_count=1)
    topic = factories.TopicFactory(
        space=space, author=member, title="Engine question", reply_count=1
    )
    factories.ReplyFactory(topic=topic, author=member)
    return topic


def delete_via_page(client, member):
    return client.post(DELETE_URL, {"email": member.user.email.upper()})


def test_delete_account_page_asks_for_email(member_client, member):
    response = member_client.get(DELETE_URL)

    assert response.status_code == 200
    assert f"Type <strong>{member.user.email}</strong> to confirm." in (
        response.content.decode()
    )


def test_delete_account_wrong_email_changes_nothing(member_client, member):
    response = member_client.post(DELETE_URL, {"email": "someone@else.test"})

    member.refresh_from_db()
    assert response.status_code == 200
    assert response.context["form"].errors["email"] == [
        "That is not the email address of your account; type "
        f"{member.user.email} to confirm."
    ]
    assert member.anonymised_at is None
    assert member.user.is_active is True


def test_delete_account_signs_out_and_redirects(member_client, member):
    response = delete_via_page(member_client, member)

    assert response.status_code == 302
    assert response.url == reverse("account_login")
    assert member_client.get(PROFILE_EDIT_URL).status_code == 302


def test_delete_account_anonymises_user(member_client, member):
    user_id = member.user.pk

    delete_via_page(member_client, member)

    member.refresh_from_db()
    user = member.user
    assert user.email == f"deleted-{user_id}@invalid"
    assert user.username == f"deleted-{user_id}"
    assert user.first_name == ""
    assert user.last_name == ""
    assert user.is_active is False
    assert user.has_usable_password() is False


def test_delete_account_anonymises_member(member_client, member):
    Member.objects.filter(pk=member.pk).update(external_id="crm-42", show_account=True)

    delete_via_page(member_client, member)

    member.refresh_from_db()
    assert member.display_name == "Deleted member"
    assert member.name == "Deleted member"
    assert member.headline == ""
    assert member.bio == ""
    assert member.external_id == ""
    assert member.show_headline is False
    assert member.show_bio is False
    assert member.show_account is False
    assert member.show_activity is False
    assert member.anonymised_at is not None
    assert member.deactivated_at is not None


def test_delete_account_cannot_sign_in_afterwards(client, member):
    email = member.user.email
    client.force_login(member.user)
    delete_via_page(client, member)

    response = client.post(
        reverse("account_login"), {"login": email, "password": factories.PASSWORD}
    )

    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
    assert authenticate(username=email, password=factories.PASSWORD) is None


def test_delete_account_ends_other_sessions(client, member):
    other_device = type(client)()
    other_device.force_login(member.user)
    client.force_login(member.user)

    delete_via_page(client, member)

    response = other_device.get(PROFILE_EDIT_URL)
    assert response.status_code == 302
    assert response.url.startswith(reverse("account_login"))


def test_delete_account_removes_email_addresses(member_client, member):
    EmailAddress.objects.create(
        user=member.user, email=member.user.email, verified=True, primary=True
    )

    delete_via_page(member_client, member)

    assert not EmailAddress.objects.filter(user=member.user).exists()


def test_delete_account_keeps_topics_under_deleted_name(member_client, member, posted):
    delete_via_page(member_client, member)

    viewer = make_member(account=factories.AccountFactory())
    member_client.force_login(viewer.user)
    html = member_client.get(posted.space.get_absolute_url()).content.decode()
    assert Topic.objects.filter(pk=posted.pk, author=member).exists()
    assert "Engine question" in html
    assert "Deleted member" in html
    assert "Ada Lovelace" not in html


def test_delete_account_keeps_counts(member_client, member, posted):
    delete_via_page(member_client, member)

    posted.refresh_from_db()
    posted.space.refresh_from_db()
    assert posted.space.topic_count == 1
    assert posted.reply_count == 1
    assert posted.replies.count() == 1


def test_delete_account_revokes_consents(member_client, member, newsletter):
    grant(member, newsletter)

    delete_via_page(member_client, member)

    consent = ConsentGrant.objects.get(member=member)
    assert consent.revoked_at is not None
    assert consent.revoked_source == ConsentGrant.Source.PRIVACY_PAGE


def test_delete_account_keeps_points_and_events(member_client, member):
    award_points(member=member, points=5, reason="welcome")
    events_before = ActivityEvent.objects.filter(member=member).count()

    delete_via_page(member_client, member)

    assert PointsEntry.objects.filter(member=member).count() == 1
    assert ActivityEvent.objects.filter(member=member).count() == events_before


def test_delete_account_removes_role_groups(member_client, member):
    delete_via_page(member_client, member)

    assert member.user.groups.count() == 0


def test_delete_account_writes_audit_entry(member_client, member):
    delete_via_page(member_client, member)

    entry = AuditEntry.objects.get(action="member.anonymised")
    assert entry.member == member
    assert entry.details == {"requested_by": "member", "consents_revoked": 0}


def test_delete_account_public_profile_shows_deleted(client, member):
    client.force_login(member.user)
    delete_via_page(client, member)
    client.force_login(make_member(account=factories.AccountFactory()).user)

    html = client.get(profile_url(member)).content.decode()

    assert "Deleted member" in html
    assert "Head of analytics" not in html


def test_delete_member_account_by_other_member_rejected(member):
    other = make_member(account=member.account)

    with pytest.raises(DomainError) as raised:
        delete_member_account(member=member, actor=other.user)

    member.refresh_from_db()
    assert raised.value.code == "forbidden"
    assert member.anonymised_at is None


def test_delete_member_account_by_staff_records_staff(member):
    staff = factories.StaffFactory()

    delete_member_account(member=member, actor=staff)

    entry = AuditEntry.objects.get(action="member.anonymised")
    assert entry.actor == staff
    assert entry.details["requested_by"] == "staff"


def test_delete_member_account_twice_changes_nothing(member):
    first = delete_member_account(member=member, actor=None)

    second = delete_member_account(member=member, actor=None)

    assert second.anonymised_at == first.anonymised_at
    assert AuditEntry.objects.filter(action="member.anonymised").count() == 1
