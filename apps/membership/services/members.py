"""Create and update members, with their users, from integrations and imports.

A member created here gets a user with the email in lower case and no
usable password, so the person signs in through SSO or sets a password with
a reset link.
"""

from typing import Any

from allauth.account.models import EmailAddress
from allauth.utils import generate_unique_username
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import connection, transaction
from django.db.models import Q

from apps.membership.models import Account, Member
from apps.membership.names import validate_display_name
from apps.membership.selectors.accounts import get_account_by_external_id
from apps.membership.services import create_member, find_account_for_email
from apps.membership.services.accounts import check_time_zone
from apps.membership.services.roles import change_member_role, sync_role_groups
from rm6.errors import DomainError

User = get_user_model()

# The key of the advisory lock that serialises creating members here, so
# two requests for one new person cannot both create a user.
MEMBER_CREATE_LOCK_KEY = 0x726D_365F_6D65_6D62

MEMBER_FIELDS = frozenset(
    {
        "display_name",
        "account_external_id",
        "role",
        "lifecycle_stage",
        "time_zone",
        "external_id",
    }
)
# A chain of merges is followed this far to find the surviving member.
MAX_MERGE_HOPS = 10


def clean_email(value: str) -> str:
    """Return the address in lower case, raising DomainError for an invalid one."""
    email = (value or "").strip().lower()
    if not email:
        raise DomainError("The email is missing.", field="email")
    try:
        validate_email(email)
    except ValidationError:
        raise DomainError(
            f"{value!r} is not a valid email address.", field="email"
        ) from None
    return email


def _lock_member_creation() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [MEMBER_CREATE_LOCK_KEY])


def _get_survivor(member: Member) -> Member:
    for _ in range(MAX_MERGE_HOPS):
        if member.merged_into_id is None:
            return member
        member = (
            Member.objects.select_for_update()
            .select_related("user")
            .get(pk=member.merged_into_id)
        )
    raise DomainError(
        f"Member {member.pk} is at the end of more than {MAX_MERGE_HOPS} merges; "
        "check the merged_into chain in admin.",
        field="email",
    )


def find_member_by_email(email: str) -> Member | None:
    """Return the member whose user has `email`, in any letter case, locked.

    Both a user's own email and their added addresses count. A merged member
    leads to the member it was merged into. Raises DomainError when the
    address leads to several members.
    """
    candidates = (
        Member.objects.select_for_update(of=("self",))
        .select_related("user")
        .filter(
            Q(user__email__iexact=email) | Q(user__emailaddress__email__iexact=email)
        )
        .order_by("pk")
    )
    # The join to added addresses can repeat a member, and the dict keeps
    # one entry per surviving member.
    members = {}
    for candidate in candidates:
        survivor = _get_survivor(candidate)
        members[survivor.pk] = survivor
    if len(members) > 1:
        ids = ", ".join(str(pk) for pk in sorted(members))
        raise DomainError(
            f"The email {email} belongs to several members ({ids}). Merge them "
            "in admin first.",
            field="email",
            code="conflict",
        )
    return next(iter(members.values()), None)


def _check_values(values: dict[str, Any]) -> None:
    if "display_name" in values:
        values["display_name"] = (values["display_name"] or "").strip()
        max_length = Member._meta.get_field("display_name").max_length
        if len(values["display_name"]) > max_length:
            raise DomainError(
                f"The display name has {len(values['display_name'])} characters; "
                f"the maximum is {max_length}.",
                field="display_name",
            )
    if "role" in values and values["role"] not in Member.Role.values:
        raise DomainError(
            f"{values['role']!r} is not a valid role. Use one of: "
            f"{', '.join(Member.Role.values)}.",
            field="role",
        )
    if (
        "lifecycle_stage" in values
        and values["lifecycle_stage"] not in Member.LifecycleStage.values
    ):
        raise DomainError(
            f"{values['lifecycle_stage']!r} is not a valid lifecycle stage. Use "
            f"one of: {', '.join(Member.LifecycleStage.values)}.",
            field="lifecycle_stage",
        )
    if "time_zone" in values:
        check_time_zone(values["time_zone"])
    if "external_id" in values:
        values["external_id"] = (values["external_id"] or "").strip()
        max_length = Member._meta.get_field("external_id").max_length
        if len(values["external_id"]) > max_length:
            raise DomainError(
                f"The external ID has {len(values['external_id'])} characters; "
                f"the maximum is {max_length}.",
                field="external_id",
            )
    if "account_external_id" in values:
        values["account"] = _resolve_account(values.pop("account_external_id"))


