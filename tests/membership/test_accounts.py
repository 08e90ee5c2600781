import threading
from datetime import date, timedelta
from decimal import Decimal

import pytest
from allauth.socialaccount.models import SocialAccount, SocialApp
from django.db import connection
from django.utils import timezone

from apps.membership.models import (
    Account,
    AccountAffiliation,
    AccountArr,
    AccountIdentityProvider,
    AuditEntry,
)
from apps.membership.selectors.accounts import (
    get_profile_match_rate,
    list_account_family_ids,
    list_profile_match_rates,
)
from apps.membership.services.accounts import (
    MAX_HIERARCHY_LEVELS,
    add_affiliation,
    create_account_from_review,
    record_arr,
    remove_affiliation,
    set_account_parent,
    upsert_account,
)
from rm6.errors import DomainError
from tests import factories

pytestmark = pytest.mark.django_db

NEW_ACCOUNT = {"name": "Globex", "segment": "enterprise", "cs_tier": "high_touch"}


def test_upsert_account_creates_with_fields(staff_user):
    account, created = upsert_account(
        external_id="crm-1",
        email_domains=["Globex.TEST", "globex.test", "globex-eu.test"],
        contract_start=date(2024, 1, 1),
        renewal_date=date(2025, 1, 1),
        owner_email=staff_user.email.upper(),
        time_zone="Europe/Paris",
        **NEW_ACCOUNT,
    )

    account.refresh_from_db()
    assert created is True
    assert account.external_id == "crm-1"
    assert account.name == "Globex"
    assert account.email_domains == ["globex.test", "globex-eu.test"]
    assert account.segment == Account.Segment.ENTERPRISE
    assert account.owner == staff_user
    assert account.time_zone == "Europe/Paris"
    assert AuditEntry.objects.get(account=account).action == "account.created"


def test_upsert_account_updates_existing():
    account, _ = upsert_account(external_id="crm-1", **NEW_ACCOUNT)

    again, created = upsert_account(external_id="crm-1", segment="smb")

    again.refresh_from_db()
    assert created is False
    assert again.pk == account.pk
    assert again.segment == Account.Segment.SMB
    assert again.name == "Globex"
    assert Account.objects.count() == 1
    update = AuditEntry.objects.get(action="account.updated")
    assert update.details == {"changes": {"segment": ["enterprise", "smb"]}}


def test_upsert_account_unchanged_writes_no_audit():
    upsert_account(external_id="crm-1", **NEW_ACCOUNT)

    upsert_account(external_id="crm-1", **NEW_ACCOUNT)

    assert AuditEntry.objects.filter(action="account.updated").count() == 0


def test_upsert_account_new_without_segment_rejected():
    with pytest.raises(DomainError) as error:
        upsert_account(external_id="crm-1", name="Globex", cs_tier="pooled")

    assert error.value.field == "segment"
    assert error.value.message == (
        "The segment is missing. Use one of: smb, mid_market, enterprise."
    )
    assert not Account.objects.exists()


@pytest.mark.parametrize(
    ("domain", "problem"),
    [
        ("acme", "has no dot; give a full domain such as acme.com"),
        (
            "bob@acme.com",
            "contains @; give only the part after the @, such as acme.com",
        ),
        (
            "-acme.com",
            "is not a valid domain; use letters, digits and hyphens between dots, "
            "such as acme.com",
        ),
        ("acme.c0m", "ends in 'c0m', which is not a valid top-level domain"),
        ("äcme.com", "contains non-ASCII letters; give its xn-- (punycode) form"),
    ],
)
def test_upsert_account_invalid_domain_rejected(domain, problem):
    with pytest.raises(DomainError) as error:
        upsert_account(external_id="crm-1", email_domains=[domain], **NEW_ACCOUNT)

    assert error.value.field == "email_domains"
    assert error.value.message == f"The email domain {domain!r} {problem}."


def test_upsert_account_public_domain_rejected():
    with pytest.raises(DomainError, match=r"gmail\.com is a public email domain"):
        upsert_account(external_id="crm-1", email_domains=["gmail.com"], **NEW_ACCOUNT)


