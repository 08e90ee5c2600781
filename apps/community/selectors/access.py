"""Who may read and post where: the visibility rules every list shares.

A private group's members hold the `community.view_space` object permission
on its space, and its moderators also hold `community.change_space`. Both
are django-guardian object permissions that
`apps.community.services.access` grants from the SpaceMembership rows. The
querysets here test them with an EXISTS subquery on guardian's table, so a
list of any length costs no extra query per space.
"""

from django.contrib.auth.models import AnonymousUser
from django.db.models import (
    BooleanField,
    CharField,
    Exists,
    ExpressionWrapper,
    OuterRef,
    Q,
    QuerySet,
)
from django.db.models.functions import Cast
from guardian.models import UserObjectPermission

from apps.community.models import Reply, Space, Topic
from apps.membership.models import Member
from apps.membership.roles import CAPABILITIES
from apps.membership.selectors import get_member_for_user

MEMBER_PERMISSION = "view_space"
MODERATOR_PERMISSION = "change_space"


def is_community_moderator(*, member: Member | None, is_staff: bool = False) -> bool:
    """Return whether the viewer moderates every space: staff and champions."""
    if is_staff:
        return True
    if member is None or member.deactivated_at is not None:
        return False
    return member.role in CAPABILITIES["moderate_community"].global_roles


def _space_permission_exists(
    *, member: Member, codename: str, space_ref: str = "pk"
) -> Exists:
    permissions = UserObjectPermission.objects.filter(
        user_id=member.user_id,
        permission__codename=codename,
        permission__content_type__app_label="community",
        permission__content_type__model="space",
        object_pk=Cast(OuterRef(space_ref), output_field=CharField()),
    )
    return Exists(permissions)


def _visible_space_q(*, member: Member | None, prefix: str = "") -> Q:
    """Return the condition on a space, reached through `prefix`, to be readable."""
    visibility = f"{prefix}visibility"
    if member is None:
        return Q(**{visibility: Space.Visibility.PUBLIC})
    return (
        Q(**{f"{visibility}__in": [Space.Visibility.PUBLIC, Space.Visibility.MEMBERS]})
        | Q(
            **{
                visibility: Space.Visibility.ACCOUNT,
                f"{prefix}account_id": member.account_id,
            }
        )
        | (
            Q(**{visibility: Space.Visibility.PRIVATE})
            & Q(
                _space_permission_exists(
                    member=member,
                    codename=MEMBER_PERMISSION,
                    space_ref=f"{prefix}pk",
                )
            )
        )
    )


def list_visible_spaces(
    *, member: Member | None, is_staff: bool = False
) -> QuerySet[Space]:
    """Return the spaces a member (or an anonymous visitor, as None) may read.

    Staff read every space, and a private group only its members.
    """
    spaces = Space.objects.all()
    if is_staff:
        return spaces
    return spaces.filter(_visible_space_q(member=member))


def can_view_space(*, member: Member | None, space: Space) -> bool:
    """Return whether the member (None for a visitor) may read the space."""
    if space.visibility == Space.Visibility.PUBLIC:
        return True
    if member is None:
        return False
    if space.visibility == Space.Visibility.MEMBERS:
        return True
    if space.visibility == Space.Visibility.ACCOUNT:
        return space.account_id is not None and space.account_id == member.account_id
    return _has_space_permission(member=member, space=space, codename=MEMBER_PERMISSION)


def can_post_in_space(*, member: Member, space: Space) -> bool:
    """Return whether the member may start topics and reply in the space."""
    if member.deactivated_at is not None:
        return False
    return can_view_space(member=member, space=space)


def can_moderate_space(
    *, member: Member | None, space: Space, is_staff: bool = False
) -> bool:
    """Return whether the viewer may see and act on hidden posts in the space."""
    if is_community_moderator(member=member, is_staff=is_staff):
        return True
    if member is None:
        return False
    return _has_space_permission(
        member=member, space=space, codename=MODERATOR_PERMISSION
    )


