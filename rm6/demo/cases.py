"""Demo support cases: a business calendar, SLA policies, case topics and a
few cases of the first account in every status.

Rows are written directly, like the rest of the demo, but the due times,
paused clocks and breach flags come from the portal's SLA arithmetic, so
they are those a case filed at the same time would have.
"""

import datetime
import random

from django.contrib.postgres.search import SearchVector

from apps.portal.models import (
    BusinessCalendar,
    BusinessHoliday,
    Case,
    CaseMessage,
    CaseStatusChange,
    CaseTopic,
    SlaPolicy,
)
from apps.portal.services.sla import (
    WorkingHours,
    add_business_minutes,
    count_business_minutes,
    load_working_hours,
)
from rm6.demo.records import DemoDataSet

CALENDAR_NAME = "Support hours (Berlin)"
# (priority, first response minutes, resolution minutes) in working time.
SLA_TARGETS = [
    ("low", 24 * 60, 10 * 480),
    ("normal", 8 * 60, 5 * 480),
    ("high", 2 * 60, 2 * 480),
    ("urgent", 30, 480),
]
CASE_TOPICS = [
    ("Exports and reports", "exports"),
    ("Integrations and API", "integrations"),
    ("Sign-in and SSO", "sign-in"),
    ("Billing", "billing"),
]
# (subject, status, priority, topic slug, hours ago, staff replied)
DEMO_CASES = [
    ("Scheduled export stops at 50 percent", "new", "high", "exports", 3, False),
    ("Webhook retries arrive twice", "open", "normal", "integrations", 30, True),
    (
        "SSO sign-in loops back to the login page",
        "waiting",
        "urgent",
        "sign-in",
        50,
        True,
    ),
    ("Invoice shows the old billing address", "solved", "low", "billing", 120, True),
    ("CSV export uses the wrong date format", "closed", "normal", "exports", 400, True),
    ("API token expired without warning", "open", "high", "integrations", 80, False),
]


def write_demo_cases(data: DemoDataSet, *, now: datetime.datetime) -> int:
    """Write the SLA set-up and the demo cases; return how many cases."""
    calendar, _ = BusinessCalendar.objects.get_or_create(
        name=CALENDAR_NAME,
        defaults={
            "time_zone": "Europe/Berlin",
            "weekdays": [0, 1, 2, 3, 4],
            "opens_at": datetime.time(9),
            "closes_at": datetime.time(17),
        },
    )
    # Last year's holidays too, since the oldest demo cases were filed weeks
    # before `now`.
    for year in (now.year - 1, now.year):
        for holiday in [
            datetime.date(year, 12, 25),
            datetime.date(year, 12, 26),
            datetime.date(year + 1, 1, 1),
        ]:
            BusinessHoliday.objects.get_or_create(calendar=calendar, date=holiday)
    policies = {}
    for priority, first_response, resolution in SLA_TARGETS:
        policies[priority], _ = SlaPolicy.objects.select_related(
            "calendar"
        ).get_or_create(
            priority=priority,
            defaults={
                "first_response_minutes": first_response,
                "resolution_minutes": resolution,
                "calendar": calendar,
            },
        )
    # An existing policy may use another calendar, so each gets its own hours.
    working_hours = {
        priority: load_working_hours(policy.calendar)
        for priority, policy in policies.items()
    }
    topics = {
        slug: CaseTopic.objects.get_or_create(slug=slug, defaults={"name": name})[0]
        for name, slug in CASE_TOPICS
    }

    account = data.accounts[0]
    # Seeded by the account, so the same demo data set picks the same filers.
    rng = random.Random(account.external_id)
    demo_member = next(
        p for p in data.members if p.has_demo_password and p.role == "member"
    )
    colleagues = [p for p in data.members if p.account is account] or [demo_member]
    staff_user_id = data.staff[account.owner_index].user_pk
    created = 0
    for index, (subject, status, priority, slug, hours, replied) in enumerate(
        DEMO_CASES
    ):
        person = demo_member if index < 4 else rng.choice(colleagues)
        filed_at = now - datetime.timedelta(hours=hours)
        # Staff reply and change the status two hours after filing.
        handled_at = filed_at + datetime.timedelta(hours=2)
        solved_at = (
            now - datetime.timedelta(hours=20)
            if status in ("solved", "closed")
            else None
        )
        case = Case(
            member_id=person.pk,
            account_id=account.pk,
            topic=topics[slug],
            subject=subject,
            body=f"{subject}. It started after the last update and happens every time.",
            status=status,
            priority=priority,
            created_at=filed_at,
            first_responded_at=handled_at if replied else None,
            solved_at=solved_at,
            closed_at=now - datetime.timedelta(hours=2) if status == "closed" else None,
            csat_score=5 if status == "closed" else None,
            csat_rated_at=now - datetime.timedelta(hours=2)
            if status == "closed"
            else None,
        )
        _set_sla_times(
            case,
            policy=policies[priority],
            hours=working_hours[priority],
            paused_at=handled_at if status == "waiting" else None,
            now=now,
        )
        case.save(force_insert=True)
        CaseStatusChange.objects.create(
            case=case,
            to_status="new",
            changed_by_id=person.user_pk,
            changed_at=filed_at,
        )
        if status != "new":
            CaseStatusChange.objects.create(
                case=case,
                from_status="new",
                to_status=status,
                changed_by_id=staff_user_id,
                changed_at=handled_at,
            )
        if replied:
            CaseMessage.objects.create(
                case=case,
                author_id=staff_user_id,
                body="Thanks for the report. We are looking into it and will "
                "update you here.",
            )
            CaseMessage.objects.create(
                case=case,
                author_id=staff_user_id,
                visibility=CaseMessage.Visibility.INTERNAL,
                body="Reproduced on the staging tenant.",
            )
        created += 1
    Case.objects.filter(account_id=account.pk).update(
        search_vector=SearchVector("subject", weight="A", config="english")
        + SearchVector("body", weight="B", config="english")
    )
    return created


def _set_sla_times(
    case: Case,
    *,
    policy: SlaPolicy,
    hours: WorkingHours | None,
    paused_at: datetime.datetime | None,
    now: datetime.datetime,
) -> None:
    """Set the due times filing gives the case, and the flags the sweep sets.

    A case that went to waiting at `paused_at` keeps the working minutes
    left at that moment instead of a resolution due time, as the status
    change stores them. A due time passed before the first response, the
    solution or `now` carries a breach flag at the due time, where the
    breach sweep, which runs every minute, would have set it.
    """
    filed_at = case.created_at
    case.first_response_due_at = add_business_minutes(
        filed_at, policy.first_response_minutes, hours
    )
    resolution_due_at = add_business_minutes(filed_at, policy.resolution_minutes, hours)

    responded_by = case.first_responded_at or now
    if responded_by > case.first_response_due_at:
        case.first_response_breached_at = case.first_response_due_at
    if paused_at is not None:
        case.resolution_minutes_left = count_business_minutes(
            paused_at, resolution_due_at, hours
        )
        return
    case.resolution_due_at = resolution_due_at
    if (case.solved_at or now) > resolution_due_at:
        case.resolution_breached_at = resolution_due_at
