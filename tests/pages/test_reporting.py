from datetime import UTC, date, datetime

import pytest
from django.http import QueryDict
from django.urls import reverse

from apps.membership.models import Account
from apps.reporting import selectors
from apps.reporting.views import parse_window
from rm6.errors import DomainError
from tests import factories

DASHBOARD_URL = reverse("reporting:dashboard")
START = date(2025, 3, 1)
END = date(2025, 3, 31)


def at(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def march_events(db):
    """Create events around the window [2025-03-01, 2025-03-31).

    Active in the window: smb (1 and 10 March), no_account (10 March) and
    mid (in the window's last second). The event of enterprise is exactly at
    the window's end, which is excluded. The event of lookback is one second
    before the start. idle has only a kind that does not count as active.
    """
    members = {
        "smb": factories.MemberFactory(account__segment=Account.Segment.SMB),
        "mid": factories.MemberFactory(account__segment=Account.Segment.MID_MARKET),
        "enterprise": factories.MemberFactory(
            account__segment=Account.Segment.ENTERPRISE
        ),
        "idle": factories.MemberFactory(account__segment=Account.Segment.SMB),
        "lookback": factories.MemberFactory(account=None),
        "no_account": factories.MemberFactory(account=None),
    }
    event = factories.ActivityEventFactory
    event(member=members["smb"], occurred_at=at(2025, 3, 1))
    event(member=members["smb"], occurred_at=at(2025, 3, 10, 9))
    event(member=members["smb"], occurred_at=at(2025, 3, 10, 17))
    event(member=members["no_account"], occurred_at=at(2025, 3, 10, 12))
    event(member=members["mid"], occurred_at=at(2025, 3, 30, 23, 59, 59))
    event(member=members["enterprise"], occurred_at=at(2025, 3, 31))
    event(member=members["lookback"], occurred_at=at(2025, 2, 28, 23, 59, 59))
    event(
        member=members["idle"],
        kind="lifecycle.health_band_changed",
        occurred_at=at(2025, 3, 15),
    )
    return members


# Selectors


def test_count_active_members_window_bounds(march_events):
    assert selectors.count_active_members(start=START, end=END) == 3


def test_count_active_members_includes_start_instant(march_events):
    count = selectors.count_active_members(start=START, end=date(2025, 3, 2))

    assert count == 1


def test_count_active_members_excludes_end_instant(march_events):
    count = selectors.count_active_members(
        start=date(2025, 3, 31), end=date(2025, 4, 1)
    )

    assert count == 1


def test_count_active_members_ignores_inactive_kinds(march_events):
    count = selectors.count_active_members(
        start=date(2025, 3, 15), end=date(2025, 3, 16)
    )

    assert count == 0


def test_daily_activity_series(march_events):
    daily = selectors.list_daily_activity(start=START, end=END)

    active = {row.day: row.active_members for row in daily if row.active_members}
    assert len(daily) == 30
    assert daily[0].day == START
    assert daily[-1].day == date(2025, 3, 30)
    assert active == {
        date(2025, 3, 1): 1,
        date(2025, 3, 10): 2,
        date(2025, 3, 30): 1,
    }


def test_daily_activity_monthly_active_looks_back_30_days(march_events):
    daily = selectors.list_daily_activity(start=START, end=END)

    by_day = {row.day: row for row in daily}
    # 1 March: smb that day and lookback on 28 February.
    assert by_day[date(2025, 3, 1)].monthly_active_members == 2
    # 29 March: the 30 days from 28 February include lookback's last second.
    assert by_day[date(2025, 3, 29)].monthly_active_members == 3
    # 30 March: the 30 days start on 1 March, after lookback's event.
    assert by_day[date(2025, 3, 30)].monthly_active_members == 3


def test_dau_mau_last_day(march_events):
    daily = selectors.list_daily_activity(start=START, end=END)

    last = daily[-1]
    assert last.active_members == 1
    assert last.monthly_active_members == 3
    assert last.dau_mau == pytest.approx(1 / 3)


def test_dau_mau_first_day(march_events):
    daily = selectors.list_daily_activity(start=START, end=END)

    assert daily[0].dau_mau == pytest.approx(1 / 2)


def test_dau_mau_zero_day_with_monthly_activity(march_events):
    daily = selectors.list_daily_activity(start=START, end=END)

    assert daily[1].day == date(2025, 3, 2)
    assert daily[1].dau_mau == 0


def test_dau_mau_no_data_without_monthly_activity(db):
    daily = selectors.list_daily_activity(start=date(2024, 1, 1), end=date(2024, 1, 3))

    assert [row.active_members for row in daily] == [0, 0]
    assert [row.dau_mau for row in daily] == [None, None]
    assert selectors.get_mean_dau_mau(daily) is None


def test_mean_dau_mau_skips_days_without_data():
    daily = [
        selectors.DailyActivity(date(2025, 1, 1), 0, 0),
        selectors.DailyActivity(date(2025, 1, 2), 1, 4),
        selectors.DailyActivity(date(2025, 1, 3), 2, 4),
    ]

    assert selectors.get_mean_dau_mau(daily) == pytest.approx(0.375)


def test_active_members_by_segment(march_events):
    rows = selectors.list_active_members_by_segment(start=START, end=END)

    counts = {row.label: row.active_members for row in rows}
    assert counts == {
        "SMB": 1,
        "Mid-market": 1,
        "Enterprise": 0,
        "No account": 1,
    }
    assert [row.share for row in rows] == pytest.approx([1 / 3, 1 / 3, 0, 1 / 3])


def test_active_members_by_segment_no_data(db):
    rows = selectors.list_active_members_by_segment(
        start=date(2024, 1, 1), end=date(2024, 2, 1)
    )

    assert [row.active_members for row in rows] == [0, 0, 0, 0]
    assert [row.share for row in rows] == [None, None, None, None]


# Window parameters


def test_parse_window_defaults_to_last_30_full_days():
    window = parse_window(QueryDict(""), today=date(2025, 4, 15))

    assert window == (date(2025, 3, 16), date(2025, 4, 15))


def test_parse_window_start_only():
    window = parse_window(QueryDict("start=2025-03-01"), today=date(2025, 4, 15))

    assert window == (START, END)


def test_parse_window_end_only():
    window = parse_window(QueryDict("end=2025-03-31"), today=date(2025, 4, 15))

    assert window == (START, END)


def test_parse_window_invalid_date_names_value():
    with pytest.raises(DomainError) as raised:
        parse_window(QueryDict("start=2025-02-30"), today=date(2025, 4, 15))

    assert raised.value.message == (
        "Invalid start date '2025-02-30': use the form YYYY-MM-DD, "
        "for example 2025-01-31."
    )
    assert raised.value.field == "start"


def test_parse_window_start_after_end():
    with pytest.raises(DomainError) as raised:
        parse_window(
            QueryDict("start=2025-03-31&end=2025-03-01"), today=date(2025, 4, 15)
        )

    assert raised.value.message.startswith(
        "The start date 2025-03-31 is not before the end date 2025-03-01."
    )


def test_parse_window_too_long():
    with pytest.raises(DomainError) as raised:
        parse_window(
            QueryDict("start=2024-01-01&end=2025-03-01"), today=date(2025, 4, 15)
        )

    assert raised.value.message == (
        "The window from 2024-01-01 to 2025-03-01 is 425 days long; "
        "the maximum is 366 days."
    )


# Page


def test_dashboard_anonymous_redirected_to_sign_in(client, db):
    response = client.get(DASHBOARD_URL)

    assert response.status_code == 302
    assert response.url.startswith(reverse("account_login"))


def test_dashboard_member_forbidden(member_client):
    response = member_client.get(DASHBOARD_URL)

    assert response.status_code == 403
    assert "Access denied" in response.content.decode()


def test_dashboard_staff_sees_figures(staff_client, march_events):
    response = staff_client.get(
        DASHBOARD_URL, {"start": "2025-03-01", "end": "2025-03-31"}
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert response.context["active_members"] == 3
    assert response.context["latest"].dau_mau == pytest.approx(1 / 3)
    assert "From 1 Mar 2025 to 30 Mar 2025 inclusive." in html
    assert '<p class="figure">33&nbsp;%</p>' in html


def test_dashboard_no_data_is_not_zero_percent(staff_client, db):
    response = staff_client.get(
        DASHBOARD_URL, {"start": "2024-01-01", "end": "2024-01-31"}
    )

    html = response.content.decode()
    assert response.status_code == 200
    # Two activity figures and six portal KPIs.
    assert html.count('<p class="figure">No data</p>') == 8
    assert "0&nbsp;%" not in html


def test_dashboard_invalid_window_is_400(staff_client, db):
    response = staff_client.get(DASHBOARD_URL, {"start": "March"})

    html = response.content.decode()
    assert response.status_code == 400
    assert "Invalid start date &#x27;March&#x27;" in html
    assert 'value="March"' in html


def test_dashboard_query_count_fixed(
    staff_client, march_events, django_assert_num_queries
):
    params = {"start": "2025-03-01", "end": "2025-03-31"}
    staff_client.get(DASHBOARD_URL, params)

    # Session, user, active count, daily series, segment breakdown, the six
    # portal KPIs, the data source runs and the active Segment sources.
    with django_assert_num_queries(13):
        staff_client.get(DASHBOARD_URL, params)
