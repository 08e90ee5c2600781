"""Sign-in access: deactivation, sign-in rules, sign-in times, new members."""

from datetime import datetime

from allauth.account import app_settings as account_settings
from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from apps.membership.models import AuditEntry, Member
from apps.membership.selectors import get_member_for_user
from apps.membership.selectors.sso import is_sso_required_for_email
from apps.membership.services import create_member, join_account_by_verified_email
from apps.membership.services.roles import sync_role_groups
from rm6.errors import DomainError

SSO_REQUIRED_MESSAGE = (
    "Your company requires single sign-on for the hub, so password sign-in is "
    "turned off for your address. Sign in with your company's SSO instead."
)
INACTIVE_MESSAGE = "This member is deactivated and cannot sign in."
DEACTIVATION_REASON_MAX_LENGTH = Member._meta.get_field(
    "deactivation_reason"
).max_length


@transaction.atomic
def deactivate_member(*, member: Member, actor=None, reason: str = "") -> Member:
    """Stop a member from signing in by any route, password or SSO.

    Sets the member's `deactivated_at` and its user's `is_active` to False,
    and takes away the rights of its role. Django's authentication backends
    return no user for an inactive one, so sessions the member already has
    stop working on their next request. Deactivating a deactivated member
    changes nothing.
    """
    if len(reason) > DEACTIVATION_REASON_MAX_LENGTH:
        raise DomainError(
            f"The reason is {len(reason)} characters long; the maximum is "
            f"{DEACTIVATION_REASON_MAX_LENGTH}. Shorten it.",
            field="reason",
        )
    member = Member.objects.select_for_update().select_related("user").get(pk=member.pk)
    user = member.user
    if member.deactivated_at is not None and not user.is_active:
        return member

    if member.deactivated_at is None:
        member.deactivated_at = timezone.now()
        member.deactivation_reason = reason
        member.save(update_fields=["deactivated_at", "deactivation_reason"])
    if user.is_active:
        user.is_active = False
        user.save(update_fields=["is_active"])
    sync_role_groups(member)

    AuditEntry.objects.create(
        actor=actor,
        action="member.deactivated",
        member=member,
        account_id=member.account_id,
        details={"reason": member.deactivation_reason},
    )
    return member


@transaction.atomic
def reactivate_member(*, member: Member, actor=None) -> Member:
    """Let a deactivated member sign in again, with the rights of its role.

    A member merged into another, or one that deleted their account, stays
    deactivated: reactivating it raises DomainError.
    """
    member = Member.objects.select_for_update().select_related("user").get(pk=member.pk)
    if member.merged_into_id is not None:
        raise DomainError(
            f"Member {member.pk} was merged into member {member.merged_into_id}; "
            "reactivate that member instead.",
            code="merged",
        )
    if member.anonymised_at is not None:
        raise DomainError(
            f"Member {member.pk} deleted their account and was anonymised, so it "
            "cannot be reactivated.",
            code="anonymised",
        )
    user = member.user
    if member.deactivated_at is None and user.is_active:
        return member

    previous_reason = member.deactivation_reason
    member.deactivated_at = None
    member.deactivation_reason = ""
    member.save(update_fields=["deactivated_at", "deactivation_reason"])
    if not user.is_active:
        user.is_active = True
        user.save(update_fields=["is_active"])
    sync_role_groups(member)

    AuditEntry.objects.create(
        actor=actor,
        action="member.reactivated",
        member=member,
        account_id=member.account_id,
        details={"previous_reason": previous_reason},
    )
    return member


def record_sign_in(*, member: Member, at: datetime) -> Member:
    """Store a sign-in time: as the first sign-in once, as the last every time.

    One UPDATE statement sets both columns under the row's lock, so when two
    sign-ins race, the first time stays the one written first and the last
    time never moves backwards.
    """
    Member.objects.filter(pk=member.pk).update(
        first_signed_in_at=Coalesce(F("first_signed_in_at"), Value(at)),
        last_signed_in_at=Greatest(
            Coalesce(F("last_signed_in_at"), Value(at)), Value(at)
        ),
    )
    member.refresh_from_db(fields=["first_signed_in_at", "last_signed_in_at"])
    return member


def check_member_active(*, user) -> None:
    """Raise DomainError for an inactive user or a deactivated member.

    `deactivate_member` keeps the two in step; this check also covers a user
    whose `is_active` flag was set back by hand.
    """
    member = get_member_for_user(user)
    if not user.is_active or (member is not None and member.is_deactivated):
        raise DomainError(INACTIVE_MESSAGE, code="inactive")


def check_password_sign_in(*, email: str, user=None) -> None:
    """Raise DomainError when this sign-in must go through SSO instead.

    Covers every sign-in that does not come from an SSO provider: a password,
    and the sign-in that follows sign-up or email confirmation. It is rejected
    when an account that requires SSO lists the address's domain, or owns the
    user's member. Call it with the email alone before checking a password,
    so that the rejection does not depend on whether the address has a user.
    """
    if is_sso_required_for_email(email=email):
        raise DomainError(SSO_REQUIRED_MESSAGE, field="email", code="sso_required")
    if user is None:
        return
    member = get_member_for_user(user)
    if member is not None and member.account and member.account.is_sso_required:
        raise DomainError(SSO_REQUIRED_MESSAGE, field="email", code="sso_required")


def is_email_verification_mandatory() -> bool:
    return (
        account_settings.EMAIL_VERIFICATION
        == account_settings.EmailVerificationMethod.MANDATORY
    )


@transaction.atomic
def create_member_on_sign_up(*, user, is_email_verified: bool) -> Member | None:
    """Create the member for a user who signed up with email and password.

    The member joins the account that lists the email's domain only once the
    address is verified, so nobody reaches a customer's private spaces or
    data by typing an address they don't own. When verification is
    mandatory, no member exists until `create_member_on_email_verification`
    creates it; when optional, the member starts without an account and
    joins on verification.
    """
    if is_email_verified:
        return create_member(user=user)
    if is_email_verification_mandatory():
        return None
    return create_member(user=user, match_domain=False)


@transaction.atomic
def create_member_on_email_verification(*, user, email: str) -> Member | None:
    """Create the member whose joining waited for its email to be verified.

    Creates nothing for staff or for an address other than the user's own
    email, and returns an existing member unchanged.
    """
    if user.is_staff or email.strip().lower() != user.email.strip().lower():
        return None
    member = create_member(user=user)
    return join_account_by_verified_email(member=member)
