import datetime
import zoneinfo

import pytest
from django.utils import timezone

from apps.lifecycle.models import ActivityEvent, CsmTask
from apps.portal.models import BusinessHoliday, Case
from apps.portal.services.case_schedules import flag_sla_breaches
from apps.portal.services.cases import change_case_status, file_case, reply_to_case
from apps.portal.services.sla import (
    WorkingHours,
    add_business_minutes,
    count_business_minutes,
)
from tests import factories
from tests.portal.cases.factories import BusinessCalendarFactory, SlaPolicyFactory

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
NEW_YORK = zoneinfo.ZoneInfo("America/New_York")
OFFICE = WorkingHours(
    zone=BERLIN,
    weekdays=frozenset({0, 1, 2, 3, 4}),
    opens_at=datetime.time(9),
    closes_at=datetime.time(17),
)


def berlin(*args) -> datetime.datetime:
    return datetime.datetime(*args, tzinfo=BERLIN)


def at(monkeypatch, instant: datetime.datetime) -> None:
    monkeypatch.setattr(timezone, "now", lambda: instant)


# Pure arithmetic ---------------------------------------------------------------


def test_add_minutes_within_one_day():
    start = berlin(2026, 12, 1, 10, 0)  # a Tuesday

    assert add_business_minutes(start, 90, OFFICE) == berlin(2026, 12, 1, 11, 30)


def test_add_minutes_before_opening_starts_at_opening():
    start = berlin(2026, 12, 1, 6, 0)

    assert add_business_minutes(start, 30, OFFICE) == berlin(2026, 12, 1, 9, 30)


def test_add_minutes_across_weekend():
    friday_afternoon = berlin(2026, 12, 4, 16, 0)

    due = add_business_minutes(friday_afternoon, 120, OFFICE)

    assert due == berlin(2026, 12, 7, 10, 0)  # Monday


def test_add_minutes_started_on_saturday():
    saturday = berlin(2026, 12, 5, 12, 0)

    assert add_business_minutes(saturday, 60, OFFICE) == berlin(2026, 12, 7, 10, 0)


def test_add_minutes_ending_at_closing_time():
    start = berlin(2026, 12, 1, 16, 0)

    assert add_business_minutes(start, 60, OFFICE) == berlin(2026, 12, 1, 17, 0)


def test_add_minutes_skips_holidays():
    hours = WorkingHours(
        zone=BERLIN,
        weekdays=OFFICE.weekdays,
        opens_at=OFFICE.opens_at,
        closes_at=OFFICE.closes_at,
        holidays=frozenset({datetime.date(2026, 12, 24), datetime.date(2026, 12, 25)}),
    )
    start = berlin(2026, 12, 23, 16, 0)  # Wednesday before two holidays

    assert add_business_minutes(start, 120, hours) == berlin(2026, 12, 28, 10, 0)


def test_add_minutes_without_calendar_runs_around_the_clock():
    start = datetime.datetime(2026, 12, 4, 16, 0, tzinfo=datetime.UTC)

    due = add_business_minutes(start, 48 * 60, None)

    assert due == datetime.datetime(2026, 12, 6, 16, 0, tzinfo=datetime.UTC)


def test_add_minutes_on_spring_forward_counts_real_time():
    # On 8 March 2026 New York's clocks jump from 02:00 to 03:00, so the
    # 00:00-06:00 window holds 5 real hours that day.
    hours = WorkingHours(
        zone=NEW_YORK,
        weekdays=frozenset(range(7)),
        opens_at=datetime.time(0),
        closes_at=datetime.time(6),
    )
    start = datetime.datetime(2026, 3, 8, 0, 0, tzinfo=NEW_YORK)

    due = add_business_minutes(start, 5 * 60 + 30, hours)

    assert due == datetime.datetime(2026, 3, 9, 0, 30, tzinfo=NEW_YORK)


