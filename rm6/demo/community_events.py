"""Demo community events: office hours and webinars, past and upcoming.

The events go through the community services as staff would schedule
them, in the demo spaces, so deleting the demo spaces deletes them too.
A few demo members RSVP to the upcoming ones through the services, which
record the RSVP activity and fill the smallest webinar's waitlist.
"""

from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.utils import timezone

from apps.community.models import CommunityEvent, Space
from apps.community.selectors.events import can_view_event
from apps.community.services.events import rsvp_to_event, schedule_event
from apps.membership.models import Member
from rm6.demo.records import DemoDataSet

OFFICE_HOURS = CommunityEvent.Kind.OFFICE_HOURS
WEBINAR = CommunityEvent.Kind.WEBINAR

# (space key, kind, title, description, start in days from `now`, length in
# hours, capacity or None for no limit, host time zone). Each event starts
# at the start of `now`'s hour plus the given days, so negative days make
# past events.
DEMO_COMMUNITY_EVENTS = [
    (
        "announcements",
        WEBINAR,
        "What's new in the spring release",
        "A tour of the new dashboard filters and scheduled exports, "
        "with time for questions.",
        -21,
        1,
        None,
        "Europe/Berlin",
    ),
    (
        "questions",
        OFFICE_HOURS,
        "Reporting office hours",
        "Bring a report you are stuck on and work through it with a product "
        "specialist.",
        -7,
        1,
        10,
        "America/New_York",
    ),
    (
        "announcements",
        WEBINAR,
        "Dashboards and alerts in practice",
        "How three customers watch their key numbers with dashboards and "
        "threshold alerts.",
        3,
        1,
        None,
        "Europe/Berlin",
    ),
    (
        "integrations",
        OFFICE_HOURS,
        "API and webhooks office hours",
        "Questions on tokens, rate limits and webhook retries, answered live "
        "by the integrations team.",
        9,
        1,
        3,
        "Europe/London",
    ),
    (
        "team",
        OFFICE_HOURS,
        "Quarterly review with your success manager",
        "A private session for your team: usage, open cases and next steps.",
        16,
        2,
        None,
        "Europe/Berlin",
    ),
]
# How many demo members, besides the demo sign-ins, RSVP to each upcoming event.
OTHER_RSVPS_PER_EVENT = 3


def _list_rsvp_members(data: DemoDataSet, *, member_email: str) -> list[Member]:
    """Return the members who RSVP: demo sign-ins, `member_email` first, then others.

    The other members come from accounts that are not at risk, because an
    RSVP is activity and would raise the low scores of at-risk accounts.
    """
    sign_in_emails = [
        person.email for person in data.members if person.has_demo_password
    ]
    others = [
        person.pk
        for person in data.members
        if not person.has_demo_password
        and person.account is not None
        and not person.account.is_at_risk
    ][:OTHER_RSVPS_PER_EVENT]
    by_email = {
        member.user.email: member
        for member in Member.objects.filter(
            user__email__in=sign_in_emails
        ).select_related("user")
    }
    ordered = sorted(by_email, key=lambda email: email != member_email)
    sign_ins = [by_email[email] for email in ordered]
    return [*sign_ins, *Member.objects.filter(pk__in=others).order_by("pk")]


def write_demo_community_events(
    data: DemoDataSet,
    *,
    spaces: dict[str, Space],
    staff_email: str,
    member_email: str,
    now: datetime,
) -> int:
    """Schedule the demo community events and their RSVPs; return how many are new.

    An event already in its space under the same title is kept as it is, so
    seeding again adds nothing.
    """
    staff = get_user_model().objects.get(email=staff_email)
    members = _list_rsvp_members(data, member_email=member_email)
    start_of_hour = now.replace(minute=0, second=0, microsecond=0)
    created = 0
    for (
        space_key,
        kind,
        title,
        description,
        days,
        hours,
        capacity,
        time_zone,
    ) in DEMO_COMMUNITY_EVENTS:
        space = spaces[space_key]
        if CommunityEvent.objects.filter(space=space, title=title).exists():
            continue
        starts_at = start_of_hour + timedelta(days=days)
        event = schedule_event(
            created_by=staff,
            kind=kind,
            title=title,
            description=description,
            starts_at=starts_at,
            ends_at=starts_at + timedelta(hours=hours),
            time_zone=time_zone,
            space=space,
            capacity=capacity,
            join_url="https://meet.example.com/rm6-demo" if kind == WEBINAR else "",
        )
        created += 1
        # The RSVP service compares with the current time, not `now`, and
        # rejects events that have ended, so past events get no RSVPs.
        # NOTE: the RSVP activity events are dated at the current time too.
        if event.ends_at <= timezone.now():
            continue
        for member in members:
            if can_view_event(member=member, event=event):
                rsvp_to_event(event=event, member=member)
    return created
