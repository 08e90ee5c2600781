"""Merge a duplicate member into the member that survives."""

from allauth.account.models import EmailAddress
from allauth.socialaccount.models import SocialAccount
from django.db import transaction
from django.utils import timezone

from apps.membership.merge import OWN_HANDLER_NAME, run_merge_handlers
from apps.membership.models import AccountAffiliation, AuditEntry, ConsentGrant, Member
from apps.membership.services.roles import sync_role_groups
from rm6.errors import DomainError


def _lock_members(*ids: int) -> dict[int, Member]:
    # One row at a time in id order: two merges that share a member then
    # wait for each other instead of deadlocking.
    return {
        pk: Member.objects.select_for_update(no_key=True)
        .select_related("user")
        .get(pk=pk)
        for pk in sorted(ids)
    }


def _check_mergeable(survivor: Member, duplicate: Member) -> None:
    if duplicate.merged_into_id is not None:
        raise DomainError(
            f"Member {duplicate.pk} was already merged into member "
            f"{duplicate.merged_into_id}.",
            code="merged",
        )
    if duplicate.anonymised_at is not None:
        raise DomainError(
            f"Member {duplicate.pk} deleted their account and was anonymised, so "
            "there is nothing of theirs to merge.",
            code="anonymised",
        )
    if survivor.merged_into_id is not None:
        raise DomainError(
            f"Member {survivor.pk} was merged into member {survivor.merged_into_id}; "
            "merge into that member instead.",
            code="merged",
        )
    if survivor.anonymised_at is not None:
        raise DomainError(
            f"Member {survivor.pk} deleted their account and was anonymised, so "
            "it cannot receive another member's data.",
            code="anonymised",
        )
    if survivor.deactivated_at is not None:
        raise DomainError(
            f"Member {survivor.pk} is deactivated. Reactivate it first, or keep "
            f"member {duplicate.pk} instead.",
            code="inactive",
        )


def _move_consents(survivor: Member, duplicate: Member) -> dict[str, int]:
    current = {
        grant.purpose_id: grant
        for grant in ConsentGrant.objects.filter(
            member__in=[survivor, duplicate], revoked_at__isnull=True
        ).order_by("granted_at", "id")
    }
    # `current` now maps each purpose to its most recent unrevoked grant of
    # either member. Any other unrevoked grant for the purpose is revoked as
    # if the newer one replaced it, as `grant_consent` does.
    superseded = ConsentGrant.objects.filter(
        member__in=[survivor, duplicate], revoked_at__isnull=True
    ).exclude(pk__in=[grant.pk for grant in current.values()])
    revoked = 0
    for grant in superseded:
        newer = current[grant.purpose_id]
        grant.revoked_at = newer.granted_at
        grant.revoked_source = newer.source
        grant.save(update_fields=["revoked_at", "revoked_source"])
        revoked += 1

    moved = ConsentGrant.objects.filter(member=duplicate).update(member=survivor)
    return {"consents_moved": moved, "consents_revoked": revoked}


def _move_affiliations(survivor: Member, duplicate: Member) -> dict[str, int]:
    kept_account_ids = set(
        AccountAffiliation.objects.filter(member=survivor).values_list(
            "account_id", flat=True
        )
    )
    if survivor.account_id is not None:
        kept_account_ids.add(survivor.account_id)
    repeated = AccountAffiliation.objects.filter(
        member=duplicate, account_id__in=kept_account_ids
    )
    dropped, _ = repeated.delete()
    moved = AccountAffiliation.objects.filter(member=duplicate).update(member=survivor)
    return {"affiliations_moved": moved, "affiliations_dropped": dropped}


def _move_sign_in_identities(survivor: Member, duplicate: Member) -> dict[str, int]:
    survivor_user = survivor.user
    duplicate_user = duplicate.user
    survivor_addresses = {
        address.email.lower(): address
        for address in EmailAddress.objects.filter(user=survivor_user)
    }
    survivor_emails = {*survivor_addresses, survivor_user.email.lower()}
    moved = dropped = 0

    duplicate_addresses = list(EmailAddress.objects.filter(user=duplicate_user))
    for address in duplicate_addresses:
        email = address.email.lower()
        if email not in survivor_emails:
            address.user = survivor_user
            address.primary = False
            address.save(update_fields=["user", "primary"])
            moved += 1
            continue
        # The survivor has the address already: keep its row, verified if
        # either row was.
        address.delete()
        dropped += 1
        survivor_address = survivor_addresses.get(email)
        if (
            address.verified
            and survivor_address is not None
            and not survivor_address.verified
        ):
            survivor_address.verified = True
            survivor_address.save(update_fields=["verified"])

    # The duplicate's own email field may have no address row of its own.
    own_email = duplicate_user.email.lower()
    listed = {address.email.lower() for address in duplicate_addresses}
    if own_email and own_email not in survivor_emails and own_email not in listed:
        EmailAddress.objects.create(
            user=survivor_user, email=own_email, primary=False, verified=False
        )
        moved += 1

    # (provider, uid) is unique across all users, so a social account never
    # clashes with the survivor's own.
    social_moved = SocialAccount.objects.filter(user=duplicate_user).update(
        user=survivor_user
    )
    return {
        "email_addresses_moved": moved,
        "email_addresses_dropped": dropped,
        "social_accounts_moved": social_moved,
    }


