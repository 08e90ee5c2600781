import logging

from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from guardian.models import UserObjectPermission
from guardian.shortcuts import assign_perm

from apps.membership.models import Account, AuditEntry, Member
from apps.membership.roles import (
    CAPABILITIES,
    GROUP_NAMES,
    get_group_name,
    list_account_capabilities,
    list_global_capabilities,
)
from apps.membership.selectors.roles import has_capability
from rm6.errors import DomainError

logger = logging.getLogger(__name__)


@transaction.atomic
def sync_role_definitions() -> None:
    """Make the capability permissions and role groups match apps.membership.roles.

    Migration 0005 creates them. This restores them after a database flush,
    which deletes every row, as test cases that commit transactions do.
    Permissions in a role group that are not capabilities stay as they are.
    """
    content_types = ContentType.objects.get_for_models(Account, Member)
    permissions = {}
    for capability in CAPABILITIES.values():
        model = Account if capability.model_name == "account" else Member
        permissions[capability.codename], _ = Permission.objects.update_or_create(
            content_type=content_types[model],
            codename=capability.codename,
            defaults={"name": capability.name},
        )

    for role in Member.Role.values:
        group, _ = Group.objects.get_or_create(name=get_group_name(role))
        expected = {permissions[c.codename] for c in list_global_capabilities(role)}
        current = set(
            group.permissions.filter(pk__in=[p.pk for p in permissions.values()])
        )
        group.permissions.remove(*(current - expected))
        group.permissions.add(*(expected - current))


def _get_role_group(role: str) -> Group:
    name = get_group_name(role)
    group = Group.objects.filter(name=name).first()
    if group is None:
        logger.warning("role group missing, recreating role groups: group=%s", name)
        sync_role_definitions()
        group = Group.objects.get(name=name)
    return group


def _clear_permission_caches(user) -> None:
    # ModelBackend caches a user's permissions on the user instance, so code
    # holding that instance would otherwise still see the old permissions.
    for attribute in ("_perm_cache", "_user_perm_cache", "_group_perm_cache"):
        user.__dict__.pop(attribute, None)


def _keeps_role_rights(member: Member) -> bool:
    return (
        member.user.is_active
        and member.deactivated_at is None
        and member.anonymised_at is None
    )


@transaction.atomic
def sync_role_groups(member: Member) -> None:
    """Make the user's role group and account permissions match `member.role`.

    The user ends up in exactly one role group, and an account admin has
    the account-scoped permissions on their own account and no other. A
    deactivated, anonymised or inactive member keeps no role rights at all.
    Groups that are not role groups stay as they are. Safe to call again.
    """
    user = member.user
    keeps_rights = _keeps_role_rights(member)

    target_group = _get_role_group(member.role) if keeps_rights else None
    other_role_groups = Group.objects.filter(name__in=GROUP_NAMES.values())
    if target_group is not None:
        other_role_groups = other_role_groups.exclude(pk=target_group.pk)
    user.groups.remove(*other_role_groups)
    if target_group is not None:
        user.groups.add(target_group)

    missing_grants = set()
    if keeps_rights and member.account_id is not None:
        missing_grants = {
            (capability.codename, str(member.account_id))
            for capability in list_account_capabilities(member.role)
        }
    grants = UserObjectPermission.objects.filter(
        user=user,
        permission__content_type__app_label="membership",
        permission__content_type__model="account",
    ).select_related("permission")
    for grant in grants:
        key = (grant.permission.codename, grant.object_pk)
        if key in missing_grants:
            missing_grants.discard(key)
        else:
            grant.delete()
    if missing_grants:
        account = Account.objects.get(pk=member.account_id)
        for codename, _ in sorted(missing_grants):
            assign_perm(f"membership.{codename}", user, account)

    _clear_permission_caches(user)


@transaction.atomic
def change_member_role(*, member: Member, role: str, actor) -> Member:
    """Give a member a new role, update their permissions and audit the change.

    Return the member as saved; the instance passed in keeps its old role.
    `actor` is the user making the change, or None for a system process such
    as an import. Staff may give and take any role. An account admin may
    change the roles of their own account's members, except to or from
    champion, which only staff grant.
    """
    if role not in Member.Role.values:
        raise DomainError(
            f"Unknown role {role!r}; use one of {', '.join(Member.Role.values)}.",
            field="role",
        )
    callers_user = member.user
    member = Member.objects.select_for_update().select_related("user").get(pk=member.pk)
    previous_role = member.role
    if actor is not None:
        _check_may_change_role(member=member, role=role, actor=actor)
    if role == Member.Role.ADMIN and member.account_id is None:
        raise DomainError(
            f"{member.name} has no account yet, so cannot be an account admin; "
            "assign an account first.",
            field="role",
        )

    if previous_role == role:
        # Nothing changes, but syncing repairs role groups edited by hand.
        sync_role_groups(member)
        return member

    member.role = role
    member.save(update_fields=["role"])
    sync_role_groups(member)
    _clear_permission_caches(callers_user)

    AuditEntry.objects.create(
        actor=actor,
        action="member.role_changed",
        member=member,
        account_id=member.account_id,
        details={"from": previous_role, "to": role},
    )
    return member


def _check_may_change_role(*, member: Member, role: str, actor) -> None:
    if not has_capability(actor, "manage_account_members", obj=member.account):
        raise DomainError(
            f"You may not change the role of {member.name}: only staff and "
            "the admins of the member's account may.",
            code="forbidden",
        )
    # A champion moderates the whole community, beyond any one account.
    if not actor.is_staff and Member.Role.CHAMPION in {role, member.role}:
        raise DomainError(
            "Only staff may give or take away the champion role; ask your "
            "customer success manager.",
            field="role",
            code="forbidden",
        )
