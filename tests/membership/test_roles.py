import importlib

import pytest
from django.apps import apps as django_apps
from django.contrib.auth.models import AnonymousUser, Group, Permission
from django.urls import reverse
from django.utils import timezone
from guardian.models import UserObjectPermission
from guardian.shortcuts import get_perms

from apps.community.models import Reply, Space, Topic
from apps.lifecycle.models import ActivityEvent
from apps.membership.models import AuditEntry, ConsentGrant, Member
from apps.membership.roles import (
    CAPABILITIES,
    get_group_name,
    list_account_capabilities,
    list_global_capabilities,
)
from apps.membership.selectors.roles import has_capability
from apps.membership.services import create_member
from apps.membership.services.roles import (
    change_member_role,
    sync_role_definitions,
    sync_role_groups,
)
from rm6.errors import DomainError
from tests import factories

Role = Member.Role

# The expected results, written out by hand rather than derived from
# apps.membership.roles, so that a wrong definition there fails here. Each
# capability is checked on the account of the member actors; the account
# admin administers that account and the other admin a different one.
ACTORS = (
    "anonymous",
    "member",
    "contributor",
    "champion",
    "account_admin",
    "other_account_admin",
    "staff",
)
Y, N = True, False
EXPECTED = {
    #                           anon member contr champ admin other staff
    "view_members_space": (N, Y, Y, Y, Y, Y, Y),
    "view_member_profiles": (N, Y, Y, Y, Y, Y, Y),
    "post_topic": (N, Y, Y, Y, Y, Y, Y),
    "post_reply": (N, Y, Y, Y, Y, Y, Y),
    "post_announcement": (N, N, N, N, Y, Y, Y),
    "accept_solution": (N, N, N, Y, Y, N, Y),
    "moderate_community": (N, N, N, Y, N, N, Y),
    "view_account_members": (N, N, N, N, Y, N, Y),
    "manage_account_members": (N, N, N, N, Y, N, Y),
    "view_account_cases": (N, N, N, N, Y, N, Y),
    "view_reporting": (N, N, N, N, N, N, Y),
    "manage_consents_of_others": (N, N, N, N, N, N, Y),
}
MATRIX = [
    pytest.param(capability, actor, answers[index], id=f"{capability}-{actor}")
    for capability, answers in EXPECTED.items()
    for index, actor in enumerate(ACTORS)
]


def make_member(*, role: str = Role.MEMBER, **fields) -> Member:
    """Create a member the way sign-up does, with the role's groups in sync."""
    member = factories.MemberFactory(role=role, **fields)
    sync_role_groups(member)
    return member


@pytest.fixture
def account(db):
    return factories.AccountFactory(name="Acme")


@pytest.fixture
def actors(account) -> dict:
    other_account = factories.AccountFactory(name="Globex")
    return {
        "anonymous": AnonymousUser(),
        "member": make_member(account=account).user,
        "contributor": make_member(role=Role.CONTRIBUTOR, account=account).user,
        "champion": make_member(role=Role.CHAMPION, account=account).user,
        "account_admin": make_member(role=Role.ADMIN, account=account).user,
        "other_account_admin": make_member(role=Role.ADMIN, account=other_account).user,
        "staff": factories.StaffFactory(),
    }


def count_rows() -> dict[str, int]:
    """Return the row counts of the tables a refused request must not touch."""
    models = [Topic, Reply, Space, ActivityEvent, AuditEntry, ConsentGrant, Member]
    counts = {model.__name__: model.objects.count() for model in models}
    counts["group memberships"] = Group.user_set.through.objects.count()
    counts["object permissions"] = UserObjectPermission.objects.count()
    return counts


# The matrix


def test_matrix_covers_every_capability():
    assert set(EXPECTED) == set(CAPABILITIES)


@pytest.mark.parametrize(("capability", "actor", "expected"), MATRIX)
def test_has_capability_matrix(actors, account, capability, actor, expected):
    assert has_capability(actors[actor], capability, obj=account) is expected


@pytest.mark.parametrize(
    "capability",
    ["accept_solution", "view_account_members", "manage_account_members"],
)
def test_has_capability_account_scoped_needs_account(actors, capability):
    assert has_capability(actors["account_admin"], capability) is False


def test_has_capability_champion_accepts_solutions_anywhere(actors):
    assert has_capability(actors["champion"], "accept_solution") is True


def test_has_capability_deactivated_member_has_none(account):
    member = make_member(role=Role.ADMIN, account=account)
    Member.objects.filter(pk=member.pk).update(deactivated_at=timezone.now())
    user = Member.objects.get(pk=member.pk).user

    for capability in CAPABILITIES:
        assert has_capability(user, capability, obj=account) is False, capability


