"""Write a simulated demo data set to the database in bulk.

Rows go in with bulk_create and a few set-based statements, not through the
services, so the counters, points and scores those services keep are
written here directly, with the same values.
"""

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.utils.text import slugify
from tqdm import tqdm

from apps.advocacy.services import REPLY_POINTS
from apps.community.models import Reply, Space, Topic
from apps.lifecycle.models import ActivityEvent
from apps.lifecycle.scoring import (
    refresh_account_health_scores,
    refresh_member_health_scores,
)
from apps.membership.models import (
    Account,
    AccountArr,
    ConsentGrant,
    ConsentPurpose,
    Member,
)
from apps.membership.services import sync_role_groups
from apps.membership.services.data_sources import Source as DataSource
from apps.membership.services.data_sources import record_source_success
from apps.portal.models import OnboardingPath, OnboardingStep
from rm6.demo.cases import write_demo_cases
from rm6.demo.community_events import write_demo_community_events
from rm6.demo.courses import write_demo_courses
from rm6.demo.hubs import write_demo_paths_and_hubs
from rm6.demo.knowledge import seed_demo_article_feedback, seed_demo_articles
from rm6.demo.member_stats import write_member_stats
from rm6.demo.records import DemoDataSet, DemoEvent, DemoPerson
from rm6.demo.solutions import write_demo_solutions

# (key used by the simulation, name, visibility, description)
PUBLIC_SPACES = [
    (
        "announcements",
        "Announcements",
        Space.Visibility.PUBLIC,
        "News from the product team: releases, events and maintenance.",
    ),
    (
        "questions",
        "Questions & answers",
        Space.Visibility.MEMBERS,
        "Ask how to do something, and help your peers.",
    ),
    (
        "ideas",
        "Ideas",
        Space.Visibility.MEMBERS,
        "Suggest improvements to the product and discuss them.",
    ),
    (
        "integrations",
        "Integrations",
        Space.Visibility.MEMBERS,
        "Connectors, the API and the tools around the product.",
    ),
]
ONBOARDING_STEPS = [
    ("Sign in", "membership.signed_in", "/accounts/login/"),
    ("Ask your first question", "community.question_posted", "/community/"),
    ("Reply to a peer", "community.reply_posted", "/community/"),
    ("Export your first report", "product.report_exported", ""),
]
BATCH_SIZE = 5000
SCORE_BATCH_SIZE = 2000
# Daily score snapshots are computed for this many past days, so the score
# trend charts have a history from the first run.
SCORE_HISTORY_DAYS = 30


@dataclass
class SeedResult:
    accounts: int = 0
    members: int = 0
    staff: int = 0
    spaces: int = 0
    topics: int = 0
    replies: int = 0
    solutions: int = 0
    events: int = 0
    points_entries: int = 0
    arr_values: int = 0
    consents: int = 0
    onboarding_steps: int = 0
    courses: int = 0
    cases: int = 0
    community_events: int = 0
    seconds: float = 0.0


def count_rows(data: DemoDataSet, *, now: datetime) -> int:
    """Return the number of rows `write_data_set` reports, for the progress bar."""
    joined = [person.joined_at for person in data.members]
    scored = sum(
        sum(1 for at in joined if at <= moment) for moment in list_score_moments(now)
    )
    return (
        2 * (len(data.staff) + len(data.members) + 1)
        + len(data.accounts)
        + sum(len(a.arr_history) for a in data.accounts)
        + 3 * len(data.members)
        + sum(len(m.consents) for m in data.members)
        + len(data.topics)
        + 2 * len(data.replies)
        + len(data.events)
        + scored
    )


def list_score_moments(now: datetime) -> list[datetime]:
    """Return the times of the scoring passes, oldest first, ending with `now`.

    Each past pass runs at the last microsecond of one of the
    SCORE_HISTORY_DAYS UTC days before today. It reads that whole day's
    events and scores the members who joined that day, and the next pass
    keeps its score as the day's closing snapshot.
    """
    today_start = datetime.combine(now.astimezone(UTC).date(), time(), tzinfo=UTC)
    day_ends = [
        today_start - timedelta(days=days, microseconds=1)
        for days in range(SCORE_HISTORY_DAYS - 1, -1, -1)
    ]
    return [*day_ends, now]


