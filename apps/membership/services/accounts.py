"""Create and change customer accounts, their hierarchy, ARR and affiliations.

An email domain belongs to one account at most, because a new member joins
the account that owns their domain. PostgreSQL has no unique constraint
across the elements of array columns, so every write that adds domains
takes one advisory lock (`lock_accounts`) and checks the other accounts
while holding it. Writes that change a parent take the same lock, so two
concurrent changes cannot close a cycle between them. Code that writes
`Account.email_domains` or `Account.parent` without these services skips
both checks.
"""

import re
import zoneinfo
from collections.abc import Collection, Iterable
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone

from apps.membership.models import (
    Account,
    AccountAffiliation,
    AccountArr,
    AuditEntry,
    Member,
    list_time_zone_names,
)
from apps.membership.selectors.accounts import (
    get_account_by_external_id,
    get_account_subtree_height,
    list_account_ancestor_ids,
)
from apps.membership.selectors.sso import get_email_domain
from apps.membership.services.roles import sync_role_groups
from rm6.errors import DomainError

User = get_user_model()

# The key of the advisory lock that serialises domain and parent changes.
# Any fixed 64-bit number works, as long as nothing else uses it.
ACCOUNT_LOCK_KEY = 0x726D_365F_6163_6374

# An account and its parents span at most this many levels.
MAX_HIERARCHY_LEVELS = 10

MAX_ARR = Decimal(10) ** 12  # The ARR column has 14 digits, 2 after the point.
CENT = Decimal("0.01")

# Webmail domains are shared by people of many companies, so none of them
# may identify one account.
# NOTE: a short list of the largest providers, not a complete one.
PUBLIC_EMAIL_DOMAINS = frozenset(
    {
        "163.com",
        "aol.com",
        "gmail.com",
        "gmx.de",
        "gmx.net",
        "googlemail.com",
        "hotmail.com",
        "icloud.com",
        "live.com",
        "mail.com",
        "me.com",
        "outlook.com",
        "proton.me",
        "protonmail.com",
        "qq.com",
        "web.de",
        "yahoo.com",
        "yandex.ru",
    }
)

DOMAIN_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
TOP_LEVEL_LABEL = re.compile(r"^(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$")
MAX_DOMAIN_LENGTH = 253

# The fields `save_account` validates and writes.
ACCOUNT_FIELDS = (
    "name",
    "external_id",
    "email_domains",
    "segment",
    "cs_tier",
    "arr",
    "contract_start",
    "renewal_date",
    "owner",
    "time_zone",
    "parent",
    "is_sso_required",
)
# The fields `upsert_account` accepts. The owner is given by email and the
# parent by external ID, the identifiers a CRM stores.
UPSERT_FIELDS = frozenset(
    {
        "name",
        "email_domains",
        "segment",
        "cs_tier",
        "arr",
        "contract_start",
        "renewal_date",
        "owner_email",
        "time_zone",
        "parent_external_id",
    }
)
UPSERT_FIELD_NAMES = {"owner": "owner_email", "parent": "parent_external_id"}