def test_upsert_account_domain_of_other_account_rejected():
    other = factories.AccountFactory(name="Initech", email_domains=["initech.test"])

    with pytest.raises(DomainError) as error:
        upsert_account(
            external_id="crm-1", email_domains=["INITECH.test"], **NEW_ACCOUNT
        )

    assert error.value.field == "email_domains"
    assert error.value.code == "conflict"
    assert error.value.message == (
        f"The email domain initech.test already belongs to account Initech (id "
        f"{other.pk}), and a domain can belong to one account only. Remove it "
        "from that account first, or leave it out here."
    )
    assert not Account.objects.filter(external_id="crm-1").exists()


def test_upsert_account_keeps_domain_shared_before_rule():
    factories.AccountFactory(email_domains=["shared.test"])
    legacy = factories.AccountFactory(
        external_id="crm-1", email_domains=["shared.test"]
    )

    account, _ = upsert_account(
        external_id="crm-1", email_domains=["shared.test", "new.test"]
    )

    assert account.pk == legacy.pk
    assert account.email_domains == ["shared.test", "new.test"]


def test_upsert_account_invalid_time_zone_rejected():
    with pytest.raises(DomainError) as error:
        upsert_account(external_id="crm-1", time_zone="Mars/Olympus", **NEW_ACCOUNT)

    assert error.value.field == "time_zone"


def test_upsert_account_owner_not_staff_rejected():
    user = factories.UserFactory(email="pat@acme.test")

    with pytest.raises(DomainError) as error:
        upsert_account(external_id="crm-1", owner_email=user.email, **NEW_ACCOUNT)

    assert error.value.field == "owner_email"
    assert error.value.message == (
        "pat@acme.test is not an active staff user, so cannot own an account. "
        "Choose a customer success manager."
    )


def test_upsert_account_unknown_owner_rejected():
    with pytest.raises(DomainError) as error:
        upsert_account(
            external_id="crm-1", owner_email="nobody@vendor.test", **NEW_ACCOUNT
        )

    assert error.value.field == "owner_email"


def test_upsert_account_sets_parent_by_external_id():
    parent, _ = upsert_account(external_id="crm-parent", **NEW_ACCOUNT)

    child, _ = upsert_account(
        external_id="crm-child", parent_external_id="crm-parent", **NEW_ACCOUNT
    )

    assert child.parent == parent


def test_upsert_account_unknown_parent_rejected():
    with pytest.raises(DomainError) as error:
        upsert_account(
            external_id="crm-child", parent_external_id="crm-none", **NEW_ACCOUNT
        )

    assert error.value.field == "parent_external_id"
    assert "No account has the external ID 'crm-none'" in error.value.message


def test_upsert_account_empty_parent_clears_it():
    upsert_account(external_id="crm-parent", **NEW_ACCOUNT)
    upsert_account(
        external_id="crm-child", parent_external_id="crm-parent", **NEW_ACCOUNT
    )

    child, _ = upsert_account(external_id="crm-child", parent_external_id="")

    assert child.parent is None


def test_upsert_account_renewal_before_start_rejected():
    with pytest.raises(DomainError) as error:
        upsert_account(
            external_id="crm-1",
            contract_start=date(2025, 1, 1),
            renewal_date=date(2024, 12, 31),
            **NEW_ACCOUNT,
        )

    assert error.value.field == "renewal_date"


def test_upsert_account_unknown_field_raises_type_error():
    with pytest.raises(TypeError, match="Unknown account fields"):
        upsert_account(external_id="crm-1", colour="blue", **NEW_ACCOUNT)


def test_set_account_parent_cycle_rejected():
    top = factories.AccountFactory(name="Top")
    middle = factories.AccountFactory(name="Middle", parent=top)
    bottom = factories.AccountFactory(name="Bottom", parent=middle)

    with pytest.raises(DomainError) as error:
        set_account_parent(account=top, parent=bottom)

    top.refresh_from_db()
    assert error.value.code == "cycle"
    assert error.value.message == (
        f"Account Bottom (id {bottom.pk}) is a subsidiary of Top, so it cannot "
        "also be its parent: the hierarchy would loop."
    )
    assert top.parent is None


def test_set_account_parent_self_rejected():
    account = factories.AccountFactory(name="Solo")

    with pytest.raises(DomainError, match="cannot be its own parent"):
        set_account_parent(account=account, parent=account)


