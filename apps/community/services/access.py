"""Private group membership and the object permissions that follow from it.

SpaceMembership rows are the record staff edit. Pages, search and the API
check django-guardian object permissions on the space instead:
`community.view_space` for every member of the group and, for its
moderators, `community.change_space` as well. These services keep the two
in step inside one transaction, so no code path may change either alone.
"""

import logging

from django.db import transaction
from guardian.shortcuts import assign_perm, remove_perm

from apps.community.models import Space, SpaceMembership
from apps.community.selectors.access import MEMBER_PERMISSION, MODERATOR_PERMISSION
from apps.membership.models import Member
from rm6.errors import DomainError

logger = logging.getLogger(__name__)

MEMBER_PERMISSION_NAME = f"community.{MEMBER_PERMISSION}"
MODERATOR_PERMISSION_NAME = f"community.{MODERATOR_PERMISSION}"


def _sync_permissions(*, space: Space, member: Member, role: str | None) -> None:
    user = member.user
    if role is None:
        remove_perm(MEMBER_PERMISSION_NAME, user, space)
        remove_perm(MODERATOR_PERMISSION_NAME, user, space)
        return
    assign_perm(MEMBER_PERMISSION_NAME, user, space)
    if role == SpaceMembership.Role.MODERATOR:
        assign_perm(MODERATOR_PERMISSION_NAME, user, space)
    else:
        remove_perm(MODERATOR_PERMISSION_NAME, user, space)


@transaction.atomic
def add_space_member(
    *, space: Space, member: Member, role: str = SpaceMembership.Role.MEMBER
) -> SpaceMembership:
    """Add the member to a private group, or change their role in it.

    Grant the object permissions of the role. Calling it again with the same
    role changes nothing.
    """
    if space.visibility != Space.Visibility.PRIVATE:
        raise DomainError(
            f"{space.name} is not a private group, so it has no member list; "
            "set its visibility to private group first.",
            field="space",
        )
    if role not in SpaceMembership.Role.values:
        raise DomainError(
            f"Unknown group role {role!r}; use one of "
            f"{', '.join(SpaceMembership.Role.values)}.",
            field="role",
        )

    membership, created = SpaceMembership.objects.select_for_update().get_or_create(
        space=space, member=member, defaults={"role": role}
    )
    if not created and membership.role != role:
        membership.role = role
        membership.save(update_fields=["role"])
    _sync_permissions(space=space, member=member, role=role)

    logger.info(
        "space member added: space=%s member=%s role=%s", space.pk, member.pk, role
    )
    return membership


@transaction.atomic
def remove_space_member(*, space: Space, member: Member) -> bool:
    """Remove the member from a group and revoke its object permissions.

    Return whether there was a membership to remove.
    """
    deleted, _ = SpaceMembership.objects.filter(space=space, member=member).delete()
    _sync_permissions(space=space, member=member, role=None)

    if deleted:
        logger.info("space member removed: space=%s member=%s", space.pk, member.pk)
    return bool(deleted)