def write_data_set(
    data: DemoDataSet,
    *,
    now: datetime,
    bar: tqdm,
    password: str,
    staff_email: str,
    slug_prefix: str,
    member_email: str = "",
) -> SeedResult:
    """Write every row of `data` and score its members, updating `bar`.

    The demo member and champion of `data` and one superuser with
    `staff_email` get `password`, and every other user an unusable one.
    """
    result = SeedResult()
    result.staff = _write_users(
        data, now=now, bar=bar, password=password, staff_email=staff_email
    )
    result.accounts = _write_accounts(data, bar=bar)
    result.arr_values = _write_arr_history(data, bar=bar)
    result.members = _write_members(data, bar=bar)
    _sync_role_groups(data, bar=bar)
    result.consents = _write_consents(data, bar=bar)
    spaces = _write_spaces(data, slug_prefix=slug_prefix)
    result.spaces = len(spaces)
    result.topics = _write_topics(data, spaces=spaces, bar=bar)
    result.replies = _write_replies(data, bar=bar)
    result.events = _write_events(data, spaces=spaces, bar=bar)
    result.points_entries = _write_reply_points([m.pk for m in data.members])
    bar.update(len(data.replies))
    result.solutions = write_demo_solutions(data)
    write_member_stats([m.pk for m in data.members])
    result.onboarding_steps = _write_onboarding_steps()
    champion_email = next(
        (p.email for p in data.members if p.role == "champion" and p.has_demo_password),
        "",
    )
    result.courses = write_demo_courses(
        demo_member_email=member_email, now=now, champion_email=champion_email
    )
    seed_demo_articles(staff_email=staff_email, slug_prefix=slug_prefix)
    # The feedback comes from readers without a sign-in, so the demo sign-ins
    # still find a helpful article they have not read on their home page.
    # Feedback is activity, so readers of at-risk accounts give none.
    seed_demo_article_feedback(
        voter_ids=[
            m.pk
            for m in data.members
            if not m.has_demo_password
            and (m.account is None or not m.account.is_at_risk)
        ],
        slug_prefix=slug_prefix,
    )
    result.onboarding_steps += write_demo_paths_and_hubs(
        spaces=spaces, slug_prefix=slug_prefix
    )
    result.cases = write_demo_cases(data, now=now)
    # Before scoring, so the RSVPs count as the members' activity.
    result.community_events = write_demo_community_events(
        data,
        spaces=spaces,
        staff_email=staff_email,
        member_email=member_email,
        now=now,
    )
    _score_members(data, now=now, bar=bar)
    _score_accounts(data, now=now)
    # The reporting dashboard then shows the score computation as fresh.
    record_source_success(source=DataSource.SCORE_COMPUTATION)
    return result


def _write_users(
    data: DemoDataSet, *, now: datetime, bar: tqdm, password: str, staff_email: str
) -> int:
    User = get_user_model()
    # The three sign-ins share one hash, because hashing is slow on purpose
    # and the password is public.
    demo_hash = make_password(password)
    people = [*data.staff, *data.members]
    users = [
        User(
            username=person.email,
            email=person.email,
            first_name=person.first_name,
            last_name=person.last_name,
            password=demo_hash if person.has_demo_password else make_password(None),
            is_staff=person.is_staff,
            date_joined=person.joined_at,
            last_login=max(person.active_times, default=None),
        )
        for person in people
    ]
    users.append(
        User(
            username=staff_email,
            email=staff_email,
            first_name="Demo",
            last_name="Admin",
            password=demo_hash,
            is_staff=True,
            is_superuser=True,
            date_joined=now - timedelta(days=400),
        )
    )
    User.objects.bulk_create(users, batch_size=BATCH_SIZE)
    for person, user in zip(people, users, strict=False):
        person.user_pk = user.pk
    bar.update(len(users))

    EmailAddress.objects.bulk_create(
        [
            EmailAddress(user=user, email=user.email, verified=True, primary=True)
            for user in users
        ],
        batch_size=BATCH_SIZE,
    )
    bar.update(len(users))
    return len(data.staff) + 1