def test_set_account_parent_too_deep_rejected():
    chain = [factories.AccountFactory()]
    for _ in range(MAX_HIERARCHY_LEVELS - 1):
        chain.append(factories.AccountFactory(parent=chain[-1]))
    extra = factories.AccountFactory(name="Extra")

    with pytest.raises(DomainError, match="more than 10 levels"):
        set_account_parent(account=extra, parent=chain[-1])

    set_account_parent(account=extra, parent=chain[-2])
    assert extra.parent == chain[-2]


def test_set_account_parent_subtree_counts_toward_depth():
    chain = [factories.AccountFactory()]
    for _ in range(MAX_HIERARCHY_LEVELS - 2):
        chain.append(factories.AccountFactory(parent=chain[-1]))
    moved = factories.AccountFactory()
    factories.AccountFactory(parent=factories.AccountFactory(parent=moved))

    with pytest.raises(DomainError, match="more than 10 levels"):
        set_account_parent(account=moved, parent=chain[-1])


def test_set_account_parent_none_detaches():
    parent = factories.AccountFactory()
    child = factories.AccountFactory(parent=parent)

    set_account_parent(account=child, parent=None)

    child.refresh_from_db()
    assert child.parent is None


def test_list_account_family_ids_includes_subsidiaries():
    top = factories.AccountFactory()
    child = factories.AccountFactory(parent=top)
    grandchild = factories.AccountFactory(parent=child)
    sibling = factories.AccountFactory(parent=top)
    factories.AccountFactory()

    assert list_account_family_ids(top) == sorted(
        [top.pk, child.pk, grandchild.pk, sibling.pk]
    )
    assert list_account_family_ids(child) == [child.pk, grandchild.pk]
    assert list_account_family_ids(grandchild) == [grandchild.pk]


def test_record_arr_sets_current_arr_to_latest():
    account = factories.AccountFactory(arr=0)
    today = timezone.localdate()

    record_arr(
        account=account,
        effective_on=today - timedelta(days=30),
        arr="100",
        source="crm",
    )
    record_arr(account=account, effective_on=today, arr="150.50", source="crm")
    record_arr(
        account=account, effective_on=today - timedelta(days=60), arr="80", source="crm"
    )

    account.refresh_from_db()
    assert account.arr == Decimal("150.50")
    assert list(account.arr_history.values_list("arr", flat=True)) == [
        Decimal("150.50"),
        Decimal("100.00"),
        Decimal("80.00"),
    ]


def test_record_arr_same_day_replaces_value():
    account = factories.AccountFactory()
    today = timezone.localdate()
    record_arr(account=account, effective_on=today, arr="100", source="crm")

    entry = record_arr(account=account, effective_on=today, arr="120", source="import")

    account.refresh_from_db()
    assert AccountArr.objects.filter(account=account).count() == 1
    assert entry.arr == Decimal("120")
    assert entry.source == "import"
    assert account.arr == Decimal("120")


def test_record_arr_future_date_rejected():
    account = factories.AccountFactory(arr=5)
    tomorrow = timezone.localdate() + timedelta(days=2)

    with pytest.raises(DomainError) as error:
        record_arr(account=account, effective_on=tomorrow, arr="10", source="crm")

    assert error.value.field == "arr_effective_on"
    assert not AccountArr.objects.exists()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("-1", "The ARR -1 is negative."),
        ("1.005", "The ARR 1.005 has more than 2 decimal places; round it to cents."),
        ("lots", "The ARR 'lots' is not a number."),
    ],
)
def test_record_arr_invalid_amount_rejected(value, message):
    account = factories.AccountFactory()

    with pytest.raises(DomainError) as error:
        record_arr(
            account=account, effective_on=timezone.localdate(), arr=value, source="crm"
        )

    assert error.value.message.startswith(message)


def test_upsert_account_arr_recorded_in_history():
    account, _ = upsert_account(external_id="crm-1", arr="1000", **NEW_ACCOUNT)
    upsert_account(external_id="crm-1", arr="1200")
    past = timezone.localdate() - timedelta(days=365)

    upsert_account(external_id="crm-1", arr="900", arr_effective_on=past)

    account.refresh_from_db()
    assert account.arr == Decimal("1200")
    history = list(account.arr_history.values_list("effective_on", "arr", "source"))
    assert history == [
        (timezone.localdate(), Decimal("1200.00"), "api"),
        (past, Decimal("900.00"), "api"),
    ]


