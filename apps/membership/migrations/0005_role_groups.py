"""Create the role groups and capability permissions of apps.membership.roles.

The tables below are a frozen copy of roles.py as it stood when this
migration was written, because a migration must give the same result
whatever the code looks like later. Existing members join the group of their
role, and account admins get their account-scoped permissions on their
account, as `sync_role_groups` would give them.
"""

from django.db import migrations

# codename -> (model, permission name)
PERMISSIONS = {
    "view_members_space": ("member", "Can read members-only spaces"),
    "view_member_profiles": ("member", "Can read other members' public profiles"),
    "post_topic": ("member", "Can start topics"),
    "post_reply": ("member", "Can reply to topics"),
    "post_announcement": ("member", "Can post announcements"),
    "accept_solution": ("account", "Can accept a reply as the solution"),
    "moderate_community": ("member", "Can moderate the community"),
    "view_account_members": ("account", "Can see the members of an account"),
    "manage_account_members": (
        "account",
        "Can change the members and roles of an account",
    ),
    "view_account_cases": ("account", "Can see the support cases of an account"),
    "view_reporting": ("member", "Can see reporting"),
    "manage_consents_of_others": (
        "member",
        "Can record and revoke other members' consents",
    ),
}

EVERY_MEMBER = [
    "view_members_space",
    "view_member_profiles",
    "post_topic",
    "post_reply",
]

# role -> (group name, global permissions)
GROUPS = {
    "member": ("role: member", EVERY_MEMBER),
    "contributor": ("role: contributor", EVERY_MEMBER),
    "champion": (
        "role: champion",
        [*EVERY_MEMBER, "accept_solution", "moderate_community"],
    ),
    "admin": ("role: account admin", [*EVERY_MEMBER, "post_announcement"]),
}

# Object permissions an account admin holds on their own account.
ACCOUNT_ADMIN_PERMISSIONS = [
    "accept_solution",
    "view_account_members",
    "manage_account_members",
    "view_account_cases",
]


def create_role_groups(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    Member = apps.get_model("membership", "Member")
    UserObjectPermission = apps.get_model("guardian", "UserObjectPermission")

    content_types = {
        model: ContentType.objects.get_or_create(app_label="membership", model=model)[0]
        for model in ("member", "account")
    }
    permissions = {}
    for codename, (model, name) in PERMISSIONS.items():
        permissions[codename], _ = Permission.objects.update_or_create(
            content_type=content_types[model],
            codename=codename,
            defaults={"name": name},
        )

    groups = {}
    for role, (group_name, codenames) in GROUPS.items():
        group, _ = Group.objects.get_or_create(name=group_name)
        group.permissions.set([permissions[codename] for codename in codenames])
        groups[role] = group

    members = Member.objects.filter(
        user__is_active=True, deactivated_at__isnull=True, anonymised_at__isnull=True
    )
    User = Member._meta.get_field("user").related_model
    UserGroup = User.groups.through
    UserGroup.objects.bulk_create(
        [
            UserGroup(user_id=user_id, group_id=groups[role].pk)
            for user_id, role in members.values_list("user_id", "role")
        ],
        batch_size=1000,
        ignore_conflicts=True,
    )

    admins = members.filter(role="admin", account__isnull=False)
    UserObjectPermission.objects.bulk_create(
        [
            UserObjectPermission(
                user_id=user_id,
                permission=permissions[codename],
                content_type=content_types["account"],
                object_pk=str(account_id),
            )
            for user_id, account_id in admins.values_list("user_id", "account_id")
            for codename in ACCOUNT_ADMIN_PERMISSIONS
        ],
        batch_size=1000,
        ignore_conflicts=True,
    )


def delete_role_groups(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")

    Group.objects.filter(name__in=[name for name, _ in GROUPS.values()]).delete()
    # Deleting the permissions also deletes the object permissions granted
    # with them.
    Permission.objects.filter(
        content_type__app_label="membership", codename__in=list(PERMISSIONS)
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("membership", "0004_member_merged_into"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        (
            "guardian",
            "0003_remove_groupobjectpermission_guardian_gr_content_ae6aec_idx_and_more",
        ),
    ]

    operations = [
        migrations.RunPython(create_role_groups, delete_role_groups),
    ]