def _write_accounts(data: DemoDataSet, *, bar: tqdm) -> int:
    rows = [
        Account(
            name=account.name,
            external_id=account.external_id,
            email_domains=account.email_domains,
            segment=account.segment,
            cs_tier=account.cs_tier,
            arr=account.arr,
            contract_start=account.contract_start,
            renewal_date=account.renewal_date,
            owner_id=data.staff[account.owner_index].user_pk,
            time_zone=account.time_zone,
        )
        for account in data.accounts
    ]
    Account.objects.bulk_create(rows, batch_size=BATCH_SIZE)
    for account, row in zip(data.accounts, rows, strict=True):
        account.pk = row.pk
    bar.update(len(rows))

    # bulk_create sets created_at to now, because the field is auto_now_add.
    # An account dates from its contract start or its first member's join,
    # whichever came first, so its score history starts no earlier.
    _set_account_created_at(data)
    _backdate_creation(
        Account._meta.db_table,
        [(account.pk, account.created_at) for account in data.accounts],
    )
    return len(rows)


def _backdate_creation(table: str, rows: list[tuple[int, datetime]]) -> None:
    """Set `created_at` of each (id, time) row of `table` in one statement."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {table} AS t SET created_at = dated.created_at
            FROM unnest(%s::bigint[], %s::timestamptz[]) AS dated(id, created_at)
            WHERE t.id = dated.id
            """,
            [[pk for pk, _ in rows], [created_at for _, created_at in rows]],
        )


def _set_account_created_at(data: DemoDataSet) -> None:
    for account in data.accounts:
        account.created_at = datetime.combine(
            account.contract_start, time(), tzinfo=UTC
        )
    for person in data.members:
        account = person.account
        account.created_at = min(account.created_at, person.joined_at)


def _sync_role_groups(data: DemoDataSet, *, bar: tqdm) -> None:
    # One member at a time, through the service that owns the rule, because
    # the groups and object permissions each role holds are defined there.
    members = Member.objects.filter(pk__in=[p.pk for p in data.members])
    for member in members.select_related("user"):
        sync_role_groups(member)
    bar.update(len(data.members))


def _write_arr_history(data: DemoDataSet, *, bar: tqdm) -> int:
    rows = [
        AccountArr(account_id=account.pk, effective_on=day, arr=arr, source="demo")
        for account in data.accounts
        for day, arr in account.arr_history
    ]
    AccountArr.objects.bulk_create(rows, batch_size=BATCH_SIZE)
    bar.update(len(rows))
    return len(rows)


def _write_members(data: DemoDataSet, *, bar: tqdm) -> int:
    rows = [
        Member(
            user_id=person.user_pk,
            account_id=person.account.pk,
            display_name=person.display_name,
            role=person.role,
            lifecycle_stage=person.lifecycle_stage,
            time_zone=person.time_zone,
            external_id=person.external_id,
            first_signed_in_at=min(person.active_times, default=None),
            last_signed_in_at=max(person.active_times, default=None),
        )
        for person in data.members
    ]
    Member.objects.bulk_create(rows, batch_size=BATCH_SIZE)
    for person, row in zip(data.members, rows, strict=True):
        person.pk = row.pk
    bar.update(len(rows))

    # bulk_create sets created_at to now, because the field is auto_now_add.
    # One statement replaces it with the simulated join dates.
    _backdate_creation(
        Member._meta.db_table,
        [(person.pk, person.joined_at) for person in data.members],
    )
    bar.update(len(rows))
    return len(rows)