def test_has_capability_inactive_user_has_none(account):
    member = make_member(role=Role.ADMIN, account=account)
    member.user.is_active = False
    member.user.save(update_fields=["is_active"])

    for capability in CAPABILITIES:
        assert has_capability(member.user, capability, obj=account) is False


def test_has_capability_inactive_staff_has_none(db):
    staff = factories.StaffFactory(is_active=False)

    assert has_capability(staff, "view_reporting") is False


def test_has_capability_user_without_member_has_none(db):
    user = factories.UserFactory()

    assert has_capability(user, "view_members_space") is False


def test_has_capability_unknown_capability_raises(actors):
    with pytest.raises(ValueError, match="Unknown capability 'fly'"):
        has_capability(actors["staff"], "fly")


def test_has_capability_non_account_object_raises(actors):
    topic = factories.TopicFactory()

    with pytest.raises(TypeError, match="not a Topic"):
        has_capability(actors["member"], "accept_solution", obj=topic)


def run_role_groups_migration() -> None:
    """Delete the role groups and permissions, then rerun migration 0005 on them.

    Test cases that commit transactions flush the database, which deletes the
    rows the migration made, so the tests below make them afresh.
    """
    migration = importlib.import_module("apps.membership.migrations.0005_role_groups")
    Group.objects.filter(name__startswith="role: ").delete()
    Permission.objects.filter(codename__in=list(CAPABILITIES)).delete()
    migration.create_role_groups(django_apps, schema_editor=None)


def test_role_groups_migration_matches_role_definitions(db):
    run_role_groups_migration()

    for role in Role.values:
        group = Group.objects.get(name=get_group_name(role))
        granted = {
            (p.content_type.model, p.codename)
            for p in group.permissions.select_related("content_type")
        }
        defined = {(c.model_name, c.codename) for c in list_global_capabilities(role)}
        assert granted == defined, role


def test_role_groups_migration_creates_every_permission(db):
    run_role_groups_migration()

    for capability in CAPABILITIES.values():
        assert Permission.objects.filter(
            content_type__app_label="membership",
            content_type__model=capability.model_name,
            codename=capability.codename,
            name=capability.name,
        ).exists(), capability.codename


def test_role_groups_migration_backfills_existing_members(account):
    admin = factories.MemberFactory(role=Role.ADMIN, account=account)
    deactivated = factories.MemberFactory(
        role=Role.CHAMPION, account=account, deactivated_at=timezone.now()
    )

    run_role_groups_migration()

    assert role_group_names(admin.user) == {"role: account admin"}
    assert sorted(get_perms(admin.user, account)) == sorted(
        c.codename for c in list_account_capabilities(Role.ADMIN)
    )
    assert role_group_names(deactivated.user) == set()


def test_sync_role_definitions_restores_flushed_groups(db):
    Group.objects.filter(name__startswith="role: ").delete()
    Permission.objects.filter(codename__in=list(CAPABILITIES)).delete()

    member = create_member(user=factories.UserFactory())

    assert role_group_names(member.user) == {"role: member"}
    assert has_capability(member.user, "post_topic") is True


def test_sync_role_definitions_keeps_extra_group_permissions(db):
    sync_role_definitions()
    group = Group.objects.get(name="role: champion")
    extra = Permission.objects.get(codename="view_topic")
    group.permissions.add(extra)

    sync_role_definitions()

    assert group.permissions.filter(pk=extra.pk).exists()


def test_sync_role_definitions_removes_undefined_capability(db):
    sync_role_definitions()
    group = Group.objects.get(name="role: member")
    group.permissions.add(Permission.objects.get(codename="view_reporting"))

    sync_role_definitions()

    assert not group.permissions.filter(codename="view_reporting").exists()


# Keeping groups and object permissions in sync


def role_group_names(user) -> set[str]:
    return set(user.groups.values_list("name", flat=True))


def test_create_member_joins_member_group(db):
    member = create_member(user=factories.UserFactory())

    assert role_group_names(member.user) == {"role: member"}


def test_sync_role_groups_keeps_other_groups(account):
    member = make_member(account=account)
    beta_testers = Group.objects.create(name="Beta testers")
    member.user.groups.add(beta_testers)
    Member.objects.filter(pk=member.pk).update(role=Role.CHAMPION)
    member.refresh_from_db()

    sync_role_groups(member)

    assert role_group_names(member.user) == {"role: champion", "Beta testers"}


