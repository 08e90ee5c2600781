"""Demo support cases: a business calendar, SLA policies, case topics and a
few cases of the first account in every status.

Rows are written directly, like the rest of the demo, so the due times are
set here in round numbers rather than by the SLA arithmetic.
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
    for month, day in [(12, 25), (12, 26), (1, 1)]:
        year = now.year if month == 12 else now.year + 1
        BusinessHoliday.objects.get_or_create(
            calendar=calendar, date=datetime.date(year, month, day)
        )
    for priority, first_response, resolution in SLA_TARGETS:
        SlaPolicy.objects.get_or_create(
            priority=priority,
            defaults={
                "first_response_minutes": first_response,
                "resolution_minutes": resolution,
                "calendar": calendar,
            },
        )
    topics = {
        slug: CaseTopic.objects.get_or_create(slug=slug, defaults={"name": name})[0]
        for name, slug in CASE_TOPICS
    }

    account = data.accounts[0]
    # Seeded by the account, so the same demo data set picks the same filers.
    rng = random.Random(account.external_id)
    demo_member = next(p for p in data.members if p.has_demo_password)
    colleagues = [p for p in data.members if p.account is account] or [demo_member]
    staff_user_id = data.staff[account.owner_index].user_pk
    created = 0
    for index, (subject, status, priority, slug, hours, replied) in enumerate(
        DEMO_CASES
    ):
        person = demo_member if index < 4 else rng.choice(colleagues)
        filed_at = now - datetime.timedelta(hours=hours)
        case = Case.objects.create(
            member_id=person.pk,
            account_id=account.pk,
            topic=topics[slug],
            subject=subject,
            body=f"{subject}. It started after the last update and happens every time.",
            status=status,
            priority=priority,
            created_at=filed_at,
            first_response_due_at=filed_at + datetime.timedelta(hours=8),
            resolution_due_at=(
                None if status == "waiting" else filed_at + datetime.timedelta(days=5)
            ),
            resolution_minutes_left=480 if status == "waiting" else None,
            first_responded_at=(
                filed_at + datetime.timedelta(hours=2) if replied else None
            ),
            first_response_breached_at=(
                filed_at + datetime.timedelta(hours=8)
                if not replied and hours > 8
                else None
            ),
            solved_at=now - datetime.timedelta(hours=20)
            if status in ("solved", "closed")
            else None,
            closed_at=now - datetime.timedelta(hours=2) if status == "closed" else None,
            csat_score=5 if status == "closed" else None,
            csat_rated_at=now - datetime.timedelta(hours=2)
            if status == "closed"
            else None,
        )
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
                changed_at=filed_at + datetime.timedelta(hours=2),
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