def test_working_window_keeps_wall_time_across_fall_back():
    # Berlin leaves summer time on 25 October 2026; 09:00 is 07:00 UTC the
    # Friday before and 08:00 UTC the Monday after.
    friday = berlin(2026, 10, 23, 16, 0)

    due = add_business_minutes(friday, 120, OFFICE)

    assert due.astimezone(datetime.UTC) == datetime.datetime(
        2026, 10, 26, 9, 0, tzinfo=datetime.UTC
    )


def test_count_minutes_across_weekend():
    start = berlin(2026, 12, 4, 16, 0)
    end = berlin(2026, 12, 7, 10, 0)

    assert count_business_minutes(start, end, OFFICE) == 120


def test_count_minutes_of_end_before_start_is_zero():
    start = berlin(2026, 12, 4, 16, 0)

    assert count_business_minutes(start, start - datetime.timedelta(1), OFFICE) == 0


def test_add_minutes_rejects_negative():
    with pytest.raises(ValueError, match="minutes must be 0 or more, not -1"):
        add_business_minutes(berlin(2026, 12, 1, 10, 0), -1, OFFICE)


# Cases with a calendar ------------------------------------------------------------


@pytest.fixture
def office_policy(db):
    calendar = BusinessCalendarFactory(time_zone="Europe/Berlin")
    return SlaPolicyFactory(
        priority=Case.Priority.NORMAL,
        first_response_minutes=120,
        resolution_minutes=960,
        calendar=calendar,
    )


def test_filed_case_gets_due_times_from_calendar(monkeypatch, office_policy):
    member = factories.MemberFactory()
    at(monkeypatch, berlin(2026, 12, 4, 16, 0))

    case = file_case(member=member, subject="Export fails", body="It stops.")

    assert case.first_response_due_at == berlin(2026, 12, 7, 10, 0)
    assert case.resolution_due_at == berlin(2026, 12, 8, 16, 0)


def test_case_without_policy_has_no_due_times(db):
    member = factories.MemberFactory()

    case = file_case(member=member, subject="Export fails", body="It stops.")

    assert case.first_response_due_at is None
    assert case.resolution_due_at is None


def test_holiday_of_calendar_moves_due_time(monkeypatch, office_policy):
    BusinessHoliday.objects.create(
        calendar=office_policy.calendar, date=datetime.date(2026, 12, 7)
    )
    member = factories.MemberFactory()
    at(monkeypatch, berlin(2026, 12, 4, 16, 0))

    case = file_case(member=member, subject="Export fails", body="It stops.")

    assert case.first_response_due_at == berlin(2026, 12, 8, 10, 0)


def test_breach_across_weekend_flagged_only_after_working_time(
    monkeypatch, office_policy
):
    member = factories.MemberFactory()
    at(monkeypatch, berlin(2026, 12, 4, 16, 0))
    case = file_case(member=member, subject="Export fails", body="It stops.")

    sunday_evening = berlin(2026, 12, 6, 22, 0)
    monday_before_due = berlin(2026, 12, 7, 9, 59)
    monday_after_due = berlin(2026, 12, 7, 10, 1)
    flagged_sunday = flag_sla_breaches(now=sunday_evening)
    flagged_monday_early = flag_sla_breaches(now=monday_before_due)
    flagged_monday_late = flag_sla_breaches(now=monday_after_due)

    case.refresh_from_db()
    assert flagged_sunday == 0
    assert flagged_monday_early == 0
    assert flagged_monday_late == 1
    assert case.first_response_breached_at == monday_after_due
    assert case.resolution_breached_at is None
    assert case.escalated_at == monday_after_due