def test_sync_role_groups_deactivated_member_loses_rights(account):
    member = make_member(role=Role.ADMIN, account=account)
    Member.objects.filter(pk=member.pk).update(deactivated_at=timezone.now())
    member.refresh_from_db()

    sync_role_groups(member)

    assert role_group_names(member.user) == set()
    assert get_perms(member.user, account) == []


def test_sync_role_groups_moved_admin_loses_old_account(account):
    member = make_member(role=Role.ADMIN, account=account)
    new_account = factories.AccountFactory()
    Member.objects.filter(pk=member.pk).update(account=new_account)
    member.refresh_from_db()

    sync_role_groups(member)

    assert get_perms(member.user, account) == []
    assert sorted(get_perms(member.user, new_account)) == sorted(
        c.codename for c in list_account_capabilities(Role.ADMIN)
    )


def test_change_member_role_to_admin_updates_groups(account):
    member = make_member(account=account)

    change_member_role(member=member, role=Role.ADMIN, actor=factories.StaffFactory())

    assert role_group_names(member.user) == {"role: account admin"}


def test_change_member_role_to_admin_grants_account_rights(account):
    member = make_member(account=account)

    change_member_role(member=member, role=Role.ADMIN, actor=factories.StaffFactory())

    assert sorted(get_perms(member.user, account)) == [
        "accept_solution",
        "manage_account_members",
        "view_account_cases",
        "view_account_members",
    ]


def test_change_member_role_object_rights_apply_at_once(account):
    member = make_member(account=account)
    user = member.user
    assert has_capability(user, "view_account_members", obj=account) is False

    change_member_role(member=member, role=Role.ADMIN, actor=factories.StaffFactory())

    assert has_capability(user, "view_account_members", obj=account) is True


def test_change_member_role_clears_stale_permission_cache(account):
    member = make_member(account=account)
    user = member.user
    assert has_capability(user, "post_announcement") is False

    change_member_role(member=member, role=Role.ADMIN, actor=factories.StaffFactory())

    assert has_capability(user, "post_announcement") is True


def test_change_member_role_from_admin_removes_account_rights(account):
    member = make_member(role=Role.ADMIN, account=account)

    change_member_role(member=member, role=Role.MEMBER, actor=None)

    assert get_perms(member.user, account) == []
    assert role_group_names(member.user) == {"role: member"}


def test_change_member_role_writes_audit_entry(account):
    member = make_member(account=account)
    staff = factories.StaffFactory()

    change_member_role(member=member, role=Role.CHAMPION, actor=staff)

    entry = AuditEntry.objects.get(action="member.role_changed")
    assert entry.actor == staff
    assert entry.member == member
    assert entry.account == account
    assert entry.details == {"from": "member", "to": "champion"}


def test_change_member_role_same_role_writes_no_audit(account):
    member = make_member(account=account)

    change_member_role(member=member, role=Role.MEMBER, actor=None)

    assert not AuditEntry.objects.filter(action="member.role_changed").exists()


def test_change_member_role_by_account_admin_allowed(actors, account):
    member = make_member(account=account)

    change_member_role(
        member=member, role=Role.CONTRIBUTOR, actor=actors["account_admin"]
    )

    member.refresh_from_db()
    assert member.role == Role.CONTRIBUTOR


def test_change_member_role_unknown_role_rejected(account):
    member = make_member(account=account)

    with pytest.raises(DomainError) as raised:
        change_member_role(member=member, role="owner", actor=None)

    assert raised.value.message == (
        "Unknown role 'owner'; use one of member, contributor, champion, admin."
    )


def test_change_member_role_admin_without_account_rejected(db):
    member = make_member(account=None)

    with pytest.raises(DomainError, match="has no account yet"):
        change_member_role(member=member, role=Role.ADMIN, actor=None)


# Refused role changes change nothing


@pytest.mark.parametrize(
    ("actor", "role"),
    [
        ("member", Role.ADMIN),
        ("contributor", Role.CONTRIBUTOR),
        ("champion", Role.CONTRIBUTOR),
        ("other_account_admin", Role.CONTRIBUTOR),
        ("account_admin", Role.CHAMPION),
    ],
)
def test_change_member_role_refused_changes_nothing(actors, account, actor, role):
    member = make_member(account=account)
    before = count_rows()

    with pytest.raises(DomainError) as raised:
        change_member_role(member=member, role=role, actor=actors[actor])

    member.refresh_from_db()
    assert raised.value.code == "forbidden"
    assert member.role == Role.MEMBER
    assert role_group_names(member.user) == {"role: member"}
    assert count_rows() == before


def test_change_member_role_admin_cannot_demote_champion(actors, account):
    champion = Member.objects.get(user=actors["champion"])

    with pytest.raises(DomainError, match="Only staff may give or take away"):
        change_member_role(
            member=champion, role=Role.MEMBER, actor=actors["account_admin"]
        )

    champion.refresh_from_db()
    assert champion.role == Role.CHAMPION


