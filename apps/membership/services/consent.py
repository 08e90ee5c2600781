"""Grant and revoke members' consents, with evidence and an audit row each."""

import zoneinfo
from datetime import UTC, date, datetime, time, timedelta

from django.db import transaction
from django.utils import timezone

from apps.membership.models import AuditEntry, ConsentGrant, ConsentPurpose, Member
from rm6.errors import DomainError


def get_member_time_zone(member: Member) -> zoneinfo.ZoneInfo:
    """Return the member's time zone, raising DomainError for an unknown name."""
    try:
        return zoneinfo.ZoneInfo(member.time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise DomainError(
            f"Member {member.pk} has the time zone {member.time_zone!r}, which "
            "is not a known IANA time zone. Set a name such as Europe/Paris on "
            "the member in admin, then try again.",
            field="time_zone",
        ) from None


def compute_expires_at(*, expires_on: date, zone: zoneinfo.ZoneInfo) -> datetime:
    """Return the first instant after `expires_on` ends in `zone`, in UTC.

    That instant is midnight at the start of the next day. Where a DST change
    skips local midnight, zoneinfo reads the skipped time with the offset in
    force before the change, which gives the instant of the change itself.
    Where local midnight happens twice, fold=0 picks the first one.
    """
    next_day = expires_on + timedelta(days=1)
    local_midnight = datetime.combine(next_day, time.min, tzinfo=zone)
    return local_midnight.astimezone(UTC)


def _get_purpose(purpose_key: str, *, require_active: bool) -> ConsentPurpose:
    purpose = ConsentPurpose.objects.filter(key=purpose_key).first()
    if purpose is not None and (purpose.is_active or not require_active):
        return purpose

    valid_purposes = ConsentPurpose.objects.all()
    if require_active:
        valid_purposes = valid_purposes.filter(is_active=True)
    valid_keys = ", ".join(valid_purposes.values_list("key", flat=True)) or "none"
    if purpose is None:
        problem, code = "does not exist", "unknown_purpose"
    else:
        problem, code = "is not active", "inactive_purpose"
    raise DomainError(
        f"Consent purpose {purpose_key!r} {problem}. Use one of: {valid_keys}.",
        field="purpose",
        code=code,
    )


def _check_source(source: str) -> None:
    if source not in ConsentGrant.Source.values:
        raise DomainError(
            f"Consent source {source!r} is not valid. "
            f"Use one of: {', '.join(ConsentGrant.Source.values)}.",
            field="source",
        )


def _lock_member(member: Member) -> Member:
    # Every consent write for a member takes this row lock first, so two
    # writers for the same member run one after the other.
    return Member.objects.select_for_update().get(pk=member.pk)


@transaction.atomic
def grant_consent(
    *,
    member: Member,
    purpose_key: str,
    source: str,
    evidence: str,
    expires_on: date | None = None,
    granted_at: datetime | None = None,
    recorded_by=None,
) -> ConsentGrant:
    """Record a member's consent for a purpose, replacing any current grant.

    The previous unrevoked grant for the purpose, if there is one, is revoked
    at the new grant's time with the same source. `expires_on` is the last
    day of validity in the member's time zone. `granted_at` defaults to now
    and may be earlier, for consents collected elsewhere and imported later.
    """
    now = timezone.now()
    evidence = evidence.strip()
    _check_source(source)
    if not evidence:
        raise DomainError(
            "Evidence is missing. Describe what the member saw and did, for "
            "example the text of the form they submitted.",
            field="evidence",
        )
    if granted_at is not None and granted_at > now:
        raise DomainError(
            f"The grant time {granted_at.isoformat()} is in the future. "
            "Give the time the member gave consent, or leave it out for now.",
            field="granted_at",
        )
    purpose = _get_purpose(purpose_key, require_active=True)

    member = _lock_member(member)
    # A grant made now is timed after the lock, so a concurrent grant that
    # held the lock first is always the older one.
    if granted_at is None:
        now = granted_at = timezone.now()
    if member.anonymised_at is not None:
        raise DomainError(
            f"Member {member.pk} is anonymised, so no consent can be recorded "
            "for them.",
            code="inactive_member",
        )
    if member.deactivated_at is not None:
        raise DomainError(
            f"Member {member.pk} is deactivated, so no consent can be recorded "
            "for them. Reactivate the member first.",
            code="inactive_member",
        )
    zone = get_member_time_zone(member)
    expires_at = None
    if expires_on is not None:
        today = timezone.localdate(now, zone)
        if expires_on < today:
            raise DomainError(
                f"The expiry date {expires_on.isoformat()} is in the past in the "
                f"member's time zone ({member.time_zone}, where today is "
                f"{today.isoformat()}). Give today or a later date, or no date "
                "for a consent without end.",
                field="expires_on",
            )
        expires_at = compute_expires_at(expires_on=expires_on, zone=zone)

    previous = (
        ConsentGrant.objects.filter(
            member=member, purpose=purpose, revoked_at__isnull=True
        )
        .order_by()
        .first()
    )
    if previous is not None:
        if previous.granted_at > granted_at:
            raise DomainError(
                f"The grant time {granted_at.isoformat()} is earlier than the "
                f"current grant's ({previous.granted_at.isoformat()}). Record "
                "only consents newer than the current one.",
                field="granted_at",
            )
        previous.revoked_at = granted_at
        previous.revoked_source = source
        previous.save(update_fields=["revoked_at", "revoked_source"])

    grant = ConsentGrant.objects.create(
        member=member,
        purpose=purpose,
        source=source,
        evidence=evidence,
        granted_at=granted_at,
        expires_on=expires_on,
        expires_at=expires_at,
        recorded_by=recorded_by,
    )

    AuditEntry.objects.create(
        actor=recorded_by,
        action="consent_granted",
        member=member,
        account_id=member.account_id,
        details={
            "grant_id": grant.pk,
            "purpose_key": purpose.key,
            "source": source,
            "replaced_grant_id": previous.pk if previous else None,
        },
    )
    return grant


@transaction.atomic
def revoke_consent(
    *,
    member: Member,
    purpose_key: str,
    source: str,
    at: datetime | None = None,
    recorded_by=None,
) -> ConsentGrant | None:
    """Revoke the member's current grant for a purpose, effective at once.

    Return the revoked grant, or None when no unrevoked grant exists, in
    which case nothing changes. Grants for inactive purposes can be revoked
    too. `at` defaults to now and may be earlier, but not later: a grant with
    a future revocation would count as revoked for the one-unrevoked-grant
    constraint while `has_consent` still accepts it.
    """
    now = timezone.now()
    at = at or now
    _check_source(source)
    if at > now:
        raise DomainError(
            f"The revocation time {at.isoformat()} is in the future. Give the "
            "time the member withdrew consent, or leave it out for now.",
            field="at",
        )
    purpose = _get_purpose(purpose_key, require_active=False)

    member = _lock_member(member)
    grant = (
        ConsentGrant.objects.filter(
            member=member, purpose=purpose, revoked_at__isnull=True
        )
        .order_by()
        .first()
    )
    if grant is None:
        return None
    if at < grant.granted_at:
        raise DomainError(
            f"The revocation time {at.isoformat()} is earlier than the grant "
            f"time {grant.granted_at.isoformat()}. Give a later time, or leave "
            "it out for now.",
            field="at",
        )

    grant.revoked_at = at
    grant.revoked_source = source
    grant.save(update_fields=["revoked_at", "revoked_source"])

    AuditEntry.objects.create(
        actor=recorded_by,
        action="consent_revoked",
        member=member,
        account_id=member.account_id,
        details={"grant_id": grant.pk, "purpose_key": purpose.key, "source": source},
    )
    return grant
