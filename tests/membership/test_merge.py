import threading
import time
from datetime import timedelta

import pytest
from allauth.account.models import EmailAddress
from allauth.socialaccount.models import SocialAccount
from django.db import connection
from django.db.models import Sum
from django.utils import timezone

from apps.advocacy.models import PointsEntry
from apps.advocacy.services import award_points
from apps.community.models import Reply, Topic
from apps.lifecycle.models import HealthScore
from apps.membership import merge as merge_registry
from apps.membership.models import (
    AccountAffiliation,
    AuditEntry,
    ConsentGrant,
    ConsentPurpose,
    Member,
)
from apps.membership.services.merge import merge_members
from rm6.errors import DomainError
from tests import factories


@pytest.fixture
def survivor(db):
    return factories.MemberFactory(user__email="ada@acme.test")


@pytest.fixture
def duplicate(db, survivor):
    return factories.MemberFactory(
        account=survivor.account, user__email="ada.lovelace@acme.test"
    )


def balance(member: Member) -> int:
    entries = PointsEntry.objects.filter(member=member)
    return entries.aggregate(total=Sum("points"))["total"] or 0


def grant(member: Member, key: str, *, days_ago: int) -> ConsentGrant:
    return ConsentGrant.objects.create(
        member=member,
        purpose=ConsentPurpose.objects.get(key=key),
        source="privacy_page",
        evidence="Ticked the box.",
        granted_at=timezone.now() - timedelta(days=days_ago),
    )


def test_merge_members_moves_posts_and_events(survivor, duplicate, staff_user):
    topic = factories.TopicFactory(author=duplicate)
    reply = factories.ReplyFactory(author=duplicate, topic=topic)
    event = factories.ActivityEventFactory(member=duplicate)
    recorded_account = event.account_id

    merge_members(survivor=survivor, duplicate=duplicate, actor=staff_user)

    event.refresh_from_db()
    assert Topic.objects.get(pk=topic.pk).author == survivor
    assert Reply.objects.get(pk=reply.pk).author == survivor
    assert event.member == survivor
    assert event.account_id == recorded_account


def test_merge_members_points_balance_moves(survivor, duplicate, staff_user):
    award_points(member=survivor, points=30, reason="welcome")
    award_points(member=duplicate, points=25, reason="reply_posted")
    award_points(member=duplicate, points=-5, reason="correction")
    before = list(
        PointsEntry.objects.order_by("pk").values_list("pk", "member", "points")
    )

    merge_members(survivor=survivor, duplicate=duplicate, actor=staff_user)

    assert balance(survivor) == 50
    assert balance(duplicate) == 0
    after = list(
        PointsEntry.objects.order_by("pk").values_list("pk", "member", "points")
    )
    assert after[: len(before)] == before
    new_entries = PointsEntry.objects.exclude(pk__in=[row[0] for row in before])
    assert sorted(new_entries.values_list("member", "points", "reason", "note")) == (
        sorted(
            [
                (
                    duplicate.pk,
                    -20,
                    "merged_out",
                    f"Moved to member {survivor.pk} by a merge.",
                ),
                (
                    survivor.pk,
                    20,
                    "merged_in",
                    f"Moved from member {duplicate.pk} by a merge.",
                ),
            ]
        )
    )


def test_merge_members_zero_balance_adds_no_entries(survivor, duplicate):
    award_points(member=survivor, points=10, reason="welcome")

    merge_members(survivor=survivor, duplicate=duplicate, actor=None)

    assert PointsEntry.objects.count() == 1


def test_merge_members_consents_keep_most_recent(survivor, duplicate):
    older = grant(survivor, "marketing_email", days_ago=10)
    newer = grant(duplicate, "marketing_email", days_ago=2)
    only_duplicate = grant(duplicate, "advocacy_contact", days_ago=5)

    merge_members(survivor=survivor, duplicate=duplicate, actor=None)

    older.refresh_from_db()
    newer.refresh_from_db()
    only_duplicate.refresh_from_db()
    assert older.revoked_at == newer.granted_at
    assert older.revoked_source == "privacy_page"
    assert newer.revoked_at is None
    assert newer.member == survivor
    assert only_duplicate.member == survivor
    assert only_duplicate.revoked_at is None
    assert not ConsentGrant.objects.filter(member=duplicate).exists()


def test_merge_members_consents_survivor_newer_kept(survivor, duplicate):
    newer = grant(survivor, "marketing_email", days_ago=1)
    older = grant(duplicate, "marketing_email", days_ago=30)

    merge_members(survivor=survivor, duplicate=duplicate, actor=None)

    older.refresh_from_db()
    newer.refresh_from_db()
    assert newer.revoked_at is None
    assert older.revoked_at == newer.granted_at
    assert older.member == survivor
    unrevoked = ConsentGrant.objects.filter(member=survivor, revoked_at__isnull=True)
    assert unrevoked.count() == 1


