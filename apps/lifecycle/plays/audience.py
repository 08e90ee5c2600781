"""Audience filters and holdout groups, which decide whom a play may enrol."""

import hashlib

from django.db.models import Exists, OuterRef, QuerySet

from apps.lifecycle.models import Play
from apps.membership.models import Account, Member
from apps.membership.selectors.sso import exclude_unconfirmed_sign_ups


def member_subject_key(member_id: int) -> str:
    return f"member:{member_id}"


def account_subject_key(account_id: int) -> str:
    return f"account:{account_id}"


def list_enrollable_members() -> QuerySet[Member]:
    """Return members a play may touch.

    Deactivated, anonymised and merged members are left out, and so are
    self-sign-ups whose email is not confirmed yet. Anyone can sign up with
    another person's address, so a play's emails, notifications and webhooks
    could reach the wrong person.
    """
    members = Member.objects.filter(
        deactivated_at__isnull=True,
        anonymised_at__isnull=True,
        merged_into__isnull=True,
    )
    return exclude_unconfirmed_sign_ups(members)


def _filter_members(play: Play, members: QuerySet[Member]) -> QuerySet[Member]:
    if play.audience_roles:
        members = members.filter(role__in=play.audience_roles)
    if play.audience_lifecycle_stages:
        members = members.filter(lifecycle_stage__in=play.audience_lifecycle_stages)
    return members


def list_audience_members(play: Play) -> QuerySet[Member]:
    """Return the members who match a member-level play's audience filters.

    An empty filter list matches everyone. Account filters (segment, CS
    tier) exclude members without an account, and the band filter excludes
    members without a score.
    """
    members = _filter_members(play, list_enrollable_members())
    if play.audience_segments:
        members = members.filter(account__segment__in=play.audience_segments)
    if play.audience_cs_tiers:
        members = members.filter(account__cs_tier__in=play.audience_cs_tiers)
    if play.audience_bands:
        members = members.filter(health_score__band__in=play.audience_bands)
    return members


def list_audience_accounts(play: Play) -> QuerySet[Account]:
    """Return the accounts that match an account-level play's audience filters.

    The band filter reads the account's own health score. Role and
    lifecycle-stage filters keep accounts with at least one enrollable member
    who matches them both.
    """
    accounts = Account.objects.all()
    if play.audience_segments:
        accounts = accounts.filter(segment__in=play.audience_segments)
    if play.audience_cs_tiers:
        accounts = accounts.filter(cs_tier__in=play.audience_cs_tiers)
    if play.audience_bands:
        accounts = accounts.filter(health_score__band__in=play.audience_bands)
    if play.audience_roles or play.audience_lifecycle_stages:
        members = _filter_members(play, list_enrollable_members())
        accounts = accounts.filter(Exists(members.filter(account_id=OuterRef("pk"))))
    return accounts


def is_held_out(*, play: Play, subject_key: str) -> bool:
    """Return whether the subject falls in the play's holdout (control) group.

    The group comes from a SHA-256 hash of the play's database id and the
    subject key, so a subject stays on the same side for every occurrence
    and every evaluation. The database id is used instead of the editable
    play ID slug, so renaming a play's slug does not reshuffle its groups.
    """
    if play.holdout_percent <= 0:
        return False
    digest = hashlib.sha256(f"{play.pk}:{subject_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100 < play.holdout_percent
