"""The capabilities of each member role, defined once.

Every capability is a Django permission in the `membership` app. A member
role has its global capabilities through its group (`role: member` and so
on), and an account admin has the account-scoped ones as django-guardian
object permissions on their own account. Staff users have every capability,
and anonymous visitors none. `apps.membership.selectors.roles.has_capability`
applies those rules.

Migration 0005 creates the groups and permissions from a frozen copy of
these definitions, and `test_role_groups_migration_matches_role_definitions`
checks that the copy matches. A later change here needs a new data
migration, and that test should then run the new one.
`apps.membership.services.roles.sync_role_definitions` makes a database
match this module.
"""

from dataclasses import dataclass

from apps.membership.models import Member

Role = Member.Role

ALL_ROLES = frozenset(Role.values)
# Django groups named after the role labels, as staff see them in admin.
GROUP_NAMES = {
    Role.MEMBER: "role: member",
    Role.CONTRIBUTOR: "role: contributor",
    Role.CHAMPION: "role: champion",
    Role.ADMIN: "role: account admin",
}


@dataclass(frozen=True)
class Capability:
    """Something a role may do, stored as the permission `membership.<codename>`.

    `global_roles` hold it everywhere. `account_roles` hold it only for their
    own account, so the check needs the account as the object.
    django-guardian grants object permissions only of the object's own model.
    So a capability with account roles is a permission on the Account model,
    and the others are permissions on the Member model.
    """

    codename: str
    name: str
    global_roles: frozenset[str] = frozenset()
    account_roles: frozenset[str] = frozenset()

    @property
    def permission(self) -> str:
        return f"membership.{self.codename}"

    @property
    def model_name(self) -> str:
        return "account" if self.account_roles else "member"


CAPABILITIES: dict[str, Capability] = {
    capability.codename: capability
    for capability in [
        Capability(
            "view_members_space",
            "Can read members-only spaces",
            global_roles=ALL_ROLES,
        ),
        Capability(
            "view_member_profiles",
            "Can read other members' public profiles",
            global_roles=ALL_ROLES,
        ),
        Capability("post_topic", "Can start topics", global_roles=ALL_ROLES),
        Capability("post_reply", "Can reply to topics", global_roles=ALL_ROLES),
        Capability(
            "post_announcement",
            "Can post announcements",
            global_roles=frozenset({Role.ADMIN}),
        ),
        Capability(
            "accept_solution",
            "Can accept a reply as the solution",
            global_roles=frozenset({Role.CHAMPION}),
            account_roles=frozenset({Role.ADMIN}),
        ),
        Capability(
            "moderate_community",
            "Can moderate the community",
            global_roles=frozenset({Role.CHAMPION}),
        ),
        Capability(
            "view_account_members",
            "Can see the members of an account",
            account_roles=frozenset({Role.ADMIN}),
        ),
        Capability(
            "manage_account_members",
            "Can change the members and roles of an account",
            account_roles=frozenset({Role.ADMIN}),
        ),
        Capability(
            "view_account_cases",
            "Can see the support cases of an account",
            account_roles=frozenset({Role.ADMIN}),
        ),
        Capability("view_reporting", "Can see reporting"),
        Capability(
            "manage_consents_of_others",
            "Can record and revoke other members' consents",
        ),
    ]
}


def get_group_name(role: str) -> str:
    """Return the name of the group whose users hold `role`."""
    return GROUP_NAMES[role]


def list_global_capabilities(role: str) -> list[Capability]:
    return [c for c in CAPABILITIES.values() if role in c.global_roles]


def list_account_capabilities(role: str) -> list[Capability]:
    return [c for c in CAPABILITIES.values() if role in c.account_roles]
