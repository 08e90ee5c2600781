from datetime import date, timedelta

import pytest

from apps.membership.models import Account
from apps.reporting.selectors.portal import (
    DEFAULT_VALUE_MOMENT_KIND,
    get_account_time_to_value,
    get_member_time_to_value,
)
from tests import factories
from tests.reporting.factories import at

START = date(2025, 3, 1)
END = date(2025, 3, 31)
VALUE = DEFAULT_VALUE_MOMENT_KIND


def signed_in(when, **kwargs):
    return factories.MemberFactory(first_signed_in_at=when, **kwargs)


def reach_value(member, when, kind=VALUE):
    return factories.ActivityEventFactory(member=member, kind=kind, occurred_at=when)


def member_total(start=START, end=END):
    return get_member_time_to_value(start=start, end=end).breakdown.total


def account_total(start=START, end=END):
    return get_account_time_to_value(start=start, end=end).breakdown.total


# Members


def test_member_ttv_median_odd_count(db):
    for hours in (1, 3, 8):
        member = signed_in(at(2025, 3, 5))
        reach_value(member, at(2025, 3, 5) + timedelta(hours=hours))

    total = member_total()

    assert total.cohort == 3
    assert total.reached == 3
    assert total.median == timedelta(hours=3)


def test_member_ttv_median_even_count(db):
    for hours in (1, 3, 8, 20):
        member = signed_in(at(2025, 3, 5))
        reach_value(member, at(2025, 3, 5) + timedelta(hours=hours))

    total = member_total()

    assert total.reached == 4
    assert total.median == timedelta(hours=5, minutes=30)


def test_member_ttv_not_reached_share(db):
    reached = signed_in(at(2025, 3, 2))
    reach_value(reached, at(2025, 3, 4))
    signed_in(at(2025, 3, 3))
    other_kind = signed_in(at(2025, 3, 3))
    reach_value(other_kind, at(2025, 3, 4), kind="community.question_posted")

    total = member_total()

    assert total.cohort == 3
    assert total.reached == 1
    assert total.median == timedelta(days=2)
    assert total.not_reached.count == 2
    assert total.not_reached.value == pytest.approx(2 / 3)


def test_member_ttv_none_reached_has_no_median(db):
    signed_in(at(2025, 3, 3))

    total = member_total()

    assert total.cohort == 1
    assert total.median is None
    assert total.not_reached.percent == 100.0


def test_member_ttv_window_start_included(db):
    member = signed_in(at(2025, 3, 1))
    reach_value(member, at(2025, 3, 1, 2))

    total = member_total()

    assert total.cohort == 1
    assert total.median == timedelta(hours=2)


def test_member_ttv_window_end_excluded(db):
    signed_in(at(2025, 3, 31))
    signed_in(at(2025, 2, 28, 23, 59, 59))
    last_second = signed_in(at(2025, 3, 30, 23, 59, 59))
    reach_value(last_second, at(2025, 3, 31, 0, 59, 59))

    total = member_total()

    assert total.cohort == 1
    assert total.median == timedelta(hours=1)


def test_member_ttv_value_after_window_counts(db):
    member = signed_in(at(2025, 3, 30))
    reach_value(member, at(2025, 4, 9))

    total = member_total()

    assert total.reached == 1
    assert total.median == timedelta(days=10)


def test_member_ttv_first_value_moment_counts(db):
    member = signed_in(at(2025, 3, 5))
    reach_value(member, at(2025, 3, 8))
    reach_value(member, at(2025, 3, 6))

    assert member_total().median == timedelta(days=1)


def test_member_ttv_value_before_sign_in_is_zero(db):
    member = signed_in(at(2025, 3, 5))
    reach_value(member, at(2025, 3, 4))

    total = member_total()

    assert total.reached == 1
    assert total.median == timedelta(0)


def test_member_ttv_never_signed_in_excluded(db):
    member = factories.MemberFactory(first_signed_in_at=None)
    reach_value(member, at(2025, 3, 4))

    assert member_total().cohort == 0


def test_member_ttv_merged_member_excluded(db):
    survivor = signed_in(at(2025, 3, 5))
    signed_in(at(2025, 3, 5), merged_into=survivor)

    assert member_total().cohort == 1


def test_member_ttv_kind_from_setting(db, settings):
    settings.RM6_VALUE_MOMENT_KIND = "community.question_posted"
    member = signed_in(at(2025, 3, 5))
    reach_value(member, at(2025, 3, 6), kind="community.question_posted")
    reach_value(member, at(2025, 3, 5, 1))

    report = get_member_time_to_value(start=START, end=END)

    assert report.kind == "community.question_posted"
    assert report.breakdown.total.median == timedelta(days=1)


