"""Segment identities: tying user IDs to members, and erasing and exporting them.

Identify and alias messages, and staff matching held messages, tie a source's
user ID to a member. The ID fills the member's empty external ID where the
caller allows it, which alias messages never do, and otherwise becomes the
member's identity at that source, a SegmentIdentity row. Member anonymisation
and the member data export call the erase and export functions as handlers.
"""

import logging

from django.db import IntegrityError, transaction

from apps.lifecycle.models import SegmentIdentity
from apps.membership.models import AuditEntry, Member

logger = logging.getLogger(__name__)

MAX_EXTERNAL_ID_LENGTH = 100


def erase_member_segment_identities(*, member: Member) -> int:
    """Delete the user IDs that sources tied to an anonymised member."""
    deleted, _ = SegmentIdentity.objects.filter(member=member).delete()
    return deleted


def export_member_segment_identities(member: Member) -> dict:
    """Return the user IDs that sources tied to the member, for their export."""
    identities = SegmentIdentity.objects.filter(member=member).select_related("source")
    return {
        "identities": [
            {
                "source": identity.source.name,
                "user_id": identity.user_id,
                "linked_at": identity.created_at,
            }
            for identity in identities.order_by("pk")
        ]
    }


def _link_user_id(
    *,
    member: Member,
    user_id: str,
    source_id: int,
    actor,
    may_set_external_id: bool = True,
) -> bool:
    """Tie a source's user ID to the member and return whether it now matches.

    The ID becomes the member's external ID when the member has none, it
    fits and `may_set_external_id`. Otherwise it is stored as the member's
    identity at that source. An ID that is another member's external ID or
    email, or that the source already ties to another member, is not tied.
    """
    if _is_other_members_email(user_id, member):
        logger.info(
            "segment identity not linked: the id is another member's email: "
            "member=%s source=%s",
            member.pk,
            source_id,
        )
        return False
    fits_external_id = len(user_id) <= MAX_EXTERNAL_ID_LENGTH
    may_set = may_set_external_id and fits_external_id and not member.external_id
    if member.external_id == user_id or may_set:
        return _link_external_id(
            member=member, external_id=user_id, source_id=source_id, actor=actor
        )
    if Member.objects.filter(external_id=user_id).exists():
        logger.info(
            "segment identity not linked: another member has the external id: "
            "member=%s source=%s",
            member.pk,
            source_id,
        )
        return False
    identity, created = SegmentIdentity.objects.get_or_create(
        source_id=source_id, user_id=user_id, defaults={"member": member}
    )
    if identity.member_id != member.pk:
        logger.info(
            "segment identity not linked: the source ties it to another member: "
            "member=%s source=%s",
            member.pk,
            source_id,
        )
        return False
    if created:
        AuditEntry.objects.create(
            actor=actor,
            action="member.segment_identity_linked",
            member=member,
            account_id=member.account_id,
            details={"user_id": user_id, "segment_source_id": source_id},
        )
        logger.info(
            "segment identity linked: member=%s source=%s", member.pk, source_id
        )
    return True


def _is_other_members_email(user_id: str, member: Member) -> bool:
    """Return whether the ID is the email of a member other than `member`.

    Messages whose userId is an email match the member with that email, so
    tying it to someone else would send that person's usage to them.
    """
    if "@" not in user_id:
        return False
    return (
        Member.objects.filter(user__email__iexact=user_id.strip())
        .exclude(pk=member.pk)
        .exists()
    )


def _link_external_id(
    *, member: Member, external_id: str, source_id: int, actor
) -> bool:
    """Set the member's empty external ID and return whether it now matches.

    A member with another external ID keeps it. An ID that another member
    already has is left with that member, since the unique constraint on
    external IDs rejects the update.
    """
    if member.external_id:
        if member.external_id != external_id:
            logger.info(
                "external id not linked: member has another: member=%s source=%s",
                member.pk,
                source_id,
            )
        return member.external_id == external_id
    if len(external_id) > MAX_EXTERNAL_ID_LENGTH:
        logger.info(
            "external id not linked: longer than %d characters: member=%s",
            MAX_EXTERNAL_ID_LENGTH,
            member.pk,
        )
        return False

    try:
        with transaction.atomic():
            linked = Member.objects.filter(pk=member.pk, external_id="").update(
                external_id=external_id
            )
    except IntegrityError:
        logger.warning(
            "external id not linked: another member has it: member=%s source=%s",
            member.pk,
            source_id,
        )
        return False
    if not linked:
        # A concurrent request linked another ID since the member was read.
        return False

    member.external_id = external_id
    AuditEntry.objects.create(
        actor=actor,
        action="member.external_id_linked",
        member=member,
        account_id=member.account_id,
        details={"external_id": external_id, "segment_source_id": source_id},
    )
    logger.info("external id linked: member=%s source=%s", member.pk, source_id)
    return True
