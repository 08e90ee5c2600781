import logging

from allauth.account.models import EmailAddress
from allauth.socialaccount.models import SocialAccount
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from rest_framework.authtoken.models import Token

from apps.membership.anonymisation import run_anonymise_handlers
from apps.membership.models import (
    AuditEntry,
    ConsentGrant,
    Member,
    list_time_zone_names,
)
from apps.membership.names import validate_display_name
from apps.membership.selectors.profiles import (
    DEACTIVATED_MEMBER_NAME,
    DELETED_MEMBER_NAME,
)
from apps.membership.services.consent import revoke_consent
from apps.membership.services.roles import sync_role_groups
from rm6.errors import DomainError

logger = logging.getLogger(__name__)

# The hub shows these names for members who are gone. A member may not take
# one, because their posts would then look like a deleted member's.
RESERVED_DISPLAY_NAMES = frozenset(
    name.casefold() for name in (DELETED_MEMBER_NAME, DEACTIVATED_MEMBER_NAME)
)
TEXT_LIMITS = {"display_name": 150, "headline": 150, "bio": 2000}
VISIBILITY_FIELDS = ("show_headline", "show_bio", "show_account", "show_activity")


def list_locale_choices() -> list[tuple[str, str]]:
    """Return the (code, name) pairs a member may choose, from settings.LANGUAGES."""
    return [(code, str(name)) for code, name in settings.LANGUAGES]


def _clean_text(value: str, *, field: str) -> str:
    value = value.strip()
    limit = TEXT_LIMITS[field]
    if len(value) > limit:
        label = field.replace("_", " ")
        raise DomainError(
            f"The {label} has {len(value)} characters; the maximum is {limit}. "
            "Shorten it and save again.",
            field=field,
        )
    return value


def _clean_time_zone(value: str) -> str:
    value = value.strip()
    if value not in list_time_zone_names():
        raise DomainError(
            f"Invalid time zone {value!r}: use an IANA time zone name such as "
            "Europe/Paris or America/New_York.",
            field="time_zone",
        )
    return value


def _clean_locale(value: str) -> str:
    codes = [code for code, _ in list_locale_choices()]
    if value not in codes:
        raise DomainError(
            f"Invalid language {value!r}: choose one of the listed languages, "
            "for example en or fr.",
            field="locale",
        )
    return value


def _clean_email_notifications(value: str) -> str:
    if value not in Member.EmailNotifications.values:
        choices = ", ".join(Member.EmailNotifications.values)
        raise DomainError(
            f"Invalid email notification setting {value!r}: use one of {choices}.",
            field="email_notifications",
        )
    return value


@transaction.atomic
def update_profile(
    *,
    member: Member,
    display_name: str | None = None,
    headline: str | None = None,
    bio: str | None = None,
    time_zone: str | None = None,
    locale: str | None = None,
    email_notifications: str | None = None,
    in_app_notifications: bool | None = None,
    show_headline: bool | None = None,
    show_bio: bool | None = None,
    show_account: bool | None = None,
    show_activity: bool | None = None,
) -> Member:
    """Change the member's own profile and settings; None leaves a field as is.

    Raise DomainError naming the first invalid value and its fix, and change
    nothing in that case.
    """
    if member.anonymised_at is not None:
        raise DomainError(
            "This account is deleted, so its profile cannot change.",
            code="forbidden",
        )
    changes: dict[str, object] = {}
    if display_name is not None:
        display_name = _clean_text(display_name, field="display_name")
        if display_name.casefold() in RESERVED_DISPLAY_NAMES:
            raise DomainError(
                f"The display name {display_name!r} is reserved for members "
                "who left; choose another name.",
                field="display_name",
            )
        if display_name != member.display_name:
            validate_display_name(display_name, member=member)
        changes["display_name"] = display_name
    if headline is not None:
        changes["headline"] = _clean_text(headline, field="headline")
    if bio is not None:
        changes["bio"] = _clean_text(bio, field="bio")
    if time_zone is not None:
        changes["time_zone"] = _clean_time_zone(time_zone)
    if locale is not None:
        changes["locale"] = _clean_locale(locale)
    if email_notifications is not None:
        changes["email_notifications"] = _clean_email_notifications(email_notifications)
    switches = {
        "in_app_notifications": in_app_notifications,
        "show_headline": show_headline,
        "show_bio": show_bio,
        "show_account": show_account,
        "show_activity": show_activity,
    }
    changes.update(
        {name: value for name, value in switches.items() if value is not None}
    )

    changed_fields = [
        name for name, value in changes.items() if getattr(member, name) != value
    ]
    if not changed_fields:
        return member
    for name in changed_fields:
        setattr(member, name, changes[name])
    member.save(update_fields=changed_fields)
    return member