def _write_consents(data: DemoDataSet, *, bar: tqdm) -> int:
    """Write the members' consent grants, skipping purposes not in the database."""
    purposes = dict(ConsentPurpose.objects.values_list("key", "pk"))
    rows = []
    for person in data.members:
        zone = ZoneInfo(person.time_zone)
        for consent in person.consents:
            if consent.purpose_key not in purposes:
                continue
            expires_at = None
            if consent.expires_on:
                # The expiry date is the last valid day in the member's zone.
                next_day = consent.expires_on + timedelta(days=1)
                expires_at = datetime.combine(
                    next_day, datetime.min.time(), tzinfo=zone
                )
            rows.append(
                ConsentGrant(
                    member_id=person.pk,
                    purpose_id=purposes[consent.purpose_key],
                    source=consent.source,
                    evidence=consent.evidence,
                    granted_at=consent.granted_at,
                    expires_on=consent.expires_on,
                    expires_at=expires_at,
                    revoked_at=consent.revoked_at,
                    revoked_source=consent.revoked_source,
                )
            )
    ConsentGrant.objects.bulk_create(rows, batch_size=BATCH_SIZE)
    bar.update(sum(len(m.consents) for m in data.members))
    return len(rows)


def _write_spaces(data: DemoDataSet, *, slug_prefix: str) -> dict[str, Space]:
    topic_counts = Counter(topic.space_key for topic in data.topics)
    first_account = data.accounts[0]
    definitions = [
        (key, name, visibility, description, None)
        for key, name, visibility, description in PUBLIC_SPACES
    ]
    definitions.append(
        (
            "team",
            f"{first_account.name} team",
            Space.Visibility.ACCOUNT,
            f"Private to the people of {first_account.name}.",
            first_account.pk,
        )
    )

    spaces = {}
    for position, (key, name, visibility, description, account_id) in enumerate(
        definitions
    ):
        spaces[key] = Space.objects.create(
            name=name,
            slug=f"{slug_prefix}{slugify(name)}",
            description=description,
            visibility=visibility,
            account_id=account_id,
            position=position,
            topic_count=topic_counts[key],
        )
    Space.objects.filter(pk__in=[s.pk for s in spaces.values()]).update(
        created_at=data.history_start - timedelta(days=30)
    )
    return spaces


def _write_topics(data: DemoDataSet, *, spaces: dict[str, Space], bar: tqdm) -> int:
    rows = [
        Topic(
            space=spaces[topic.space_key],
            author_id=topic.author.pk if topic.author else None,
            kind=topic.kind,
            title=topic.title,
            body=topic.body,
            reply_count=topic.reply_count,
            created_at=topic.created_at,
            last_activity_at=topic.last_activity_at,
        )
        for topic in data.topics
    ]
    Topic.objects.bulk_create(rows, batch_size=BATCH_SIZE)
    for topic, row in zip(data.topics, rows, strict=True):
        topic.pk = row.pk
    bar.update(len(rows))
    return len(rows)


def _write_replies(data: DemoDataSet, *, bar: tqdm) -> int:
    rows = [
        Reply(
            topic_id=reply.topic.pk,
            author_id=reply.author.pk,
            body=reply.body,
            created_at=reply.created_at,
        )
        for reply in data.replies
    ]
    Reply.objects.bulk_create(rows, batch_size=BATCH_SIZE)
    for reply, row in zip(data.replies, rows, strict=True):
        reply.pk = row.pk
    _write_first_reply_times(sorted({reply.topic.pk for reply in data.replies}))
    bar.update(len(rows))
    return len(rows)


