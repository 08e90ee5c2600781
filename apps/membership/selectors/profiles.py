from dataclasses import dataclass

from apps.membership.models import Member

DELETED_MEMBER_NAME = "Deleted member"
DEACTIVATED_MEMBER_NAME = "Deactivated member"


@dataclass(frozen=True)
class PublicProfile:
    """The part of a member's profile that other members see, as the member chose.

    A field the member keeps private is None, so a template cannot show it
    by mistake.
    """

    member_id: int
    name: str
    is_deleted: bool = False
    is_deactivated: bool = False
    headline: str | None = None
    bio: str | None = None
    account_name: str | None = None
    shows_activity: bool = False


def get_public_profile(*, member: Member) -> PublicProfile:
    """Return the member's public profile, honouring their visibility switches.

    A deleted (anonymised) or deactivated member shows only that status.
    """
    if member.anonymised_at is not None:
        return PublicProfile(
            member_id=member.pk, name=DELETED_MEMBER_NAME, is_deleted=True
        )
    if member.is_deactivated:
        return PublicProfile(
            member_id=member.pk, name=DEACTIVATED_MEMBER_NAME, is_deactivated=True
        )
    account = member.account
    return PublicProfile(
        member_id=member.pk,
        name=member.name,
        headline=(member.headline or None) if member.show_headline else None,
        bio=(member.bio or None) if member.show_bio else None,
        account_name=account.name if member.show_account and account else None,
        shows_activity=member.show_activity,
    )


def can_see_member_activity(*, member: Member, viewer) -> bool:
    """Return whether `viewer` may list the member's posts in one place.

    The member and staff always may; others only while the member shows
    their activity and is neither deleted nor deactivated.
    """
    if viewer.is_staff or viewer.pk == member.user_id:
        return True
    return (
        member.show_activity
        and member.anonymised_at is None
        and not member.is_deactivated
    )