def _has_space_permission(*, member: Member, space: Space, codename: str) -> bool:
    # One query, without guardian's per-request permission cache, so that a
    # grant or a removal shows on the next check.
    return UserObjectPermission.objects.filter(
        user_id=member.user_id,
        permission__codename=codename,
        permission__content_type__app_label="community",
        permission__content_type__model="space",
        object_pk=str(space.pk),
    ).exists()


def _moderated_q(*, member: Member | None, prefix: str) -> Q:
    if member is None:
        return Q(pk__in=[])
    return Q(
        _space_permission_exists(
            member=member, codename=MODERATOR_PERMISSION, space_ref=f"{prefix}pk"
        )
    )


def filter_visible_topics(
    queryset: QuerySet[Topic], member: Member | None = None, is_staff: bool = False
) -> QuerySet[Topic]:
    """Keep the topics the viewer may read.

    Topics in spaces the viewer may not read go, and so do hidden and deleted
    topics unless the viewer moderates their space. Suspended members read
    like any other member: a suspension stops posting only.
    """
    if is_community_moderator(member=member, is_staff=is_staff):
        return queryset
    is_published = Q(is_hidden=False, deleted_at__isnull=True)
    if member is None:
        # A visitor moderates nothing, and the plain filter is cheaper to
        # build than the OR with an always-false condition below.
        return queryset.filter(is_published, space__visibility=Space.Visibility.PUBLIC)
    return queryset.filter(_visible_space_q(member=member, prefix="space__")).filter(
        is_published | _moderated_q(member=member, prefix="space__")
    )


def topic_visibility_key(member: Member | None) -> str:
    """Return a key equal for two viewers only if they see the same topics.

    `filter_visible_topics` depends on the moderator role and on the spaces
    the viewer may read or moderates. Public and members-only spaces are the
    same for every member, so the key lists only the other spaces the member
    reads (their account's, their private groups) and the spaces they
    moderate: members of different accounts without account spaces share a
    key. Callers that cache results per viewer use it; it costs one query
    for a member who moderates nothing by role.
    """
    if member is None:
        return "anonymous"
    if is_community_moderator(member=member):
        return "moderator"
    readable = _visible_space_q(member=member)
    moderated = _moderated_q(member=member, prefix="")
    shared = Q(visibility__in=[Space.Visibility.PUBLIC, Space.Visibility.MEMBERS])
    rows = (
        Space.objects.filter((readable & ~shared) | moderated)
        .annotate(
            can_read=ExpressionWrapper(readable, output_field=BooleanField()),
            moderates=ExpressionWrapper(moderated, output_field=BooleanField()),
        )
        .order_by("pk")
        .values_list("pk", "can_read", "moderates")
    )
    parts = [
        f"{pk}{'r' if can_read else ''}{'m' if moderates else ''}"
        for pk, can_read, moderates in rows
    ]
    return "member:" + ",".join(parts)


def filter_visible_replies(
    queryset: QuerySet[Reply], member: Member | None = None, is_staff: bool = False
) -> QuerySet[Reply]:
    """Keep the replies the viewer may read, under topics they may read."""
    if is_community_moderator(member=member, is_staff=is_staff):
        return queryset
    is_published = Q(
        is_hidden=False,
        deleted_at__isnull=True,
        topic__is_hidden=False,
        topic__deleted_at__isnull=True,
    )
    if member is None:
        return queryset.filter(
            is_published, topic__space__visibility=Space.Visibility.PUBLIC
        )
    return queryset.filter(
        _visible_space_q(member=member, prefix="topic__space__")
    ).filter(is_published | _moderated_q(member=member, prefix="topic__space__"))


def get_viewer(user) -> tuple[Member | None, bool]:
    """Return the member of a request's user (None if there is none) and is_staff."""
    if user is None or isinstance(user, AnonymousUser):
        return None, False
    return get_member_for_user(user), bool(user.is_staff)