def _write_first_reply_times(topic_ids: list[int]) -> None:
    # post_reply sets first_reply_at on the first reply by someone other than
    # the topic's author. Escalation, the unanswered list and the escalation
    # offers read it, so bulk-written replies must set it too.
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {Topic._meta.db_table} AS topic
            SET first_reply_at = first.created_at
            FROM (
                SELECT reply.topic_id, min(reply.created_at) AS created_at
                FROM {Reply._meta.db_table} AS reply
                JOIN {Topic._meta.db_table} AS replied ON replied.id = reply.topic_id
                WHERE reply.topic_id = ANY(%s)
                  AND reply.author_id IS DISTINCT FROM replied.author_id
                GROUP BY reply.topic_id
            ) AS first
            WHERE topic.id = first.topic_id
            """,
            [topic_ids],
        )


def _write_events(data: DemoDataSet, *, spaces: dict[str, Space], bar: tqdm) -> int:
    topic_type = ContentType.objects.get_for_model(Topic)
    reply_type = ContentType.objects.get_for_model(Reply)
    slugs = {key: space.slug for key, space in spaces.items()}

    def to_row(event: DemoEvent) -> ActivityEvent:
        person: DemoPerson = event.person
        row = ActivityEvent(
            member_id=person.pk,
            account_id=person.account.pk,
            kind=event.kind,
            occurred_at=event.occurred_at,
            properties=event.properties,
            campaign_id=event.campaign_id,
            utm_source=event.utm_source,
            utm_medium=event.utm_medium,
            utm_campaign=event.utm_campaign,
        )
        subject = event.subject
        if subject is None:
            return row
        # The same properties post_topic and post_reply record.
        if hasattr(subject, "topic"):
            row.subject_type = reply_type
            row.properties = {
                "topic_id": subject.topic.pk,
                "space": slugs[subject.topic.space_key],
                **event.properties,
            }
        else:
            row.subject_type = topic_type
            row.properties = {"space": slugs[subject.space_key], **event.properties}
        row.subject_id = str(subject.pk)
        return row

    for start in range(0, len(data.events), BATCH_SIZE):
        batch = [to_row(e) for e in data.events[start : start + BATCH_SIZE]]
        ActivityEvent.objects.bulk_create(batch)
        bar.update(len(batch))
    return len(data.events)


def _write_reply_points(member_ids: list[int]) -> int:
    """Award the points advocacy awards for each reply to someone else's topic.

    One statement over the reply events, with the same amount and reason as
    the reply_posted handler, dated when the reply was posted.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO advocacy_pointsentry
                (member_id, points, reason, event_id, note, created_at)
            SELECT e.member_id, %(points)s, 'reply_posted', e.id, '', e.occurred_at
            FROM lifecycle_activityevent e
            WHERE e.member_id = ANY(%(member_ids)s)
              AND e.kind = 'community.reply_posted'
              AND NOT coalesce((e.properties ->> 'is_own_topic')::boolean, false)
            """,
            {"points": REPLY_POINTS, "member_ids": member_ids},
        )
        return cursor.rowcount


def _write_onboarding_steps() -> int:
    """Add the demo onboarding steps whose completion kind has no step yet."""
    path, _ = OnboardingPath.objects.get_or_create(
        slug="getting-started",
        defaults={"title": "Getting started", "is_published": True},
    )
    existing = set(path.steps.values_list("completion_kind", flat=True))
    steps = [
        OnboardingStep(
            path=path,
            title=title,
            completion_kind=kind,
            url=url,
            position=position + 1,
        )
        for position, (title, kind, url) in enumerate(ONBOARDING_STEPS)
        if kind not in existing
    ]
    OnboardingStep.objects.bulk_create(steps)
    return len(steps)


def _score_accounts(data: DemoDataSet, *, now: datetime) -> None:
    # The same days as the members, so account pages show a trend at once
    # rather than waiting for the workers' first account pass.
    for moment in list_score_moments(now):
        account_ids = [
            account.pk for account in data.accounts if account.created_at <= moment
        ]
        refresh_account_health_scores(account_ids=account_ids, now=moment)


def _score_members(data: DemoDataSet, *, now: datetime, bar: tqdm) -> None:
    # Past days first, so band changes come in order, each pass stores the
    # day before as its closing snapshot, and the last pass leaves the
    # current score. Each pass skips members who had not joined yet, so no
    # snapshot predates a member. Every member joined by `now`, so the last
    # pass scores them all.
    for moment in list_score_moments(now):
        member_ids = [
            person.pk for person in data.members if person.joined_at <= moment
        ]
        for start in range(0, len(member_ids), SCORE_BATCH_SIZE):
            batch = member_ids[start : start + SCORE_BATCH_SIZE]
            refresh_member_health_scores(member_ids=batch, now=moment)
            bar.update(len(batch))