def _resolve_account(external_id: str | None) -> Account | None:
    if not external_id:
        return None
    account = get_account_by_external_id(external_id)
    if account is None:
        raise DomainError(
            f"No account has the external ID {external_id!r}. Create or import "
            "the account first.",
            field="account_external_id",
        )
    return account


def _check_external_id_free(external_id: str, member: Member | None) -> None:
    if not external_id:
        return
    others = Member.objects.filter(external_id=external_id)
    if member is not None:
        others = others.exclude(pk=member.pk)
    other = others.select_related("user").first()
    if other is not None:
        raise DomainError(
            f"The external ID {external_id!r} already belongs to member "
            f"{other.pk} ({other.user.email}).",
            field="external_id",
            code="conflict",
        )


def _check_admin_has_account(role: str, account: Account | None) -> None:
    if role == Member.Role.ADMIN and account is None:
        raise DomainError(
            "An account admin needs an account; give account_external_id or "
            "choose another role.",
            field="role",
        )


def _create_member(*, email: str, values: dict[str, Any], actor) -> Member:
    user = User.objects.filter(email__iexact=email).first()
    if user is not None and user.is_staff:
        raise DomainError(
            f"{email} belongs to a staff user, and staff have no member record.",
            field="email",
            code="conflict",
        )
    account = values.get("account")
    if account is None and "account" not in values:
        account = find_account_for_email(email)
    role = values.get("role", Member.Role.MEMBER)
    _check_admin_has_account(role, account)
    _check_external_id_free(values.get("external_id", ""), None)
    # Checked before the user row is written; create_member checks it again.
    if values.get("display_name"):
        validate_display_name(values["display_name"])

    if user is None:
        username = generate_unique_username([email.split("@")[0], email])
        user = User(username=username, email=email)
        user.set_unusable_password()
        user.save()
        EmailAddress.objects.create(
            user=user, email=email, primary=True, verified=False
        )
    member = create_member(
        user=user,
        display_name=values.get("display_name", ""),
        role=role,
        time_zone=values.get("time_zone", "UTC"),
        account=account,
    )
    extra = [name for name in ("lifecycle_stage", "external_id") if name in values]
    for name in extra:
        setattr(member, name, values[name])
    if extra:
        member.save(update_fields=extra)
    return member


def _update_member(*, member: Member, values: dict[str, Any], actor) -> Member:
    if member.anonymised_at is not None:
        raise DomainError(
            f"Member {member.pk} deleted their account and was anonymised, so it "
            "cannot be updated.",
            code="anonymised",
        )
    if "external_id" in values:
        _check_external_id_free(values["external_id"], member)
    display_name = values.get("display_name")
    if display_name and display_name != member.display_name:
        validate_display_name(display_name, member=member)
    account = values.get("account", member.account)
    role = values.get("role", member.role)
    _check_admin_has_account(role, account)

    columns = [
        name
        for name in ("display_name", "lifecycle_stage", "time_zone", "external_id")
        if name in values and getattr(member, name) != values[name]
    ]
    for name in columns:
        setattr(member, name, values[name])
    if "account" in values and member.account_id != getattr(account, "pk", None):
        member.account = account
        columns.append("account")
    if columns:
        member.save(update_fields=columns)
    if "account" in columns:
        # An account admin's object permissions follow their account.
        sync_role_groups(member)
    if role != member.role:
        member = change_member_role(member=member, role=role, actor=actor)
    return member