def test_merge_members_affiliations_moved_unless_repeated(survivor, duplicate):
    shared = factories.AccountFactory()
    only_duplicate = factories.AccountFactory()
    AccountAffiliation.objects.create(
        member=survivor, account=shared, relationship="partner"
    )
    AccountAffiliation.objects.create(
        member=duplicate, account=shared, relationship="consultant"
    )
    AccountAffiliation.objects.create(
        member=duplicate, account=only_duplicate, relationship="partner"
    )

    merge_members(survivor=survivor, duplicate=duplicate, actor=None)

    survivor_affiliations = AccountAffiliation.objects.filter(member=survivor)
    assert sorted(
        survivor_affiliations.values_list("account", "relationship")
    ) == sorted([(shared.pk, "partner"), (only_duplicate.pk, "partner")])
    assert not AccountAffiliation.objects.filter(member=duplicate).exists()


def test_merge_members_deactivates_duplicate(survivor, duplicate):
    merge_members(survivor=survivor, duplicate=duplicate, actor=None)

    duplicate.refresh_from_db()
    duplicate.user.refresh_from_db()
    assert duplicate.deactivated_at is not None
    assert duplicate.deactivation_reason == f"merged into member {survivor.pk}"
    assert duplicate.merged_into == survivor
    assert duplicate.user.is_active is False
    assert set(duplicate.user.groups.all()) == set()


def test_merge_members_moves_email_addresses(survivor, duplicate):
    EmailAddress.objects.create(
        user=survivor.user, email="ada@acme.test", primary=True, verified=False
    )
    EmailAddress.objects.create(
        user=duplicate.user, email="ada.lovelace@acme.test", primary=True, verified=True
    )
    EmailAddress.objects.create(
        user=duplicate.user, email="ada@acme.test", primary=False, verified=True
    )

    merge_members(survivor=survivor, duplicate=duplicate, actor=None)

    addresses = EmailAddress.objects.filter(user=survivor.user)
    assert sorted(addresses.values_list("email", "primary", "verified")) == [
        ("ada.lovelace@acme.test", False, True),
        ("ada@acme.test", True, True),
    ]
    assert not EmailAddress.objects.filter(user=duplicate.user).exists()


def test_merge_members_adds_duplicate_email_without_address_row(survivor, duplicate):
    merge_members(survivor=survivor, duplicate=duplicate, actor=None)

    address = EmailAddress.objects.get(user=survivor.user)
    assert address.email == "ada.lovelace@acme.test"
    assert address.verified is False


def test_merge_members_moves_social_accounts(survivor, duplicate):
    SocialAccount.objects.create(user=survivor.user, provider="acme-oidc", uid="1")
    SocialAccount.objects.create(user=duplicate.user, provider="acme-oidc", uid="2")
    SocialAccount.objects.create(user=duplicate.user, provider="saml", uid="ada")

    merge_members(survivor=survivor, duplicate=duplicate, actor=None)

    identities = SocialAccount.objects.filter(user=survivor.user)
    assert sorted(identities.values_list("provider", "uid")) == [
        ("acme-oidc", "1"),
        ("acme-oidc", "2"),
        ("saml", "ada"),
    ]


def test_merge_members_audit_entry(survivor, duplicate, staff_user):
    factories.TopicFactory(author=duplicate)
    factories.ActivityEventFactory(member=duplicate)
    award_points(member=duplicate, points=7, reason="welcome")

    entry = merge_members(survivor=survivor, duplicate=duplicate, actor=staff_user)

    assert AuditEntry.objects.get(action="member.merged") == entry
    assert entry.actor == staff_user
    assert entry.member == survivor
    assert entry.account == survivor.account
    assert entry.details == {
        "duplicate_id": duplicate.pk,
        "duplicate_email": "ada.lovelace@acme.test",
        "counts": {
            "membership": {
                "consents_moved": 0,
                "consents_revoked": 0,
                "affiliations_moved": 0,
                "affiliations_dropped": 0,
                "email_addresses_moved": 1,
                "email_addresses_dropped": 0,
                "social_accounts_moved": 0,
            },
            "advocacy": {"points_moved": 7, "asks_moved": 0, "badges_moved": 0},
            "community": {"topics_moved": 1, "replies_moved": 0},
            "lifecycle": {
                "events_moved": 1,
                "health_scores_deleted": 0,
                "touches_moved": 0,
                "segment_identities_moved": 0,
                "enrolments_moved": 0,
                "enrolments_exited": 0,
            },
            "courses": {
                "enrolments_moved": 0,
                "enrolments_merged": 0,
                "certificates_moved": 0,
            },
            "portal_onboarding": {"onboarding_progress": 0, "path_completions": 0},
            "support_cases": {"cases_moved": 0, "escalation_offers_moved": 0},
        },
    }


