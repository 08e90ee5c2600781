from datetime import timedelta

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from apps.advocacy.models import PointsEntry
from apps.advocacy.services import award_points
from apps.community.models import Space
from apps.lifecycle.models import ActivityEvent, HealthScore
from apps.membership.models import (
    Account,
    AuditEntry,
    ConsentGrant,
    ConsentPurpose,
    Member,
)
from apps.membership.services import sync_role_groups
from apps.portal.models import OnboardingStep
from tests import factories
from tests.admin.rows import change_url, changelist_url

MEMBERS_URL = changelist_url(Member)
POINTS_URL = changelist_url(PointsEntry)
STEPS_URL = changelist_url(OnboardingStep)


def listed(response) -> list:
    return list(response.context["cl"].result_list)


def test_awaiting_account_filter_lists_queue(admin_client):
    factories.MemberFactory()
    waiting = factories.MemberFactory(account=None)

    response = admin_client.get(MEMBERS_URL, {"awaiting_account": "yes"})

    assert response.status_code == 200
    assert listed(response) == [waiting]


def test_awaiting_account_filter_no_lists_assigned(admin_client):
    assigned = factories.MemberFactory()
    factories.MemberFactory(account=None)

    response = admin_client.get(MEMBERS_URL, {"awaiting_account": "no"})

    assert listed(response) == [assigned]


def test_member_assign_action_sets_account(admin_client):
    account = factories.AccountFactory()
    first = factories.MemberFactory(account=None)
    second = factories.MemberFactory(account=None)

    response = admin_client.post(
        MEMBERS_URL,
        {
            "action": "assign_to_account",
            "account": account.pk,
            ACTION_CHECKBOX_NAME: [first.pk, second.pk],
        },
        follow=True,
    )

    assert response.status_code == 200
    assert set(account.members.all()) == {first, second}
    assert f"Assigned 2 member(s) to {account.name}." in response.content.decode()


def test_member_assign_action_without_account_changes_nothing(admin_client):
    waiting = factories.MemberFactory(account=None)

    response = admin_client.post(
        MEMBERS_URL,
        {"action": "assign_to_account", ACTION_CHECKBOX_NAME: [waiting.pk]},
        follow=True,
    )

    waiting.refresh_from_db()
    assert waiting.account is None
    assert "No account selected" in response.content.decode()


def test_member_changelist_shows_score_and_band(admin_client, member):
    HealthScore.objects.create(
        member=member, score=82, band="green", computed_at="2026-01-05T10:00Z"
    )

    response = admin_client.get(MEMBERS_URL)

    page = response.content.decode()
    assert '<td class="field-score">82</td>' in page
    assert '<td class="field-band">Green</td>' in page


def test_account_changelist_sorts_by_member_count(admin_client):
    small = factories.AccountFactory(name="Small")
    large = factories.AccountFactory(name="Large")
    factories.MemberFactory.create_batch(3, account=large)
    factories.MemberFactory(account=small)

    response = admin_client.get(changelist_url(Account), {"o": "-7"})

    assert listed(response) == [large, small]
    assert [a.member_total for a in listed(response)] == [3, 1]


def test_account_search_matches_email_domain(admin_client):
    northwind = factories.AccountFactory(email_domains=["northwind.test"])
    factories.AccountFactory(email_domains=["contoso.test"])

    response = admin_client.get(changelist_url(Account), {"q": "northwind"})

    assert listed(response) == [northwind]


def test_account_change_page_lists_limited_members(admin_client):
    account = factories.AccountFactory()
    factories.MemberFactory.create_batch(25, account=account)

    response = admin_client.get(change_url(account))

    formset = response.context["inline_admin_formsets"][0].formset
    assert len(formset.forms) == 20


def empty_inline_management_form(prefix: str) -> dict:
    return {
        f"{prefix}-TOTAL_FORMS": 0,
        f"{prefix}-INITIAL_FORMS": 0,
        f"{prefix}-MIN_NUM_FORMS": 0,
        f"{prefix}-MAX_NUM_FORMS": 1000,
    }