def _merge_profile(survivor: Member, duplicate: Member, details: dict) -> None:
    changed = []
    if survivor.account_id is None and duplicate.account_id is not None:
        survivor.account_id = duplicate.account_id
        changed.append("account")
        details["account_taken_from_duplicate"] = duplicate.account_id
    elif duplicate.account_id not in (None, survivor.account_id):
        details["duplicate_account_id"] = duplicate.account_id
        details["survivor_account_id"] = survivor.account_id

    if duplicate.external_id and not survivor.external_id:
        survivor.external_id = duplicate.external_id
        changed.append("external_id")
        # The external ID is unique, so the duplicate gives it up first.
        duplicate.external_id = ""
        duplicate.save(update_fields=["external_id"])
        details["external_id_taken_from_duplicate"] = survivor.external_id
    elif duplicate.external_id:
        details["duplicate_external_id"] = duplicate.external_id

    first_times = [
        t for t in (survivor.first_signed_in_at, duplicate.first_signed_in_at) if t
    ]
    if first_times and min(first_times) != survivor.first_signed_in_at:
        survivor.first_signed_in_at = min(first_times)
        changed.append("first_signed_in_at")
    last_times = [
        t for t in (survivor.last_signed_in_at, duplicate.last_signed_in_at) if t
    ]
    if last_times and max(last_times) != survivor.last_signed_in_at:
        survivor.last_signed_in_at = max(last_times)
        changed.append("last_signed_in_at")

    if changed:
        survivor.save(update_fields=changed)
    if "account" in changed:
        sync_role_groups(survivor)


def _deactivate_duplicate(survivor: Member, duplicate: Member) -> None:
    # Written here rather than through access.deactivate_member, which keeps
    # an earlier deactivation's reason, because the reason of a merged member
    # names the survivor.
    duplicate.deactivated_at = duplicate.deactivated_at or timezone.now()
    duplicate.deactivation_reason = f"merged into member {survivor.pk}"
    duplicate.merged_into = survivor
    duplicate.save(
        update_fields=["deactivated_at", "deactivation_reason", "merged_into"]
    )
    user = duplicate.user
    if user.is_active:
        user.is_active = False
        user.save(update_fields=["is_active"])
    sync_role_groups(duplicate)


@transaction.atomic
def merge_members(*, survivor: Member, duplicate: Member, actor) -> AuditEntry:
    """Move everything of a duplicate member to the survivor, then deactivate it.

    Membership moves consents, affiliations, email addresses and SSO
    identities itself, and the handlers other apps register in
    `apps.membership.merge` move their rows. The survivor keeps its account,
    role and profile. It takes the duplicate's account or external ID only
    where it has none. When both members have accounts and they differ, the
    audit entry notes both. The duplicate stays, deactivated and
    pointing at the survivor, so that append-only records keep their member.
    Raises DomainError for a merge into itself, into a deactivated, merged
    or anonymised member, or of a duplicate already merged.
    """
    if survivor.pk == duplicate.pk:
        raise DomainError(
            f"Member {survivor.pk} cannot be merged into itself; choose two "
            "different members.",
            code="same_member",
        )
    locked = _lock_members(survivor.pk, duplicate.pk)
    survivor, duplicate = locked[survivor.pk], locked[duplicate.pk]
    _check_mergeable(survivor, duplicate)

    details: dict = {"duplicate_id": duplicate.pk, "duplicate_email": duplicate.email}
    _merge_profile(survivor, duplicate, details)
    own_counts = {
        **_move_consents(survivor, duplicate),
        **_move_affiliations(survivor, duplicate),
        **_move_sign_in_identities(survivor, duplicate),
    }
    counts = {
        OWN_HANDLER_NAME: own_counts,
        **run_merge_handlers(survivor=survivor, duplicate=duplicate),
    }
    _deactivate_duplicate(survivor, duplicate)

    details["counts"] = counts
    return AuditEntry.objects.create(
        actor=actor,
        action="member.merged",
        member=survivor,
        account_id=survivor.account_id,
        details=details,
    )