def test_member_ttv_by_segment(db):
    smb = signed_in(at(2025, 3, 5), account__segment=Account.Segment.SMB)
    reach_value(smb, at(2025, 3, 6))
    signed_in(at(2025, 3, 5), account__segment=Account.Segment.SMB)
    enterprise = signed_in(at(2025, 3, 5), account__segment=Account.Segment.ENTERPRISE)
    reach_value(enterprise, at(2025, 3, 8))
    no_account = signed_in(at(2025, 3, 5), account=None)
    reach_value(no_account, at(2025, 3, 5, 6))

    rows = {
        row.label: row
        for row in get_member_time_to_value(start=START, end=END).breakdown.segments
    }

    assert list(rows) == ["SMB", "Mid-market", "Enterprise", "No account"]
    assert (rows["SMB"].cohort, rows["SMB"].reached) == (2, 1)
    assert rows["SMB"].median == timedelta(days=1)
    assert rows["Mid-market"].cohort == 0
    assert rows["Mid-market"].median is None
    assert rows["Enterprise"].median == timedelta(days=3)
    assert rows["No account"].median == timedelta(hours=6)


def test_member_ttv_total_median_not_mean_of_segments(db):
    for hours, segment in ((1, "smb"), (2, "smb"), (30, "enterprise")):
        member = signed_in(at(2025, 3, 5), account__segment=segment)
        reach_value(member, at(2025, 3, 5) + timedelta(hours=hours))

    total = member_total()

    assert total.cohort == 3
    assert total.median == timedelta(hours=2)


def test_member_ttv_no_data(db):
    total = member_total()

    assert total.cohort == 0
    assert total.median is None
    assert total.not_reached.value is None


# Accounts


def contract(start_on, **kwargs):
    return factories.AccountFactory(contract_start=start_on, **kwargs)


def test_account_ttv_first_member_counts(db):
    account = contract(date(2025, 3, 10))
    late = factories.MemberFactory(account=account)
    early = factories.MemberFactory(account=account)
    reach_value(late, at(2025, 3, 20))
    reach_value(early, at(2025, 3, 12))

    total = account_total()

    assert total.cohort == 1
    assert total.reached == 1
    assert total.median == timedelta(days=2)


def test_account_ttv_starts_in_account_time_zone(db):
    # 00:00 on 10 March in Paris (UTC+1 in winter) is 23:00 UTC the day before.
    account = contract(date(2025, 3, 10), time_zone="Europe/Paris")
    reach_value(factories.MemberFactory(account=account), at(2025, 3, 10, 23))

    assert account_total().median == timedelta(days=1)


def test_account_ttv_median_even_and_not_reached(db):
    for days in (2, 6):
        account = contract(date(2025, 3, 10))
        reach_value(
            factories.MemberFactory(account=account),
            at(2025, 3, 10) + timedelta(days=days),
        )
    contract(date(2025, 3, 10))

    total = account_total()

    assert total.cohort == 3
    assert total.reached == 2
    assert total.median == timedelta(days=4)
    assert total.not_reached.value == pytest.approx(1 / 3)


def test_account_ttv_window_bounds(db):
    on_start = contract(START)
    reach_value(factories.MemberFactory(account=on_start), at(2025, 3, 2))
    contract(END)
    contract(date(2025, 2, 28))
    contract(None)

    total = account_total()

    assert total.cohort == 1
    assert total.median == timedelta(days=1)


def test_account_ttv_other_accounts_members_ignored(db):
    contract(date(2025, 3, 10))
    reach_value(factories.MemberFactory(), at(2025, 3, 11))

    total = account_total()

    assert total.cohort == 1
    assert total.reached == 0


def test_account_ttv_by_segment(db):
    smb = contract(date(2025, 3, 10), segment=Account.Segment.SMB)
    reach_value(factories.MemberFactory(account=smb), at(2025, 3, 13))
    contract(date(2025, 3, 10), segment=Account.Segment.ENTERPRISE)

    rows = {
        row.label: row
        for row in get_account_time_to_value(start=START, end=END).breakdown.segments
    }

    assert rows["SMB"].median == timedelta(days=3)
    assert (rows["Enterprise"].cohort, rows["Enterprise"].reached) == (1, 0)
    assert rows["No account"].cohort == 0