# Pages: who may, who may not, and that a refusal changed nothing


@pytest.fixture
def members_space(db):
    return factories.SpaceFactory(
        name="Questions", slug="questions", visibility=Space.Visibility.MEMBERS
    )


def test_new_topic_anonymous_redirected_to_sign_in(client, members_space):
    url = reverse("community:new_topic", kwargs={"slug": members_space.slug})
    before = count_rows()

    response = client.post(url, {"title": "Hello", "body": "Anyone?"})

    assert response.status_code == 302
    assert response.url == f"{reverse('account_login')}?next={url}"
    assert count_rows() == before


def test_new_topic_anonymous_keeps_space_topic_count(client, members_space):
    url = reverse("community:new_topic", kwargs={"slug": members_space.slug})

    client.post(url, {"title": "Hello", "body": "Anyone?"})

    members_space.refresh_from_db()
    assert members_space.topic_count == 0


def test_new_topic_member_posts(client, account, members_space):
    member = make_member(account=account)
    client.force_login(member.user)
    url = reverse("community:new_topic", kwargs={"slug": members_space.slug})

    response = client.post(
        url, {"title": "Hello", "body": "Anyone?", "kind": "question"}
    )

    assert response.status_code == 302
    assert Topic.objects.filter(author=member, space=members_space).count() == 1


def test_new_topic_other_account_space_not_found(client, account):
    member = make_member(account=account)
    space = factories.SpaceFactory(
        visibility=Space.Visibility.ACCOUNT, account=factories.AccountFactory()
    )
    client.force_login(member.user)
    url = reverse("community:new_topic", kwargs={"slug": space.slug})
    before = count_rows()

    response = client.post(url, {"title": "Hello", "body": "Anyone?"})

    assert response.status_code == 404
    assert count_rows() == before


@pytest.mark.parametrize(
    ("actor", "expected_status"),
    [
        ("member", 200),
        ("contributor", 200),
        ("champion", 200),
        ("account_admin", 200),
        ("staff", 200),
    ],
)
def test_members_space_page_signed_in_allowed(
    client, actors, members_space, actor, expected_status
):
    client.force_login(actors[actor])

    response = client.get(members_space.get_absolute_url())

    assert response.status_code == expected_status


def test_members_space_page_anonymous_not_found(client, members_space):
    response = client.get(members_space.get_absolute_url())

    assert response.status_code == 404


@pytest.mark.parametrize(
    "actor", ["member", "contributor", "champion", "account_admin"]
)
def test_reporting_page_members_forbidden(client, actors, actor):
    client.force_login(actors[actor])
    before = count_rows()

    response = client.get(reverse("reporting:dashboard"))

    assert response.status_code == 403
    assert count_rows() == before


def test_reporting_page_anonymous_redirected(client, db):
    before = count_rows()

    response = client.get(reverse("reporting:dashboard"))

    assert response.status_code == 302
    assert response.url.startswith(reverse("account_login"))
    assert count_rows() == before


def test_reporting_page_staff_allowed(client, actors):
    client.force_login(actors["staff"])

    response = client.get(reverse("reporting:dashboard"))

    assert response.status_code == 200


@pytest.mark.parametrize(
    ("actor", "expected_status"),
    [
        ("member", 200),
        ("contributor", 200),
        ("champion", 200),
        ("account_admin", 200),
        ("other_account_admin", 200),
        ("staff", 200),
    ],
)
def test_profile_page_signed_in_allowed(client, actors, actor, expected_status):
    profile_owner = Member.objects.get(user=actors["member"])
    client.force_login(actors[actor])

    response = client.get(
        reverse("membership:profile", kwargs={"pk": profile_owner.pk})
    )

    assert response.status_code == expected_status


def test_profile_page_anonymous_redirected(client, actors):
    profile_owner = Member.objects.get(user=actors["member"])
    url = reverse("membership:profile", kwargs={"pk": profile_owner.pk})

    response = client.get(url)

    assert response.status_code == 302
    assert response.url == f"{reverse('account_login')}?next={url}"


def test_profile_page_deactivated_viewer_forbidden(client, actors, account):
    viewer = make_member(account=account)
    client.force_login(viewer.user)
    Member.objects.filter(pk=viewer.pk).update(deactivated_at=timezone.now())
    profile_owner = Member.objects.get(user=actors["member"])

    response = client.get(
        reverse("membership:profile", kwargs={"pk": profile_owner.pk})
    )

    assert response.status_code == 403