def lock_accounts() -> None:
    """Take the transaction-long lock that serialises domain and parent changes.

    Take it before locking any account row. A writer that holds a row lock
    and then waits here can deadlock with the holder of this lock, whose
    foreign key checks wait for that row.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ACCOUNT_LOCK_KEY])


def is_valid_time_zone(name: str) -> bool:
    return name in list_time_zone_names()


def check_time_zone(name: str, *, field: str = "time_zone") -> None:
    if not is_valid_time_zone(name):
        raise DomainError(
            f"{name!r} is not a known IANA time zone. Use a name such as "
            "Europe/Paris or America/New_York.",
            field=field,
        )


def clean_email_domain(value: str) -> str:
    """Return the domain in lower case, raising DomainError for a bad one."""
    domain = value.strip().lower()
    problem = None
    if not domain:
        problem = "is empty"
    elif "@" in domain:
        problem = "contains @; give only the part after the @, such as acme.com"
    elif not domain.isascii():
        problem = "contains non-ASCII letters; give its xn-- (punycode) form"
    elif len(domain) > MAX_DOMAIN_LENGTH:
        problem = f"is longer than {MAX_DOMAIN_LENGTH} characters"
    else:
        labels = domain.split(".")
        if len(labels) < 2:
            problem = "has no dot; give a full domain such as acme.com"
        elif not all(DOMAIN_LABEL.match(label) for label in labels):
            problem = (
                "is not a valid domain; use letters, digits and hyphens between "
                "dots, such as acme.com"
            )
        elif not TOP_LEVEL_LABEL.match(labels[-1]):
            problem = f"ends in {labels[-1]!r}, which is not a valid top-level domain"
    if problem is not None:
        raise DomainError(
            f"The email domain {value!r} {problem}.", field="email_domains"
        )

    if domain in PUBLIC_EMAIL_DOMAINS:
        raise DomainError(
            f"{domain} is a public email domain shared by people of many "
            "companies, so it cannot identify one account. Assign such members "
            "to their account by hand.",
            field="email_domains",
        )
    return domain


def clean_email_domains(values: Iterable[str]) -> list[str]:
    """Return the domains in lower case without repeats, in the given order."""
    domains: list[str] = []
    for value in values:
        domain = clean_email_domain(value)
        if domain not in domains:
            domains.append(domain)
    return domains


def clean_arr(value: Any, *, field: str = "arr") -> Decimal:
    """Return an ARR amount as a Decimal, raising DomainError for a bad one."""
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        amount = None
    if amount is None or not amount.is_finite():
        raise DomainError(
            f"The ARR {value!r} is not a number. Give an amount in USD such as "
            "120000 or 120000.50.",
            field=field,
        )
    if amount < 0:
        raise DomainError(
            f"The ARR {value} is negative. Give 0 for an account that pays "
            "nothing, such as a churned one.",
            field=field,
        )
    if amount.as_tuple().exponent < -2:
        raise DomainError(
            f"The ARR {value} has more than 2 decimal places; round it to cents.",
            field=field,
        )
    if amount >= MAX_ARR:
        raise DomainError(
            f"The ARR {value} is too large; the maximum is {MAX_ARR - 1}.99.",
            field=field,
        )
    return amount.quantize(CENT)


def _check_name(account: Account) -> None:
    account.name = (account.name or "").strip()
    max_length = Account._meta.get_field("name").max_length
    if not account.name:
        raise DomainError("The account name is missing.", field="name")
    if len(account.name) > max_length:
        raise DomainError(
            f"The account name has {len(account.name)} characters; the maximum "
            f"is {max_length}.",
            field="name",
        )


def _check_external_id(account: Account) -> None:
    account.external_id = (account.external_id or "").strip()
    max_length = Account._meta.get_field("external_id").max_length
    if len(account.external_id) > max_length:
        raise DomainError(
            f"The external ID has {len(account.external_id)} characters; the "
            f"maximum is {max_length}.",
            field="external_id",
        )
    if not account.external_id:
        return
    other = (
        Account.objects.filter(external_id=account.external_id)
        .exclude(pk=account.pk)
        .first()
    )
    if other is not None:
        raise DomainError(
            f"The external ID {account.external_id!r} already belongs to "
            f"account {other.name} (id {other.pk}).",
            field="external_id",
            code="conflict",
        )


def _check_choice(value: str, choices, *, field: str, label: str) -> None:
    if value not in choices.values:
        problem = (
            f"{value!r} is not a valid {label}" if value else f"The {label} is missing"
        )
        raise DomainError(
            f"{problem}. Use one of: {', '.join(choices.values)}.", field=field
        )


def _check_domains_free(account: Account, previous_domains: Collection[str]) -> None:
    added = [d for d in account.email_domains if d not in previous_domains]
    if not added:
        return
    others = Account.objects.filter(email_domains__overlap=added).exclude(pk=account.pk)
    for other in others.order_by("pk")[:1]:
        claimed = sorted(set(other.email_domains) & set(added))
        raise DomainError(
            f"The email domain {claimed[0]} already belongs to account {other.name} "
            f"(id {other.pk}), and a domain can belong to one account only. Remove "
            "it from that account first, or leave it out here.",
            field="email_domains",
            code="conflict",
        )


def _check_owner(owner) -> None:
    if owner is None:
        return
    if not owner.is_staff or not owner.is_active:
        raise DomainError(
            f"{owner.email or owner.get_username()} is not an active staff user, "
            "so cannot own an account. Choose a customer success manager.",
            field="owner",
        )


def _check_parent(account: Account, parent: Account | None) -> None:
    if parent is None:
        return
    if account.pk is not None and parent.pk == account.pk:
        raise DomainError(
            f"Account {account.name} cannot be its own parent.", field="parent"
        )
    chain = list_account_ancestor_ids(parent.pk, max_levels=MAX_HIERARCHY_LEVELS)
    if account.pk is not None and account.pk in chain:
        raise DomainError(
            f"Account {parent.name} (id {parent.pk}) is a subsidiary of "
            f"{account.name}, so it cannot also be its parent: the hierarchy "
            "would loop.",
            field="parent",
            code="cycle",
        )
    height = 1
    if account.pk is not None:
        height = get_account_subtree_height(account.pk, max_levels=MAX_HIERARCHY_LEVELS)
    if len(chain) + height > MAX_HIERARCHY_LEVELS:
        raise DomainError(
            f"With {parent.name} as its parent, the hierarchy of {account.name} "
            f"would span more than {MAX_HIERARCHY_LEVELS} levels. Attach it "
            "higher up.",
            field="parent",
        )


def _check_dates(account: Account) -> None:
    if (
        account.contract_start is not None
        and account.renewal_date is not None
        and account.renewal_date < account.contract_start
    ):
        raise DomainError(
            f"The renewal date {account.renewal_date.isoformat()} is before the "
            f"contract start {account.contract_start.isoformat()}.",
            field="renewal_date",
        )


def check_account(
    *,
    account: Account,
    changed_fields: Collection[str],
    previous_domains: Collection[str] = (),
) -> None:
    """Raise DomainError if the account's changed fields break an account rule.

    Normalises the name, external ID and email domains on the instance. A
    new account (without a primary key) is checked in every field.
    `previous_domains` are the domains the account had before, which it may
    keep even if another account claims them too, as in data from before
    this rule.
    """
    changed = set(ACCOUNT_FIELDS) if account.pk is None else set(changed_fields)
    if "name" in changed:
        _check_name(account)
    if "external_id" in changed:
        _check_external_id(account)
    if "email_domains" in changed:
        account.email_domains = clean_email_domains(account.email_domains or [])
        _check_domains_free(account, previous_domains)
    if "segment" in changed:
        _check_choice(
            account.segment, Account.Segment, field="segment", label="segment"
        )
    if "cs_tier" in changed:
        _check_choice(account.cs_tier, Account.CsTier, field="cs_tier", label="CS tier")
    if "time_zone" in changed:
        check_time_zone(account.time_zone)
    if "arr" in changed:
        account.arr = clean_arr(account.arr)
    if {"contract_start", "renewal_date"} & changed:
        _check_dates(account)
    if "owner" in changed:
        _check_owner(account.owner)
    if "parent" in changed:
        _check_parent(account, account.parent)


def _column_value(account: Account, name: str) -> Any:
    # The id of a foreign key, so that comparing owners or parents costs no query.
    return getattr(account, Account._meta.get_field(name).attname)


def _audit_value(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _today_for(account: Account) -> date:
    zone_name = account.time_zone if is_valid_time_zone(account.time_zone) else "UTC"
    return timezone.localdate(timezone.now(), zoneinfo.ZoneInfo(zone_name))


@transaction.atomic
def save_account(
    *,
    account: Account,
    changed_fields: Collection[str],
    actor=None,
    arr_effective_on: date | None = None,
    arr_source: str = "manual",
) -> Account:
    """Validate and save a new account, or the changed fields of an existing one.

    Admin forms and the other account services build the instance in memory
    and call this. A changed ARR is recorded in the ARR history as of
    `arr_effective_on` (today in the account's time zone by default), and
    `Account.arr` becomes the latest value of that history. An audit entry
    lists what changed.
    """
    is_new = account.pk is None
    changed = [name for name in ACCOUNT_FIELDS if is_new or name in changed_fields]
    if not changed:
        return account
    if {"email_domains", "parent"} & set(changed):
        lock_accounts()
    previous = None
    if not is_new:
        previous = Account.objects.select_for_update(no_key=True).get(pk=account.pk)
    check_account(
        account=account,
        changed_fields=changed,
        previous_domains=previous.email_domains if previous else (),
    )
    new_arr = account.arr if "arr" in changed_fields else None
    if previous is not None:
        # Forms report a field as changed when only its spelling differs.
        changed = [
            name
            for name in changed
            if name == "arr"
            or _column_value(previous, name) != _column_value(account, name)
        ]
        if not changed:
            return account

    if is_new:
        account.save()
    else:
        # ARR changes go through the history below, never straight to the row.
        columns = [name for name in changed if name != "arr"]
        if columns:
            account.arr = previous.arr
            account.save(update_fields=[*columns, "updated_at"])
    arr_day = None
    if new_arr is not None:
        arr_day = arr_effective_on or _today_for(account)
        record_arr(
            account=account, effective_on=arr_day, arr=new_arr, source=arr_source
        )

    if is_new:
        details = {
            "fields": {
                name: _audit_value(_column_value(account, name)) for name in changed
            }
        }
    else:
        details = {
            "changes": {
                name: [
                    _audit_value(_column_value(previous, name)),
                    _audit_value(
                        new_arr if name == "arr" else _column_value(account, name)
                    ),
                ]
                for name in changed
            }
        }
    if arr_day is not None:
        details["arr_effective_on"] = arr_day.isoformat()
    AuditEntry.objects.create(
        actor=actor,
        action="account.created" if is_new else "account.updated",
        account=account,
        details=details,
    )
    return account


def _resolve_owner(email: str | None):
    if not email:
        return None
    owner = User.objects.filter(email__iexact=email.strip()).first()
    if owner is None:
        raise DomainError(
            f"No user has the email {email!r}. The owner must be a staff user of "
            "the hub; ask an administrator to add them.",
            field="owner_email",
        )
    return owner


def _resolve_parent(external_id: str, parent_external_id: str | None) -> Account | None:
    if not parent_external_id:
        return None
    if parent_external_id == external_id:
        raise DomainError(
            f"Account {external_id!r} cannot be its own parent.",
            field="parent_external_id",
        )
    parent = get_account_by_external_id(parent_external_id)
    if parent is None:
        raise DomainError(
            f"No account has the external ID {parent_external_id!r}. Create the "
            "parent account first, or leave parent_external_id empty.",
            field="parent_external_id",
        )
    return parent


def _is_arr_changed(account: Account, arr: Any, arr_effective_on: date | None) -> bool:
    if account.pk is None or arr_effective_on is not None:
        return True
    if clean_arr(arr) != account.arr:
        return True
    # The same amount is still worth recording once, to start the history of
    # an account whose ARR predates it.
    return not AccountArr.objects.filter(account=account).exists()


def _apply_fields(
    account: Account, fields: dict[str, Any], *, arr_effective_on: date | None
) -> list[str]:
    # Set the upsert fields on the instance and return the names that changed.
    values = dict(fields)
    if "owner_email" in values:
        values["owner"] = _resolve_owner(values.pop("owner_email"))
    if "parent_external_id" in values:
        values["parent"] = _resolve_parent(
            account.external_id, values.pop("parent_external_id")
        )
    if "email_domains" in values:
        values["email_domains"] = clean_email_domains(values["email_domains"] or [])

    changed = []
    for name, value in values.items():
        if name == "arr":
            if _is_arr_changed(account, value, arr_effective_on):
                changed.append(name)
                account.arr = value
        elif account.pk is None or getattr(account, name) != value:
            changed.append(name)
            setattr(account, name, value)
    return changed


def _save_with_upsert_names(**kwargs: Any) -> Account:
    # Errors name owner_email and parent_external_id, as the caller sent them.
    try:
        return save_account(**kwargs)
    except DomainError as error:
        field = UPSERT_FIELD_NAMES.get(error.field or "", error.field)
        raise DomainError(error.message, field=field, code=error.code) from error


def _check_upsert_fields(fields: dict[str, Any]) -> None:
    unknown = set(fields) - UPSERT_FIELDS
    if unknown:
        raise TypeError(f"Unknown account fields: {sorted(unknown)}")


@transaction.atomic
def create_account(
    *,
    external_id: str = "",
    actor=None,
    arr_effective_on: date | None = None,
    source: str = "api",
    **fields: Any,
) -> Account:
    """Create an account from the fields `upsert_account` accepts.

    A given external ID must be new, or DomainError with code "conflict" is
    raised. The account needs a name, a segment and a CS tier.
    """
    _check_upsert_fields(fields)
    account = Account(external_id=(external_id or "").strip())
    if account.external_id:
        lock_accounts()
    changed = _apply_fields(account, fields, arr_effective_on=arr_effective_on)
    return _save_with_upsert_names(
        account=account,
        changed_fields=changed,
        actor=actor,
        arr_effective_on=arr_effective_on,
        arr_source=source,
    )


@transaction.atomic
def upsert_account(
    *,
    external_id: str,
    actor=None,
    arr_effective_on: date | None = None,
    source: str = "api",
    **fields: Any,
) -> tuple[Account, bool]:
    """Create or update the account with this CRM ID; return it and whether new.

    `fields` may contain name, email_domains, segment, cs_tier, arr,
    contract_start, renewal_date, owner_email, time_zone and
    parent_external_id. A field left out keeps its value, and an empty
    owner_email or parent_external_id clears it. A new account needs a name,
    a segment and a CS tier. `source` is stored with a recorded ARR value.
    """
    _check_upsert_fields(fields)
    external_id = (external_id or "").strip()
    if not external_id:
        raise DomainError("The external ID is missing.", field="external_id")
    max_length = Account._meta.get_field("external_id").max_length
    if len(external_id) > max_length:
        raise DomainError(
            f"The external ID has {len(external_id)} characters; the maximum is "
            f"{max_length}.",
            field="external_id",
        )

    rows = Account.objects.select_for_update(no_key=True).filter(
        external_id=external_id
    )
    if {"email_domains", "parent_external_id"} & set(fields):
        lock_accounts()
    account = rows.first()
    if account is None:
        # Two requests creating the same account wait here for each other,
        # and the second one finds the first one's account.
        lock_accounts()
        account = rows.first()
    created = account is None
    if created:
        account = Account(external_id=external_id)

    changed = _apply_fields(account, fields, arr_effective_on=arr_effective_on)
    if not created and not changed:
        return account, False

    _save_with_upsert_names(
        account=account,
        changed_fields=changed,
        actor=actor,
        arr_effective_on=arr_effective_on,
        arr_source=source,
    )
    return account, created


@transaction.atomic
def set_account_parent(
    *, account: Account, parent: Account | None, actor=None
) -> Account:
    """Attach an account to a parent company, or detach it with None.

    Raises DomainError when the parent is the account itself or one of its
    subsidiaries, or when the hierarchy would span more than
    MAX_HIERARCHY_LEVELS levels.
    """
    account.parent = parent
    return save_account(account=account, changed_fields=["parent"], actor=actor)


def check_arr_effective_on(*, account: Account, effective_on: date) -> None:
    """Raise DomainError for an ARR date after today in the account's time zone."""
    today = _today_for(account)
    if effective_on > today:
        raise DomainError(
            f"The ARR date {effective_on.isoformat()} is in the future; today is "
            f"{today.isoformat()} in the account's time zone ({account.time_zone}). "
            "Record the value on or after the day it takes effect.",
            field="arr_effective_on",
        )


@transaction.atomic
def record_arr(
    *, account: Account, effective_on: date, arr: Any, source: str = "manual"
) -> AccountArr:
    """Store the account's ARR as of a day, replacing a value stored for that day.

    `Account.arr` then becomes the value with the latest date, so recording
    an earlier day fills in history without changing the current ARR. A date
    after today in the account's time zone is rejected, because nothing
    would make that value current once the day comes.
    """
    amount = clean_arr(arr)
    source = (source or "").strip()
    max_source_length = AccountArr._meta.get_field("source").max_length
    if not source or len(source) > max_source_length:
        raise DomainError(
            f"The ARR source {source!r} must have 1 to {max_source_length} "
            "characters, such as crm, import or manual.",
            field="source",
        )
    locked = Account.objects.select_for_update(no_key=True).get(pk=account.pk)
    check_arr_effective_on(account=locked, effective_on=effective_on)

    entry, _ = AccountArr.objects.update_or_create(
        account=locked,
        effective_on=effective_on,
        defaults={"arr": amount, "source": source},
    )
    latest = (
        AccountArr.objects.filter(account=locked)
        .order_by("-effective_on")
        .values_list("arr", flat=True)
        .first()
    )
    if latest != locked.arr:
        Account.objects.filter(pk=locked.pk).update(
            arr=latest, updated_at=timezone.now()
        )
    account.arr = latest
    return entry


def _check_relationship(relationship: str) -> None:
    _check_choice(
        relationship,
        AccountAffiliation.Relationship,
        field="relationship",
        label="relationship",
    )


@transaction.atomic
def add_affiliation(
    *, member: Member, account: Account, relationship: str, actor=None
) -> AccountAffiliation:
    """Tie a member to an account besides their primary one, such as a partner.

    Adding an existing affiliation again only updates its relationship.
    """
    _check_relationship(relationship)
    if member.account_id == account.pk:
        raise DomainError(
            f"{account.name} is already {member.name}'s primary account, so it "
            "needs no affiliation.",
            field="account",
        )

    affiliation, created = AccountAffiliation.objects.get_or_create(
        member=member, account=account, defaults={"relationship": relationship}
    )
    if not created and affiliation.relationship == relationship:
        return affiliation
    if not created:
        affiliation.relationship = relationship
        affiliation.save(update_fields=["relationship"])

    AuditEntry.objects.create(
        actor=actor,
        action="member.affiliation_added",
        member=member,
        account=account,
        details={"relationship": relationship},
    )
    return affiliation


@transaction.atomic
def remove_affiliation(*, member: Member, account: Account, actor=None) -> bool:
    """Remove a member's tie to a secondary account; return whether one existed."""
    deleted, _ = AccountAffiliation.objects.filter(
        member=member, account=account
    ).delete()
    if not deleted:
        return False

    AuditEntry.objects.create(
        actor=actor, action="member.affiliation_removed", member=member, account=account
    )
    return True


@transaction.atomic
def create_account_from_review(
    *, member: Member, segment: str, cs_tier: str, name: str = "", actor=None
) -> Account:
    """Create an account for a member in the review queue, owning their domain.

    The account is named after the member's email domain unless `name` is
    given. Every member in the queue with an address at that domain joins
    the new account too, and the audit entry lists them.
    """
    # The account lock comes first, as lock_accounts requires, because
    # creating the account below takes it.
    lock_accounts()
    member = Member.objects.select_for_update().select_related("user").get(pk=member.pk)
    if member.account_id is not None:
        raise DomainError(
            f"{member.name} already belongs to an account, so is not in the "
            "review queue.",
            code="not_in_queue",
        )
    domain = get_email_domain(member.user.email)

    account = Account(
        name=name.strip() or domain,
        email_domains=[domain],
        segment=segment,
        cs_tier=cs_tier,
    )
    save_account(
        account=account,
        changed_fields=["name", "email_domains", "segment", "cs_tier"],
        actor=actor,
    )
    waiting = list(
        Member.objects.select_for_update()
        .select_related("user")
        .filter(account__isnull=True, user__email__iendswith=f"@{domain}")
        .order_by("pk")
    )
    for waiting_member in waiting:
        waiting_member.account = account
        waiting_member.save(update_fields=["account"])
        sync_role_groups(waiting_member)

    AuditEntry.objects.create(
        actor=actor,
        action="account.created_from_review",
        member=member,
        account=account,
        details={"domain": domain, "member_ids": [m.pk for m in waiting]},
    )
    return account
