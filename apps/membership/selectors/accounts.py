"""Reads about customer accounts: hierarchy, ARR history and profile match rate."""

from dataclasses import dataclass

from allauth.socialaccount.models import SocialAccount
from django.db import connection
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Value
from django.db.models.functions import Coalesce, NullIf

from apps.membership.models import Account, AccountArr, AccountIdentityProvider, Member

# The table name comes from the model, so the SQL below follows a rename.
ACCOUNT_TABLE = Account._meta.db_table

# UNION, not UNION ALL, drops rows already found, so the query ends even if
# the data contains a parent cycle from before the services checked for them.
FAMILY_SQL = f"""
WITH RECURSIVE family(id) AS (
    SELECT id FROM {ACCOUNT_TABLE} WHERE id = %s
    UNION
    SELECT child.id
    FROM {ACCOUNT_TABLE} child JOIN family ON child.parent_id = family.id
)
SELECT id FROM family ORDER BY id
"""

# Each row carries its level, and the recursion stops below `max_levels`, so
# a cycle in old data cannot make it run forever.
ANCESTORS_SQL = f"""
WITH RECURSIVE ancestors(id, parent_id, level) AS (
    SELECT id, parent_id, 1 FROM {ACCOUNT_TABLE} WHERE id = %(account_id)s
    UNION ALL
    SELECT parent.id, parent.parent_id, ancestors.level + 1
    FROM {ACCOUNT_TABLE} parent JOIN ancestors ON parent.id = ancestors.parent_id
    WHERE ancestors.level <= %(max_levels)s
)
SELECT id FROM ancestors ORDER BY level
"""

SUBTREE_HEIGHT_SQL = f"""
WITH RECURSIVE family(id, level) AS (
    SELECT id, 1 FROM {ACCOUNT_TABLE} WHERE id = %(account_id)s
    UNION ALL
    SELECT child.id, family.level + 1
    FROM {ACCOUNT_TABLE} child JOIN family ON child.parent_id = family.id
    WHERE family.level <= %(max_levels)s
)
SELECT max(level) FROM family
"""


def get_account_by_external_id(external_id: str) -> Account | None:
    """Return the account with this CRM ID, or None; an empty ID matches none."""
    if not external_id:
        return None
    return Account.objects.filter(external_id=external_id).first()


def list_account_family_ids(account: Account) -> list[int]:
    """Return the ids of the account and all its subsidiaries, at any depth.

    Roll-ups (members, events, ARR of a parent company) filter on these ids.
    """
    with connection.cursor() as cursor:
        cursor.execute(FAMILY_SQL, [account.pk])
        return [row[0] for row in cursor.fetchall()]


def list_account_ancestor_ids(account_id: int, *, max_levels: int) -> list[int]:
    """Return the account's id and its parents' ids, nearest first.

    Stops after `max_levels + 1` ids, so a caller can tell a chain that is
    too deep from one that fits.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            ANCESTORS_SQL, {"account_id": account_id, "max_levels": max_levels}
        )
        return [row[0] for row in cursor.fetchall()]


def get_account_subtree_height(account_id: int, *, max_levels: int) -> int:
    """Return how many levels the account and its subsidiaries span.

    An account without subsidiaries spans 1. The count stops at
    `max_levels + 1`.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            SUBTREE_HEIGHT_SQL, {"account_id": account_id, "max_levels": max_levels}
        )
        (height,) = cursor.fetchone()
    return height or 0


def list_account_arr_history(account: Account) -> QuerySet[AccountArr]:
    """Return the account's dated ARR values, latest first."""
    return AccountArr.objects.filter(account=account).order_by("-effective_on")


@dataclass(frozen=True)
class ProfileMatchRate:
    """The profile match rate of one group of members.

    `rate` is matched / total between 0 and 1, or None ("no data") when the
    group has no members.
    """

    segment: str | None
    matched: int
    total: int

    @property
    def rate(self) -> float | None:
        if self.total == 0:
            return None
        return self.matched / self.total

    @property
    def percent(self) -> float | None:
        return None if self.rate is None else self.rate * 100

    @property
    def segment_label(self) -> str:
        if self.segment is None:
            return "All members"
        return Account.Segment(self.segment).label


def _counted_members() -> QuerySet[Member]:
    # Deactivated, anonymised and merged members cannot sign in, so linking
    # them to an account or an SSO identity is no longer possible or useful.
    # A merged member is always deactivated too.
    members = Member.objects.filter(
        deactivated_at__isnull=True,
        anonymised_at__isnull=True,
        merged_into__isnull=True,
    )
    account_providers = AccountIdentityProvider.objects.filter(
        account_id=OuterRef("account_id")
    )
    # allauth stores a social account's provider as its app's provider_id,
    # or as the app's provider when the provider_id is empty.
    provider_keys = AccountIdentityProvider.objects.filter(
        account_id=OuterRef(OuterRef("account_id"))
    ).values(
        key=Coalesce(
            NullIf("social_app__provider_id", Value("")), "social_app__provider"
        )
    )
    sso_identities = SocialAccount.objects.filter(
        user_id=OuterRef("user_id"), provider__in=provider_keys
    )
    return members.annotate(
        has_sso_providers=Exists(account_providers),
        has_sso_identity=Exists(sso_identities),
    )


MATCHED = Q(account__isnull=False) & (
    Q(has_sso_providers=False) | Q(has_sso_identity=True)
)


def get_profile_match_rate(*, segment: str | None = None) -> ProfileMatchRate:
    """Return the share of members tied to a known account and SSO identity.

    A member counts as matched when they belong to an account and, if that
    account has SSO providers, their user has a social account from one of
    them. Deactivated, anonymised and merged members are left out. With a
    segment, only members of accounts in that segment count, so every one
    of them has an account.
    """
    members = _counted_members()
    if segment is not None:
        members = members.filter(account__segment=segment)
    counts = members.aggregate(total=Count("pk"), matched=Count("pk", filter=MATCHED))
    return ProfileMatchRate(
        segment=segment, matched=counts["matched"], total=counts["total"]
    )


def list_profile_match_rates() -> list[ProfileMatchRate]:
    """Return the match rate of all members first, then of each segment.

    One grouped query computes them all. Every segment is listed, with
    "no data" for a segment without members.
    """
    groups = (
        _counted_members()
        .values("account__segment")
        .annotate(total=Count("pk"), matched=Count("pk", filter=MATCHED))
        .order_by()
    )
    by_segment = {row["account__segment"]: row for row in groups}
    overall = ProfileMatchRate(
        segment=None,
        matched=sum(row["matched"] for row in by_segment.values()),
        total=sum(row["total"] for row in by_segment.values()),
    )
    rates = [overall]
    for segment in Account.Segment.values:
        row = by_segment.get(segment, {"matched": 0, "total": 0})
        rates.append(
            ProfileMatchRate(
                segment=segment, matched=row["matched"], total=row["total"]
            )
        )
    return rates
