"""Read members' consents.

`has_consent` is the one check that every feature needing consent calls, and
`filter_members_with_consent` applies the same rule to a queryset. A consent
is valid at an instant when the member is neither deactivated nor anonymised,
its purpose is active, and one grant was made at or before that instant and
was neither revoked nor expired by then. Grants for an inactive purpose never
count, because the privacy page lists only active purposes and the member
could not see or withdraw them there.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet
from django.utils import timezone

from apps.membership.models import ConsentGrant, ConsentPurpose, Member
from apps.membership.selectors import get_member_for_user


def _valid_grants(*, purpose_key: str, at: datetime) -> QuerySet[ConsentGrant]:
    return ConsentGrant.objects.filter(
        Q(revoked_at__isnull=True) | Q(revoked_at__gt=at),
        Q(expires_at__isnull=True) | Q(expires_at__gt=at),
        purpose__key=purpose_key,
        purpose__is_active=True,
        granted_at__lte=at,
    )


def has_consent(
    *, member: Member, purpose_key: str, at: datetime | None = None
) -> bool:
    """Return whether the member's consent for the purpose is valid at `at`.

    `at` defaults to now. An unknown or inactive purpose key returns False,
    so a misspelt key denies instead of allowing. The member's deactivation
    and anonymisation are read from the database, not from the instance.
    """
    at = at or timezone.now()
    grants = _valid_grants(purpose_key=purpose_key, at=at).filter(
        member_id=member.pk,
        member__deactivated_at__isnull=True,
        member__anonymised_at__isnull=True,
    )
    return grants.exists()


def filter_members_with_consent(
    members: QuerySet[Member], purpose_key: str, at: datetime | None = None
) -> QuerySet[Member]:
    """Return the members of a queryset whose consent is valid at `at`.

    It applies the rule of `has_consent` in one query, for audiences of plays
    and other bulk work.
    """
    at = at or timezone.now()
    grants = _valid_grants(purpose_key=purpose_key, at=at)
    return members.filter(
        Exists(grants.filter(member_id=OuterRef("pk"))),
        deactivated_at__isnull=True,
        anonymised_at__isnull=True,
    )


@dataclass(frozen=True)
class ConsentStatus:
    """An active purpose with the member's current grant, as of one instant."""

    GRANTED = "granted"
    EXPIRED = "expired"
    NOT_GRANTED = "not_granted"

    purpose: ConsentPurpose
    grant: ConsentGrant | None
    state: str
    is_valid: bool


def _get_state(grant: ConsentGrant | None, at: datetime) -> str:
    if grant is None or grant.granted_at > at:
        return ConsentStatus.NOT_GRANTED
    if grant.expires_at is not None and grant.expires_at <= at:
        return ConsentStatus.EXPIRED
    return ConsentStatus.GRANTED


def list_consent_status(
    member: Member, at: datetime | None = None
) -> list[ConsentStatus]:
    """Return every active purpose with the member's unrevoked grant, if any.

    It runs two queries however many purposes and grants exist. `is_valid`
    agrees with `has_consent` for the same instant, using the deactivation
    and anonymisation times of the given instance.
    """
    at = at or timezone.now()
    current_grants = ConsentGrant.objects.filter(
        member_id=member.pk, revoked_at__isnull=True
    )
    purposes = ConsentPurpose.objects.filter(is_active=True).prefetch_related(
        Prefetch("grants", queryset=current_grants, to_attr="current_grants")
    )
    is_member_active = member.deactivated_at is None and member.anonymised_at is None

    statuses = []
    for purpose in purposes:
        # The partial unique constraint allows one unrevoked grant at most.
        grant = purpose.current_grants[0] if purpose.current_grants else None
        state = _get_state(grant, at)
        statuses.append(
            ConsentStatus(
                purpose=purpose,
                grant=grant,
                state=state,
                is_valid=is_member_active and state == ConsentStatus.GRANTED,
            )
        )
    return statuses


def list_consent_history(member: Member) -> QuerySet[ConsentGrant]:
    """Return all of the member's grants for any purpose, newest first."""
    return (
        ConsentGrant.objects.filter(member_id=member.pk)
        .select_related("purpose")
        .order_by("-granted_at", "-id")
    )


def access_consent_member(*, user, member_id: int) -> Member:
    """Return the member whose consents the user may read and change.

    Staff, including integration users, may open any member, and a member
    only themselves; account admins get no access to colleagues' consents.
    Raise Member.DoesNotExist otherwise, so callers return 404 whether the
    member exists or not.
    """
    if user.is_authenticated and user.is_staff:
        return Member.objects.select_related("user").get(pk=member_id)
    member = get_member_for_user(user)
    if member is None or member.pk != member_id:
        raise Member.DoesNotExist(f"Member {member_id} not found.")
    return member


def list_api_consent_sources(*, user) -> list[str]:
    """Return the grant and revocation sources the user may record by API.

    Staff integrations relay consents collected elsewhere, so they may name
    any source. A member's own request is always recorded as `api`.
    """
    if user.is_staff:
        return list(ConsentGrant.Source.values)
    return [ConsentGrant.Source.API]