def test_breach_records_events_and_escalates_to_csm(monkeypatch, office_policy):
    owner = factories.StaffFactory()
    account = factories.AccountFactory(owner=owner)
    member = factories.MemberFactory(account=account)
    at(monkeypatch, berlin(2026, 12, 4, 16, 0))
    case = file_case(member=member, subject="Export fails", body="It stops.")

    flag_sla_breaches(now=berlin(2026, 12, 9, 12, 0))

    kinds = list(
        ActivityEvent.objects.filter(
            kind__in=["portal.case_sla_breached", "portal.case_escalated"]
        )
        .order_by("id")
        .values_list("kind", "properties")
    )
    task = CsmTask.objects.get()
    assert kinds == [
        (
            "portal.case_sla_breached",
            {"target": "first_response", "priority": "normal"},
        ),
        ("portal.case_sla_breached", {"target": "resolution", "priority": "normal"}),
        (
            "portal.case_escalated",
            {"reason": "first_response", "owner_id": owner.pk, "csm_task_id": task.pk},
        ),
    ]
    assert task.owner == owner
    assert task.account == account
    assert task.title == f"Case #{case.pk} missed its first response target"


def test_escalation_goes_to_assignee_first(monkeypatch, office_policy):
    owner = factories.StaffFactory()
    assignee = factories.StaffFactory()
    member = factories.MemberFactory(account=factories.AccountFactory(owner=owner))
    at(monkeypatch, berlin(2026, 12, 4, 16, 0))
    case = file_case(member=member, subject="Export fails", body="It stops.")
    Case.objects.filter(pk=case.pk).update(assignee=assignee)

    flag_sla_breaches(now=berlin(2026, 12, 7, 11, 0))

    assert CsmTask.objects.get().owner == assignee


def test_second_run_flags_nothing_more(monkeypatch, office_policy):
    member = factories.MemberFactory()
    at(monkeypatch, berlin(2026, 12, 4, 16, 0))
    file_case(member=member, subject="Export fails", body="It stops.")

    first = flag_sla_breaches(now=berlin(2026, 12, 7, 11, 0))
    second = flag_sla_breaches(now=berlin(2026, 12, 7, 11, 5))

    assert first == 1
    assert second == 0
    assert ActivityEvent.objects.filter(kind="portal.case_escalated").count() == 1


def test_late_first_response_still_flagged(monkeypatch, office_policy):
    member = factories.MemberFactory()
    at(monkeypatch, berlin(2026, 12, 4, 16, 0))
    case = file_case(member=member, subject="Export fails", body="It stops.")
    at(monkeypatch, berlin(2026, 12, 7, 12, 0))
    reply_to_case(case=case, author=factories.StaffFactory(), body="Looking.")

    flag_sla_breaches(now=berlin(2026, 12, 7, 12, 5))

    case.refresh_from_db()
    assert case.first_response_breached_at == berlin(2026, 12, 7, 12, 5)


def test_waiting_pauses_resolution_clock(monkeypatch, office_policy):
    member = factories.MemberFactory()
    staff = factories.StaffFactory()
    at(monkeypatch, berlin(2026, 12, 4, 16, 0))
    case = file_case(member=member, subject="Export fails", body="It stops.")
    at(monkeypatch, berlin(2026, 12, 7, 9, 0))  # Monday, 960 - 60 = 900 left
    change_case_status(case=case, status=Case.Status.WAITING, actor=staff)
    case.refresh_from_db()
    paused_due, minutes_left = case.resolution_due_at, case.resolution_minutes_left

    flagged_while_waiting = flag_sla_breaches(now=berlin(2026, 12, 10, 12, 0))
    at(monkeypatch, berlin(2026, 12, 10, 9, 0))  # Thursday
    reply_to_case(case=case, author=member.user, body="Here are the logs.")

    case.refresh_from_db()
    assert paused_due is None
    assert minutes_left == 900
    # Only the first response, whose clock waiting does not pause.
    assert flagged_while_waiting == 1
    assert case.resolution_breached_at is None
    assert case.status == Case.Status.OPEN
    assert case.resolution_minutes_left is None
    # 900 minutes from Thursday 09:00: 480 Thursday, 420 Friday.
    assert case.resolution_due_at == berlin(2026, 12, 11, 16, 0)