def test_upsert_account_same_arr_starts_history():
    account = factories.AccountFactory(external_id="crm-1", arr=500)

    upsert_account(external_id="crm-1", arr="500")
    upsert_account(external_id="crm-1", arr="500")

    assert account.arr_history.count() == 1


def test_add_affiliation_creates_and_updates_relationship():
    member = factories.MemberFactory()
    customer = factories.AccountFactory()

    add_affiliation(member=member, account=customer, relationship="partner")
    add_affiliation(member=member, account=customer, relationship="consultant")

    affiliation = AccountAffiliation.objects.get(member=member)
    assert affiliation.account == customer
    assert affiliation.relationship == "consultant"
    assert AuditEntry.objects.filter(action="member.affiliation_added").count() == 2


def test_add_affiliation_primary_account_rejected():
    member = factories.MemberFactory()

    with pytest.raises(DomainError, match=r"already .* primary account"):
        add_affiliation(member=member, account=member.account, relationship="partner")


def test_add_affiliation_unknown_relationship_rejected():
    member = factories.MemberFactory()

    with pytest.raises(DomainError) as error:
        add_affiliation(
            member=member, account=factories.AccountFactory(), relationship="friend"
        )

    assert error.value.field == "relationship"


def test_remove_affiliation_deletes_once():
    member = factories.MemberFactory()
    customer = factories.AccountFactory()
    add_affiliation(member=member, account=customer, relationship="partner")

    assert remove_affiliation(member=member, account=customer) is True
    assert remove_affiliation(member=member, account=customer) is False
    assert not AccountAffiliation.objects.exists()


def test_create_account_from_review_claims_domain_and_queue(staff_user):
    waiting = factories.MemberFactory(account=None, user__email="ann@northwind.test")
    colleague = factories.MemberFactory(account=None, user__email="bo@NorthWind.test")
    stranger = factories.MemberFactory(account=None, user__email="cy@other.test")

    account = create_account_from_review(
        member=waiting, segment="smb", cs_tier="tech_touch", actor=staff_user
    )

    waiting.refresh_from_db()
    colleague.refresh_from_db()
    stranger.refresh_from_db()
    assert account.name == "northwind.test"
    assert account.email_domains == ["northwind.test"]
    assert waiting.account == account
    assert colleague.account == account
    assert stranger.account is None
    assert not account.arr_history.exists()
    audit = AuditEntry.objects.get(action="account.created_from_review")
    assert audit.details == {
        "domain": "northwind.test",
        "member_ids": [waiting.pk, colleague.pk],
    }


def test_create_account_from_review_assigned_member_rejected():
    member = factories.MemberFactory()

    with pytest.raises(DomainError, match="already belongs to an account"):
        create_account_from_review(member=member, segment="smb", cs_tier="pooled")


def test_create_account_from_review_public_domain_rejected():
    member = factories.MemberFactory(account=None, user__email="ann@gmail.com")

    with pytest.raises(DomainError, match="public email domain"):
        create_account_from_review(member=member, segment="smb", cs_tier="pooled")

    assert Account.objects.count() == 0


# Profile match rate


def add_sso_provider(account: Account, provider_id: str) -> SocialApp:
    social_app = SocialApp.objects.create(
        provider="openid_connect",
        provider_id=provider_id,
        name=provider_id,
        client_id=provider_id,
    )
    AccountIdentityProvider.objects.create(account=account, social_app=social_app)
    return social_app


def test_profile_match_rate_without_sso_counts_account_members():
    factories.MemberFactory.create_batch(3)
    factories.MemberFactory(account=None)

    rate = get_profile_match_rate()

    assert rate.matched == 3
    assert rate.total == 4
    assert rate.rate == 0.75


def test_profile_match_rate_sso_account_needs_identity():
    account = factories.AccountFactory()
    add_sso_provider(account, "acme-oidc")
    linked = factories.MemberFactory(account=account)
    factories.MemberFactory(account=account)
    SocialAccount.objects.create(user=linked.user, provider="acme-oidc", uid="1")

    rate = get_profile_match_rate()

    assert (rate.matched, rate.total) == (1, 2)