@transaction.atomic
def delete_member_account(*, member: Member, actor) -> Member:
    """Anonymise the member and close their user account for good.

    Their personal data goes: name, email, profile text, external ID, email
    addresses, SSO links and API tokens. Unrevoked consents are revoked, and
    the user can no longer sign in. Topics, replies, activity events and
    points stay, now shown as "Deleted member", so every count that
    includes them stays true. `actor` is the user who asked: the member
    themselves, staff, or None for a system process. Calling it again for an
    anonymised member changes nothing.
    """
    member = Member.objects.select_for_update().select_related("user").get(pk=member.pk)
    if member.anonymised_at is not None:
        return member
    user = member.user
    is_own_request = actor is not None and actor.pk == user.pk
    if actor is not None and not is_own_request and not actor.is_staff:
        raise DomainError(
            f"You may not delete the account of {member.name}: members delete "
            "their own account, and staff any account.",
            code="forbidden",
        )
    now = timezone.now()

    # The new password hash also ends every session of the user: Django
    # checks a hash of the password on each request and drops a session
    # whose hash no longer matches. An inactive user cannot sign in again.
    user.email = f"deleted-{user.pk}@invalid"
    user.username = f"deleted-{user.pk}"
    user.first_name = ""
    user.last_name = ""
    user.is_active = False
    user.set_unusable_password()
    user.save(
        update_fields=[
            "email",
            "username",
            "first_name",
            "last_name",
            "is_active",
            "password",
        ]
    )
    EmailAddress.objects.filter(user=user).delete()
    SocialAccount.objects.filter(user=user).delete()
    Token.objects.filter(user=user).delete()

    member.display_name = DELETED_MEMBER_NAME
    member.headline = ""
    member.bio = ""
    member.external_id = ""
    member.email_notifications = Member.EmailNotifications.OFF
    member.in_app_notifications = False
    for name in VISIBILITY_FIELDS:
        setattr(member, name, False)
    member.anonymised_at = now
    update_fields = [
        "display_name",
        "headline",
        "bio",
        "external_id",
        "email_notifications",
        "in_app_notifications",
        *VISIBILITY_FIELDS,
        "anonymised_at",
    ]
    if member.deactivated_at is None:
        # A deleted member is deactivated too, so every query that leaves
        # out deactivated members leaves this one out.
        member.deactivated_at = now
        member.deactivation_reason = "The member deleted their account."
        update_fields += ["deactivated_at", "deactivation_reason"]
    member.save(update_fields=update_fields)
    erased = run_anonymise_handlers(member=member)

    revoked_source = (
        ConsentGrant.Source.PRIVACY_PAGE
        if is_own_request
        else ConsentGrant.Source.ADMIN
    )
    unrevoked = ConsentGrant.objects.filter(member=member, revoked_at__isnull=True)
    purpose_keys = list(unrevoked.values_list("purpose__key", flat=True))
    for purpose_key in purpose_keys:
        revoke_consent(
            member=member,
            purpose_key=purpose_key,
            source=revoked_source,
            at=now,
            recorded_by=actor,
        )
    sync_role_groups(member)

    if actor is None:
        requested_by = "system"
    else:
        requested_by = "member" if is_own_request else "staff"
    AuditEntry.objects.create(
        actor=actor,
        action="member.anonymised",
        member=member,
        account_id=member.account_id,
        details={"requested_by": requested_by, "consents_revoked": len(purpose_keys)},
    )
    logger.info(
        "member anonymised: member=%s consents_revoked=%s copies_erased=%s",
        member.pk,
        len(purpose_keys),
        erased,
    )
    return member