def test_account_change_page_saves_with_member_inline(admin_client):
    account = factories.AccountFactory(name="Before", email_domains=["before.test"])
    members = factories.MemberFactory.create_batch(2, account=account)
    data = {
        "name": "After",
        "email_domains": "before.test",
        "segment": account.segment,
        "cs_tier": account.cs_tier,
        "arr": "1000",
        "time_zone": "UTC",
        "members-TOTAL_FORMS": 2,
        "members-INITIAL_FORMS": 2,
        "members-MIN_NUM_FORMS": 0,
        "members-MAX_NUM_FORMS": 1000,
        **empty_inline_management_form("identity_providers"),
        **empty_inline_management_form("arr_history"),
    }
    for index, member in enumerate(sorted(members, key=lambda m: m.user.email)):
        data[f"members-{index}-id"] = member.pk
        data[f"members-{index}-account"] = account.pk

    response = admin_client.post(change_url(account), data)

    account.refresh_from_db()
    assert response.status_code == 302
    assert account.name == "After"
    assert account.members.count() == 2


def test_onboarding_step_unknown_kind_rejected(admin_client):
    response = admin_client.post(
        f"{STEPS_URL}add/",
        {
            "title": "Export a report",
            "completion_kind": "product.Report Exported",
            "position": 1,
            "is_published": "on",
        },
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["completion_kind"] == [
        "'product.Report Exported' is not a registered activity event kind, so no "
        "event would ever complete this step. Use a registered kind such as "
        "community.question_posted or membership.signed_in, or a product.* kind "
        "such as product.report_exported."
    ]
    assert not OnboardingStep.objects.exists()


@pytest.mark.parametrize(
    "kind", ["community.question_posted", "membership.signed_in", "product.x_used"]
)
def test_onboarding_step_registered_kind_saved(admin_client, kind):
    path = factories.OnboardingPathFactory()
    response = admin_client.post(
        f"{STEPS_URL}add/",
        {"path": path.pk, "title": "Step", "completion_kind": kind, "position": 1},
    )

    assert response.status_code == 302
    assert OnboardingStep.objects.get().completion_kind == kind


def test_onboarding_step_list_editable_saves_position(admin_client):
    step = factories.OnboardingStepFactory(position=1, is_published=True)

    response = admin_client.post(
        STEPS_URL,
        {
            "form-TOTAL_FORMS": 1,
            "form-INITIAL_FORMS": 1,
            "form-0-id": step.pk,
            "form-0-position": 5,
            "_save": "Save",
        },
    )

    step.refresh_from_db()
    assert response.status_code == 302
    assert step.position == 5
    assert step.is_published is False


def test_space_account_visibility_requires_account(admin_client):
    response = admin_client.post(
        f"{changelist_url(Space)}add/",
        {"name": "Team", "slug": "team", "visibility": "account", "position": 0},
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["account"] == [
        "A space visible to one account needs that account; choose it here or "
        "pick another visibility."
    ]
    assert not Space.objects.exists()


def test_points_entry_add_calls_award_points(admin_client, member, monkeypatch):
    calls = []

    def spy(**kwargs):
        calls.append(kwargs)
        return award_points(**kwargs)

    monkeypatch.setattr("apps.advocacy.admin.award_points", spy)

    response = admin_client.post(
        f"{POINTS_URL}add/",
        {
            "member": member.pk,
            "points": 25,
            "reason": "event_speaker",
            "note": "Spoke at the user group",
        },
    )

    entry = PointsEntry.objects.get()
    assert response.status_code == 302
    assert len(calls) == 1
    assert entry.member == member
    assert entry.points == 25
    assert entry.reason == "event_speaker"


def test_points_entry_add_zero_rejected(admin_client, member):
    response = admin_client.post(
        f"{POINTS_URL}add/",
        {"member": member.pk, "points": 0, "reason": "typo"},
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["points"] == [
        "An entry of 0 points changes nothing. Enter a positive number to award "
        "points, or a negative one to correct an earlier entry."
    ]
    assert not PointsEntry.objects.exists()


def test_points_entry_duplicate_award_rejected(admin_client, member):
    event = factories.ActivityEventFactory(member=member)
    award_points(member=member, points=10, reason="reply_posted", event=event)

    response = admin_client.post(
        f"{POINTS_URL}add/",
        {
            "member": member.pk,
            "points": 10,
            "reason": "reply_posted",
            "event": event.pk,
        },
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["event"] == [
        f"Event {event.pk} already earned points for 'reply_posted'; an event "
        "earns points once per reason. Clear the event or use another reason."
    ]
    assert PointsEntry.objects.count() == 1


def test_points_entry_change_forbidden(admin_client, member):
    entry = award_points(member=member, points=10, reason="welcome")

    response = admin_client.post(
        change_url(entry), {"member": member.pk, "points": 99, "reason": "welcome"}
    )

    entry.refresh_from_db()
    assert response.status_code == 403
    assert entry.points == 10


def test_points_entry_delete_forbidden(admin_client, member):
    entry = award_points(member=member, points=10, reason="welcome")

    response = admin_client.post(f"{POINTS_URL}{entry.pk}/delete/", {"post": "yes"})

    assert response.status_code == 403
    assert PointsEntry.objects.filter(pk=entry.pk).exists()


def test_points_entry_changelist_has_no_delete_action(admin_client, member):
    award_points(member=member, points=10, reason="welcome")

    response = admin_client.get(POINTS_URL)

    assert "delete_selected" not in response.context["cl"].model_admin.get_actions(
        response.wsgi_request
    )


def test_points_entry_sql_update_rejected_by_trigger(member):
    entry = award_points(member=member, points=10, reason="welcome")

    with (
        pytest.raises(IntegrityError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "UPDATE advocacy_pointsentry SET points = 99 WHERE id = %s", [entry.pk]
        )

    entry.refresh_from_db()
    assert entry.points == 10


def test_points_entry_sql_delete_rejected_by_trigger(member):
    entry = award_points(member=member, points=10, reason="welcome")

    with (
        pytest.raises(IntegrityError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("DELETE FROM advocacy_pointsentry WHERE id = %s", [entry.pk])

    assert PointsEntry.objects.filter(pk=entry.pk).exists()


@pytest.mark.parametrize("page", ["add/", "{pk}/delete/"])
def test_activity_event_writes_forbidden(admin_client, page):
    event = factories.ActivityEventFactory()

    response = admin_client.get(
        changelist_url(ActivityEvent) + page.format(pk=event.pk)
    )

    assert response.status_code == 403


def test_activity_event_change_page_read_only(admin_client):
    event = factories.ActivityEventFactory(kind="product.report_exported")

    response = admin_client.post(change_url(event), {"kind": "product.other"})

    event.refresh_from_db()
    assert response.status_code == 403
    assert event.kind == "product.report_exported"


def test_activity_event_kind_family_filter(admin_client):
    exported = factories.ActivityEventFactory(kind="product.report_exported")
    factories.ActivityEventFactory(kind="membership.signed_in")

    response = admin_client.get(changelist_url(ActivityEvent), {"kind": "product.*"})

    assert listed(response) == [exported]


def test_topic_counter_read_only(admin_client):
    topic = factories.TopicFactory(reply_count=3)

    response = admin_client.post(
        change_url(topic),
        {"title": "Renamed", "kind": topic.kind, "body": topic.body, "reply_count": 99},
    )

    topic.refresh_from_db()
    assert response.status_code == 302
    assert topic.title == "Renamed"
    assert topic.reply_count == 3


def test_changelist_forbidden_without_permission(client, staff_user):
    client.force_login(staff_user)

    response = client.get(changelist_url(Account))

    assert response.status_code == 403


def make_grant(member, key: str, **fields) -> ConsentGrant:
    purpose = ConsentPurpose.objects.create(key=key, name=key, description="Test.")
    values = {"source": "privacy_page", "evidence": "Ticked the box."}
    return ConsentGrant.objects.create(
        member=member, purpose=purpose, granted_at=timezone.now(), **values, **fields
    )


@pytest.mark.parametrize("state", ["valid", "expired", "revoked"])
def test_consent_grant_state_filter(admin_client, member, state):
    now = timezone.now()
    grants = {
        "valid": make_grant(member, "valid", expires_at=now + timedelta(days=1)),
        "expired": make_grant(member, "expired", expires_at=now - timedelta(days=1)),
        "revoked": make_grant(member, "revoked", revoked_at=now),
    }

    response = admin_client.get(changelist_url(ConsentGrant), {"state": state})

    assert listed(response) == [grants[state]]


def test_consent_grant_change_forbidden(admin_client, member):
    grant = make_grant(member, "marketing")

    response = admin_client.post(change_url(grant), {"evidence": "Edited."})

    grant.refresh_from_db()
    assert response.status_code == 403
    assert grant.evidence == "Ticked the box."


def test_audit_entry_add_forbidden(admin_client):
    response = admin_client.get(f"{changelist_url(AuditEntry)}add/")

    assert response.status_code == 403


def test_member_status_filter_lists_deactivated(admin_client):
    factories.MemberFactory()
    deactivated = factories.MemberFactory(deactivated_at=timezone.now())

    response = admin_client.get(MEMBERS_URL, {"status": "deactivated"})

    assert listed(response) == [deactivated]


def test_assign_action_autocomplete_lists_accounts(admin_client):
    account = factories.AccountFactory(name="Northwind Analytics")
    factories.AccountFactory(name="Contoso")

    response = admin_client.get(
        "/admin/autocomplete/",
        {
            "app_label": "membership",
            "model_name": "member",
            "field_name": "account",
            "term": "north",
        },
    )

    assert response.status_code == 200
    assert response.json()["results"] == [
        {"id": str(account.pk), "text": "Northwind Analytics"}
    ]


def test_member_delete_forbidden(admin_client, member):
    response = admin_client.post(f"{MEMBERS_URL}{member.pk}/delete/", {"post": "yes"})

    assert response.status_code == 403
    assert Member.objects.filter(pk=member.pk).exists()


def group_names(user) -> set[str]:
    return set(user.groups.values_list("name", flat=True))


def test_member_change_role_action_updates_groups(admin_client):
    member = factories.MemberFactory()

    response = admin_client.post(
        MEMBERS_URL,
        {
            "action": "change_role",
            "role": "champion",
            ACTION_CHECKBOX_NAME: [member.pk],
        },
        follow=True,
    )

    member.refresh_from_db()
    assert member.role == Member.Role.CHAMPION
    assert group_names(member.user) == {"role: champion"}
    assert AuditEntry.objects.get(member=member).action == "member.role_changed"
    assert "Set the role of 1 member(s) to Champion." in response.content.decode()


def test_member_change_role_action_shows_rule_errors(admin_client):
    waiting = factories.MemberFactory(account=None)

    response = admin_client.post(
        MEMBERS_URL,
        {"action": "change_role", "role": "admin", ACTION_CHECKBOX_NAME: [waiting.pk]},
        follow=True,
    )

    waiting.refresh_from_db()
    assert waiting.role == Member.Role.MEMBER
    assert "has no account yet, so cannot be an account admin" in (
        response.content.decode()
    )


def test_member_change_page_role_read_only(admin_client, member):
    response = admin_client.get(change_url(member))

    assert "role" not in response.context["adminform"].form.fields
    assert "account" in response.context["adminform"].form.fields


def test_member_account_change_moves_admin_rights(admin_client):
    admin = factories.MemberFactory(role=Member.Role.ADMIN)
    old_account = admin.account
    sync_role_groups(admin)
    new_account = factories.AccountFactory()
    form = admin_client.get(change_url(admin)).context["adminform"].form
    data = {
        name: value
        for name, value in form.initial.items()
        if name in form.fields and value is not None
    }
    data["account"] = new_account.pk
    data.update(empty_inline_management_form("consents"))

    response = admin_client.post(change_url(admin), data)

    user = get_user_model().objects.get(pk=admin.user_id)
    assert response.status_code == 302
    assert user.has_perm("membership.view_account_members", new_account)
    assert not user.has_perm("membership.view_account_members", old_account)