def _check_fields(fields: dict[str, Any], allowed: frozenset[str]) -> dict[str, Any]:
    unknown = set(fields) - allowed
    if unknown:
        raise TypeError(f"Unknown member fields: {sorted(unknown)}")
    values = dict(fields)
    _check_values(values)
    return values


@transaction.atomic
def upsert_member(
    *, external_id: str, actor=None, **fields: Any
) -> tuple[Member, bool]:
    """Create or update the member with this external ID; return it and whether new.

    `fields` may contain email, display_name, account_external_id, role,
    lifecycle_stage and time_zone. A field left out keeps its value. A new
    external ID needs an email. When a member without an external ID already
    has that email, it gets this external ID. An email that belongs to a
    member with another external ID raises DomainError with code "conflict",
    and so does a different email for an existing member: the email is how
    the person signs in, so it changes only in admin.
    """
    external_id = (external_id or "").strip()
    values = _check_fields(
        {**fields, "external_id": external_id}, MEMBER_FIELDS | {"email"}
    )
    if not external_id:
        raise DomainError("The external ID is missing.", field="external_id")
    email = clean_email(values.pop("email")) if "email" in values else None

    member, matched_by = _find_for_upsert(external_id, email)
    if member is None:
        # Another request may have created the member while this one waited.
        _lock_member_creation()
        member, matched_by = _find_for_upsert(external_id, email)
    if matched_by == "external_id":
        if email is not None and not _has_email(member, email):
            raise DomainError(
                f"Member {member.pk} with external ID {external_id!r} has the email "
                f"{member.user.email}, not {email}. Upserts do not change a "
                "member's email, because it is how they sign in; change it in "
                "admin.",
                field="email",
                code="conflict",
            )
        return _update_member(member=member, values=values, actor=actor), False

    if email is None:
        raise DomainError(
            f"No member has the external ID {external_id!r}, and creating one "
            "needs an email.",
            field="email",
        )
    if member is None:
        return _create_member(email=email, values=values, actor=actor), True
    if member.external_id and member.external_id != external_id:
        raise DomainError(
            f"The email {email} belongs to member {member.pk}, whose external ID "
            f"is {member.external_id!r}, not {external_id!r}.",
            field="email",
            code="conflict",
        )
    return _update_member(member=member, values=values, actor=actor), False


@transaction.atomic
def upsert_member_by_email(
    *, email: str, actor=None, **fields: Any
) -> tuple[Member, bool]:
    """Create or update the member with this email; return it and whether new.

    `fields` may contain display_name, account_external_id, role,
    lifecycle_stage, time_zone and external_id. A field left out keeps its
    value. The email matches in any letter case. An external ID that differs
    from the member's own raises DomainError with code "conflict".
    """
    email = clean_email(email)
    values = _check_fields(fields, MEMBER_FIELDS)

    member = find_member_by_email(email)
    if member is None:
        # Another request may have created the member while this one waited.
        _lock_member_creation()
        member = find_member_by_email(email)
    if member is None:
        return _create_member(email=email, values=values, actor=actor), True
    external_id = values.get("external_id", "")
    if external_id and member.external_id and member.external_id != external_id:
        raise DomainError(
            f"The email {email} belongs to member {member.pk}, whose external ID "
            f"is {member.external_id!r}, not {external_id!r}.",
            field="external_id",
            code="conflict",
        )
    return _update_member(member=member, values=values, actor=actor), False


def _find_for_upsert(
    external_id: str, email: str | None
) -> tuple[Member | None, str | None]:
    # Return the member and whether it matched by "external_id" or "email".
    member = (
        Member.objects.select_for_update()
        .select_related("user")
        .filter(external_id=external_id)
        .first()
    )
    if member is not None:
        return member, "external_id"
    if email is None:
        return None, None
    member = find_member_by_email(email)
    return member, "email" if member is not None else None


def _has_email(member: Member, email: str) -> bool:
    if member.user.email.lower() == email:
        return True
    return EmailAddress.objects.filter(user=member.user, email__iexact=email).exists()