def test_merge_members_health_score_deleted_and_rescored(
    survivor, duplicate, django_capture_on_commit_callbacks, monkeypatch
):
    HealthScore.objects.create(
        member=duplicate, score=40, band="yellow", computed_at=timezone.now()
    )
    calls = []
    monkeypatch.setattr(
        "apps.lifecycle.tasks.refresh_member_scores_task.delay",
        lambda **kwargs: calls.append(kwargs),
    )

    with django_capture_on_commit_callbacks(execute=True):
        merge_members(survivor=survivor, duplicate=duplicate, actor=None)

    assert not HealthScore.objects.filter(member=duplicate).exists()
    assert calls == [{"member_ids": [survivor.pk]}]


def test_merge_members_different_accounts_keeps_survivors(survivor):
    other = factories.MemberFactory()

    entry = merge_members(survivor=survivor, duplicate=other, actor=None)

    survivor.refresh_from_db()
    assert survivor.account_id == entry.account_id
    assert entry.details["survivor_account_id"] == survivor.account_id
    assert entry.details["duplicate_account_id"] == other.account_id


def test_merge_members_survivor_without_account_takes_duplicates(duplicate):
    waiting = factories.MemberFactory(account=None)

    entry = merge_members(survivor=waiting, duplicate=duplicate, actor=None)

    waiting.refresh_from_db()
    assert waiting.account_id == duplicate.account_id
    assert entry.details["account_taken_from_duplicate"] == duplicate.account_id


def test_merge_members_moves_missing_external_id(survivor, duplicate):
    Member.objects.filter(pk=duplicate.pk).update(external_id="usr-9")
    duplicate.refresh_from_db()

    merge_members(survivor=survivor, duplicate=duplicate, actor=None)

    survivor.refresh_from_db()
    duplicate.refresh_from_db()
    assert survivor.external_id == "usr-9"
    assert duplicate.external_id == ""


def test_merge_members_sign_in_times_widened(survivor, duplicate):
    now = timezone.now()
    Member.objects.filter(pk=survivor.pk).update(
        first_signed_in_at=now - timedelta(days=5), last_signed_in_at=now
    )
    Member.objects.filter(pk=duplicate.pk).update(
        first_signed_in_at=now - timedelta(days=50),
        last_signed_in_at=now - timedelta(days=40),
    )

    merge_members(survivor=survivor, duplicate=duplicate, actor=None)

    survivor.refresh_from_db()
    assert survivor.first_signed_in_at == now - timedelta(days=50)
    assert survivor.last_signed_in_at == now


def test_merge_members_into_self_rejected(survivor):
    with pytest.raises(DomainError) as error:
        merge_members(survivor=survivor, duplicate=survivor, actor=None)

    assert error.value.message == (
        f"Member {survivor.pk} cannot be merged into itself; choose two different "
        "members."
    )


def test_merge_members_into_merged_member_rejected(survivor, duplicate):
    third = factories.MemberFactory()
    merge_members(survivor=survivor, duplicate=duplicate, actor=None)

    with pytest.raises(DomainError) as error:
        merge_members(survivor=duplicate, duplicate=third, actor=None)

    third.refresh_from_db()
    assert error.value.code == "merged"
    assert third.merged_into is None
    assert third.deactivated_at is None


def test_merge_members_duplicate_already_merged_rejected(survivor, duplicate):
    other = factories.MemberFactory()
    merge_members(survivor=survivor, duplicate=duplicate, actor=None)

    with pytest.raises(DomainError) as error:
        merge_members(survivor=other, duplicate=duplicate, actor=None)

    assert error.value.message == (
        f"Member {duplicate.pk} was already merged into member {survivor.pk}."
    )


def test_merge_members_into_deactivated_rejected(survivor, duplicate):
    Member.objects.filter(pk=survivor.pk).update(deactivated_at=timezone.now())

    with pytest.raises(DomainError, match="is deactivated"):
        merge_members(survivor=survivor, duplicate=duplicate, actor=None)


def test_merge_members_rejected_changes_nothing(survivor, duplicate):
    topic = factories.TopicFactory(author=duplicate)
    Member.objects.filter(pk=survivor.pk).update(anonymised_at=timezone.now())

    with pytest.raises(DomainError):
        merge_members(survivor=survivor, duplicate=duplicate, actor=None)

    duplicate.refresh_from_db()
    assert Topic.objects.get(pk=topic.pk).author == duplicate
    assert duplicate.deactivated_at is None
    assert not AuditEntry.objects.filter(action="member.merged").exists()