def test_profile_match_rate_other_provider_unmatched():
    account = factories.AccountFactory()
    add_sso_provider(account, "acme-oidc")
    member = factories.MemberFactory(account=account)
    SocialAccount.objects.create(user=member.user, provider="other-oidc", uid="1")

    rate = get_profile_match_rate()

    assert (rate.matched, rate.total) == (0, 1)


def test_profile_match_rate_app_without_provider_id():
    account = factories.AccountFactory()
    social_app = SocialApp.objects.create(
        provider="saml", provider_id="", name="SAML", client_id="acme"
    )
    AccountIdentityProvider.objects.create(account=account, social_app=social_app)
    member = factories.MemberFactory(account=account)
    SocialAccount.objects.create(user=member.user, provider="saml", uid="1")

    assert get_profile_match_rate().matched == 1


def test_profile_match_rate_excludes_inactive_members():
    factories.MemberFactory()
    factories.MemberFactory(deactivated_at=timezone.now())
    factories.MemberFactory(anonymised_at=timezone.now())

    rate = get_profile_match_rate()

    assert (rate.matched, rate.total) == (1, 1)


def test_profile_match_rate_no_members_is_no_data():
    rate = get_profile_match_rate()

    assert rate.total == 0
    assert rate.rate is None


def test_profile_match_rate_by_segment():
    smb = factories.AccountFactory(segment=Account.Segment.SMB)
    sso = factories.AccountFactory(segment=Account.Segment.ENTERPRISE)
    add_sso_provider(sso, "big-oidc")
    factories.MemberFactory(account=smb)
    factories.MemberFactory(account=sso)
    factories.MemberFactory(account=None)

    rates = {rate.segment: rate for rate in list_profile_match_rates()}

    assert (rates[None].matched, rates[None].total) == (1, 3)
    assert (rates["smb"].matched, rates["smb"].total) == (1, 1)
    assert (rates["enterprise"].matched, rates["enterprise"].total) == (0, 1)
    assert rates["mid_market"].rate is None
    assert get_profile_match_rate(segment="enterprise").rate == 0.0


def run_in_threads(*calls) -> list:
    """Run each call in its own thread and connection; return results or errors."""
    barrier = threading.Barrier(len(calls))
    outcomes: list = [None] * len(calls)

    def run(index, call):
        try:
            barrier.wait(timeout=5)
            outcomes[index] = call()
        except Exception as error:  # returned to the test, which asserts on it
            outcomes[index] = error
        finally:
            connection.close()

    threads = [
        threading.Thread(target=run, args=(index, call))
        for index, call in enumerate(calls)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return outcomes


@pytest.mark.django_db(transaction=True)
def test_upsert_account_concurrent_domain_claims_one_wins():
    outcomes = run_in_threads(
        lambda: upsert_account(
            external_id="crm-1", email_domains=["shared.test"], **NEW_ACCOUNT
        ),
        lambda: upsert_account(
            external_id="crm-2", email_domains=["shared.test"], **NEW_ACCOUNT
        ),
    )

    errors = [o for o in outcomes if isinstance(o, Exception)]
    assert len(errors) == 1
    assert isinstance(errors[0], DomainError)
    assert errors[0].code == "conflict"
    assert Account.objects.filter(email_domains__contains=["shared.test"]).count() == 1


@pytest.mark.django_db(transaction=True)
def test_upsert_account_concurrent_same_external_id_creates_once():
    outcomes = run_in_threads(
        lambda: upsert_account(external_id="crm-1", **NEW_ACCOUNT),
        lambda: upsert_account(external_id="crm-1", **NEW_ACCOUNT),
    )

    assert sorted(created for _, created in outcomes) == [False, True]
    assert Account.objects.filter(external_id="crm-1").count() == 1


@pytest.mark.django_db(transaction=True)
def test_set_account_parent_concurrent_swap_leaves_no_cycle():
    first = factories.AccountFactory(name="First")
    second = factories.AccountFactory(name="Second")

    outcomes = run_in_threads(
        lambda: set_account_parent(
            account=Account.objects.get(pk=first.pk), parent=second
        ),
        lambda: set_account_parent(
            account=Account.objects.get(pk=second.pk), parent=first
        ),
    )

    errors = [o for o in outcomes if isinstance(o, DomainError)]
    assert [error.code for error in errors] == ["cycle"]
    parents = dict(Account.objects.values_list("pk", "parent_id"))
    assert None in (parents[first.pk], parents[second.pk])