def test_register_merge_handler_other_function_rejected(monkeypatch):
    monkeypatch.setattr(merge_registry, "_handlers", {})

    def first(**kwargs):
        return {}

    def second(**kwargs):
        return {}

    merge_registry.register_merge_handler("extra", first)
    merge_registry.register_merge_handler("extra", first)

    with pytest.raises(ValueError, match="already registered"):
        merge_registry.register_merge_handler("extra", second)
    with pytest.raises(ValueError, match="membership's own"):
        merge_registry.register_merge_handler("membership", first)


@pytest.mark.django_db(transaction=True)
def test_merge_members_concurrent_same_duplicate_one_wins(
    monkeypatch, celery_tasks_in_process
):
    first = factories.MemberFactory()
    second = factories.MemberFactory(account=first.account)
    duplicate = factories.MemberFactory(account=first.account)
    award_points(member=duplicate, points=40, reason="welcome")
    factories.TopicFactory(author=duplicate)

    def slow_handler(*, survivor, duplicate):
        # Holds the first merge's locks long enough for the other to wait.
        time.sleep(0.3)
        return {}

    monkeypatch.setitem(merge_registry._handlers, "slow", slow_handler)
    barrier = threading.Barrier(2)
    outcomes = {}

    def merge_into(survivor):
        try:
            barrier.wait(timeout=5)
            merge_members(survivor=survivor, duplicate=duplicate, actor=None)
            outcomes[survivor.pk] = "ok"
        except DomainError as error:
            outcomes[survivor.pk] = error.code
        finally:
            connection.close()

    threads = [threading.Thread(target=merge_into, args=(s,)) for s in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    duplicate.refresh_from_db()
    winner = duplicate.merged_into
    loser = second if winner == first else first
    assert outcomes[winner.pk] == "ok"
    assert outcomes[loser.pk] == "merged"
    assert balance(winner) == 40
    assert balance(loser) == 0
    assert balance(duplicate) == 0
    assert Topic.objects.get().author == winner
    assert AuditEntry.objects.filter(action="member.merged").count() == 1


def test_merge_members_moves_enrolments_and_touches(survivor, duplicate):
    from apps.lifecycle.models import Enrolment, Touch
    from tests.plays.factories import PlayFactory

    play = PlayFactory()

    def enrol(member, occurrence_key):
        return Enrolment.objects.create(
            play=play,
            member=member,
            account=member.account,
            subject_key=f"member:{member.pk}",
            occurrence_key=occurrence_key,
            status=Enrolment.Status.WAITING,
            next_run_at=timezone.now(),
            enrolled_at=timezone.now(),
        )

    kept = enrol(survivor, "first")
    repeated = enrol(duplicate, "first")
    other = enrol(duplicate, "42")
    Touch.objects.create(member=duplicate, channel="email", touched_at=timezone.now())

    merge_members(survivor=survivor, duplicate=duplicate, actor=None)

    other.refresh_from_db()
    repeated.refresh_from_db()
    kept.refresh_from_db()
    assert other.member == survivor
    assert other.subject_key == f"member:{survivor.pk}"
    assert repeated.member == duplicate
    assert repeated.status == Enrolment.Status.EXITED
    assert repeated.next_run_at is None
    assert kept.status == Enrolment.Status.WAITING
    assert Touch.objects.get().member == survivor


def test_merge_members_moves_asks_and_new_badges(survivor, duplicate):
    from apps.advocacy.models import AdvocacyAsk, Badge, MemberBadge
    from apps.advocacy.services import award_badge, create_advocacy_ask

    shared = Badge.objects.create(slug="helper", name="Helper", description="-")
    only_duplicate = Badge.objects.create(
        slug="pioneer", name="Pioneer", description="-"
    )
    award_badge(member=survivor, badge=shared, reason="test")
    award_badge(member=duplicate, badge=shared, reason="test")
    award_badge(member=duplicate, badge=only_duplicate, reason="test")
    create_advocacy_ask(member=duplicate, kind="review", message="Review us?")

    merge_members(survivor=survivor, duplicate=duplicate, actor=None)

    assert AdvocacyAsk.objects.get().member == survivor
    survivor_badges = set(
        MemberBadge.objects.filter(member=survivor).values_list(
            "badge__slug", flat=True
        )
    )
    assert survivor_badges == {"helper", "pioneer"}
    assert MemberBadge.objects.filter(member=duplicate).count() == 1
