import random
import re
import threading
from datetime import UTC, datetime, time, timedelta
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth import authenticate, get_user_model
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F, Max, Min, OuterRef, Q, Subquery
from django.db.models.functions import TruncDate
from django.urls import reverse
from django.utils import timezone

from apps.advocacy.models import PointsEntry
from apps.advocacy.services import REPLY_POINTS
from apps.community.models import (
    CommunityEvent,
    Kudos,
    MemberStats,
    Reply,
    Rsvp,
    Space,
    Topic,
)
from apps.community.selectors.events import list_past_events, list_upcoming_events
from apps.lifecycle.models import (
    AccountHealthScore,
    AccountHealthScoreSnapshot,
    ActivityEvent,
    HealthScore,
    HealthScoreSnapshot,
)
from apps.membership.models import (
    Account,
    AccountArr,
    ConsentGrant,
    DataSourceRun,
    Member,
)
from apps.portal.models import (
    Article,
    ArticleFeedback,
    Case,
    Course,
    CourseEnrolment,
    HubItem,
    MemberCertificate,
    OnboardingPath,
    OnboardingStep,
    SlaPolicy,
    UseCaseHub,
)
from apps.portal.selectors.cases import is_topic_escalatable
from apps.portal.selectors.home import get_next_article
from apps.portal.selectors.suggestions import list_case_suggestions
from apps.portal.services.sla import (
    add_business_minutes,
    count_business_minutes,
    load_working_hours,
)
from rm6.demo import services
from rm6.demo.population import Population
from rm6.demo.simulation import Simulation
from tests import factories

SMALL = {"accounts": 3, "members": 20, "days": 30}
MEMBER_EMAIL = "member@demo.rm6.test"
CHAMPION_EMAIL = "champion@demo.rm6.test"
ADMIN_EMAIL = "admin@demo.rm6.test"
ACCOUNT_ADMIN_EMAIL = "account-admin@demo.rm6.test"


def seed(*args, **options) -> str:
    out = StringIO()
    call_command("seed_demo", *args, **{**SMALL, **options}, verbosity=0, stdout=out)
    return out.getvalue()


def simulate(seed: int):
    return Simulation(
        **SMALL,
        seed=seed,
        now=datetime(2026, 3, 2, 12, tzinfo=UTC),
        demo_sign_in_domain=services.DEMO_EMAIL_DOMAIN,
        id_prefix=services.DEMO_ID_PREFIX,
    ).run()


def table_counts() -> dict[str, int]:
    models = [
        Account,
        Member,
        get_user_model(),
        EmailAddress,
        Space,
        Topic,
        Reply,
        MemberStats,
        ActivityEvent,
        PointsEntry,
        HealthScore,
        HealthScoreSnapshot,
        OnboardingStep,
        Article,
        HubItem,
        Case,
        CommunityEvent,
        Rsvp,
    ]
    return {model.__name__: model.objects.count() for model in models}


def account_names() -> list[str]:
    return list(Account.objects.order_by("external_id").values_list("name", flat=True))


@pytest.fixture
def seeded(db) -> str:
    return seed()


# Three days after Christmas, so the oldest demo cases were filed before the
# holidays of the demo business calendar.
FIXED_NOW = datetime(2026, 12, 28, 10, tzinfo=UTC)


@pytest.fixture
def seeded_at_fixed_time(db):
    return services.seed_demo_data(**SMALL, seed=2026, now=FIXED_NOW)


def test_seed_demo_creates_accounts_and_members(seeded):
    assert Account.objects.filter(external_id__startswith="demo-").count() == 3
    assert Member.objects.filter(external_id__startswith="demo-").count() == 20
    assert Member.objects.filter(role=Member.Role.ADMIN).count() == 3
    assert not Member.objects.filter(account__isnull=True).exists()


def test_seed_demo_accounts_have_owner_and_domain(seeded):
    for account in Account.objects.select_related("owner"):
        assert account.owner.is_staff, account
        assert account.email_domains, account
        assert account.renewal_date > datetime.now(UTC).date(), account


def test_seed_demo_creates_spaces(seeded):
    first = Account.objects.get(external_id="demo-a00001")

    assert set(Space.objects.values_list("name", flat=True)) == {
        "Announcements",
        "Questions & answers",
        "Ideas",
        "Integrations",
        f"{first.name} team",
    }
    assert Space.objects.get(visibility=Space.Visibility.ACCOUNT).account == first
    assert Space.objects.get(name="Announcements").visibility == "public"


def test_seed_demo_creates_activity(seeded):
    kinds = set(ActivityEvent.objects.values_list("kind", flat=True))

    assert Topic.objects.exists()
    assert Reply.objects.exists()
    assert {
        "membership.signed_in",
        "community.question_posted",
        "community.reply_posted",
        "community.topic_viewed",
        "product.report_exported",
    } <= kinds


def test_seed_demo_creates_onboarding_steps(seeded):
    kinds = (
        OnboardingStep.objects.filter(path__slug="getting-started")
        .order_by("position")
        .values_list("completion_kind", flat=True)
    )

    assert list(kinds) == [
        "membership.signed_in",
        "community.question_posted",
        "community.reply_posted",
        "product.report_exported",
    ]


def test_seed_demo_creates_targeted_paths_and_hubs(seeded):
    paths = dict(
        OnboardingPath.objects.filter(slug__startswith="demo-").values_list(
            "slug", "roles"
        )
    )
    hub_items = UseCaseHub.objects.filter(slug__startswith="demo-").annotate(
        item_count=Count("items")
    )

    assert paths == {"demo-admin-setup": ["admin"], "demo-enterprise-rollout": []}
    assert hub_items.count() == 2
    assert all(hub.item_count > 0 for hub in hub_items)


def test_seed_demo_events_within_history(seeded):
    now = datetime.now(UTC)
    # The champion's certificate is dated before the history on purpose, so
    # that it is due for renewal; see rm6/demo/courses.py.
    champion_course = Q(member__user__email=CHAMPION_EMAIL, kind__startswith="portal.")
    events = ActivityEvent.objects.exclude(kind="lifecycle.health_band_changed")
    events = events.exclude(champion_course)

    assert not events.filter(occurred_at__gt=now).exists()
    assert not events.filter(occurred_at__lt=now - timedelta(days=31)).exists()


def test_seed_demo_events_carry_member_account(seeded):
    assert not ActivityEvent.objects.exclude(account=F("member__account")).exists()


def test_seed_demo_reply_events_point_at_replies(seeded):
    events = ActivityEvent.objects.filter(kind="community.reply_posted")
    reply_ids = {str(pk) for pk in Reply.objects.values_list("pk", flat=True)}

    assert events.count() == Reply.objects.count()
    assert set(events.values_list("subject_id", flat=True)) == reply_ids


def test_seed_demo_space_topic_counts_match(seeded):
    spaces = Space.objects.annotate(actual=Count("topics"))

    for space in spaces:
        assert space.topic_count == space.actual, space.name


def test_seed_demo_topic_reply_counts_match(seeded):
    topics = Topic.objects.annotate(
        actual=Count("replies"), last_reply_at=Max("replies__created_at")
    )

    for topic in topics:
        assert topic.reply_count == topic.actual, topic.pk
        assert topic.last_activity_at == (topic.last_reply_at or topic.created_at)


def test_seed_demo_points_match_replies_to_others(seeded):
    to_others = ActivityEvent.objects.filter(
        kind="community.reply_posted", properties__is_own_topic=False
    )
    entries = PointsEntry.objects.select_related("event")

    assert entries.count() == to_others.count()
    assert set(entries.values_list("event_id", flat=True)) == set(
        to_others.values_list("pk", flat=True)
    )
    for entry in entries:
        assert entry.points == REPLY_POINTS
        assert entry.reason == "reply_posted"
        assert entry.member_id == entry.event.member_id
        assert entry.created_at == entry.event.occurred_at


def test_seed_demo_own_topic_flag_matches_authors(seeded):
    for event in ActivityEvent.objects.filter(kind="community.reply_posted"):
        reply = Reply.objects.select_related("topic").get(pk=event.subject_id)
        is_own = reply.topic.author_id == reply.author_id
        assert event.properties["is_own_topic"] is is_own, reply.pk
        assert event.properties["topic_id"] == reply.topic_id


def test_seed_demo_scores_every_member(seeded):
    unscored = Member.objects.filter(health_score__isnull=True)

    assert not unscored.exists()
    # A closing snapshot for each of the 30 past days; today has the current score.
    assert HealthScoreSnapshot.objects.values("day").distinct().count() == 30


def test_seed_demo_at_risk_account_scores_low(db):
    # The fourth account is the first at-risk one.
    seed(accounts=4, members=30)
    at_risk = AccountHealthScore.objects.get(account__external_id="demo-a00004")
    healthy = AccountHealthScore.objects.get(account__external_id="demo-a00001")

    assert at_risk.band in {"red", "yellow"}
    assert at_risk.score < healthy.score


def test_seed_demo_scores_every_account(seeded):
    assert not Account.objects.filter(health_score__isnull=True).exists()
    days = AccountHealthScoreSnapshot.objects.values("day").distinct()
    assert days.count() == 30


def test_seed_demo_member_snapshots_not_before_join(seeded):
    joined_day = TruncDate("member__created_at", tzinfo=UTC)
    early = HealthScoreSnapshot.objects.filter(day__lt=joined_day)

    assert early.count() == 0


def test_seed_demo_newcomer_trend_starts_on_join_day(seeded):
    newcomer = Member.objects.get(user__email=MEMBER_EMAIL)
    days = newcomer.health_snapshots.values_list("day", flat=True)

    # The newcomer joined 12 days ago, and today has no snapshot yet.
    assert min(days) == newcomer.created_at.astimezone(UTC).date()
    assert len(days) == 12


def test_seed_demo_account_snapshots_not_before_creation(seeded):
    created_day = TruncDate("account__created_at", tzinfo=UTC)
    early = AccountHealthScoreSnapshot.objects.filter(day__lt=created_day)

    assert early.count() == 0


def test_seed_demo_accounts_created_before_members(seeded):
    first_joined = Member.objects.filter(account=OuterRef("pk")).order_by("created_at")
    later = Account.objects.filter(
        created_at__gt=Subquery(first_joined.values("created_at")[:1])
    )

    assert later.count() == 0


def test_seed_demo_account_created_at_earliest_start(seeded):
    accounts = Account.objects.annotate(first_joined=Min("members__created_at"))

    for account in accounts:
        contract_start = datetime.combine(account.contract_start, time(), tzinfo=UTC)
        expected = min(contract_start, account.first_joined)
        assert account.created_at == expected, account.external_id


def test_seed_demo_progress_bar_reaches_total(db):
    progress = StringIO()

    services.seed_demo_data(**SMALL, seed=2026, now=FIXED_NOW, progress=progress)

    done, total = re.findall(r"(\d+)/(\d+)", progress.getvalue())[-1]
    assert done == total


def test_seed_demo_records_score_computation(db, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        seed()

    run = DataSourceRun.objects.get(source=DataSourceRun.Source.SCORE_COMPUTATION)
    assert run.last_success_at is not None


def test_seed_demo_second_run_adds_nothing(seeded):
    before = table_counts()

    output = seed()

    assert table_counts() == before
    assert "Demo data is already present" in output


def test_seed_demo_output_lists_sign_ins(seeded):
    assert "password rm6-demo-2026" in seeded
    for email in (MEMBER_EMAIL, CHAMPION_EMAIL, ADMIN_EMAIL):
        assert email in seeded


def test_seed_demo_same_seed_same_names(db):
    seed(seed=7)
    first_names = account_names()
    services.delete_demo_data()

    seed(seed=7)

    assert account_names() == first_names


def test_simulation_same_seed_same_data():
    first, second = simulate(7), simulate(7)

    assert [a.name for a in first.accounts] == [a.name for a in second.accounts]
    assert [m.email for m in first.members] == [m.email for m in second.members]
    assert len(first.events) == len(second.events)


def test_simulation_other_seed_other_names():
    first, second = simulate(7), simulate(8)

    assert [a.name for a in first.accounts] != [a.name for a in second.accounts]


@pytest.mark.parametrize(
    "email", [MEMBER_EMAIL, CHAMPION_EMAIL, ADMIN_EMAIL, ACCOUNT_ADMIN_EMAIL]
)
def test_seed_demo_sign_in_authenticates(seeded, rf, email):
    user = authenticate(rf.post("/"), email=email, password="rm6-demo-2026")

    assert user is not None
    assert user.email == email


@pytest.mark.parametrize(
    "email", [MEMBER_EMAIL, CHAMPION_EMAIL, ADMIN_EMAIL, ACCOUNT_ADMIN_EMAIL]
)
def test_seed_demo_sign_in_email_verified(seeded, email):
    address = EmailAddress.objects.get(email=email)

    assert address.verified
    assert address.primary


def test_seed_demo_sign_in_through_login_page(seeded, client, settings):
    settings.ACCOUNT_EMAIL_VERIFICATION = "mandatory"

    response = client.post(
        "/accounts/login/", {"login": MEMBER_EMAIL, "password": "rm6-demo-2026"}
    )

    assert response.status_code == 302
    assert client.session.get("_auth_user_id")


def test_seed_demo_sign_in_roles(seeded):
    first = Account.objects.get(external_id="demo-a00001")
    member = Member.objects.get(user__email=MEMBER_EMAIL)
    champion = Member.objects.get(user__email=CHAMPION_EMAIL)
    account_admin = Member.objects.get(user__email=ACCOUNT_ADMIN_EMAIL)
    admin = get_user_model().objects.get(email=ADMIN_EMAIL)

    assert (member.account, member.role) == (first, Member.Role.MEMBER)
    assert (champion.account, champion.role) == (first, Member.Role.CHAMPION)
    assert (account_admin.account, account_admin.role) == (
        first,
        Member.Role.ADMIN,
    )
    assert admin.is_staff
    assert admin.is_superuser
    assert not Member.objects.filter(user=admin).exists()


def test_seed_demo_other_members_cannot_sign_in(seeded):
    others = get_user_model().objects.exclude(
        Q(email__in=[MEMBER_EMAIL, CHAMPION_EMAIL, ADMIN_EMAIL, ACCOUNT_ADMIN_EMAIL])
        | Q(username="AnonymousUser")
    )

    assert others.exists()
    assert not any(user.has_usable_password() for user in others)


def test_seed_demo_reset_recreates(seeded):
    names = account_names()

    output = seed("--reset")

    assert "Deleted the demo data" in output
    assert account_names() == names
    assert Member.objects.count() == 20


def test_delete_demo_data_removes_everything(seeded):
    services.delete_demo_data()

    counts = table_counts()
    assert counts["Account"] == 0
    assert counts["Member"] == 0
    assert counts["Space"] == 0
    assert counts["ActivityEvent"] == 0
    assert counts["PointsEntry"] == 0
    assert counts["EmailAddress"] == 0
    assert counts["CommunityEvent"] == 0
    assert counts["Rsvp"] == 0
    assert not get_user_model().objects.filter(email__endswith="demo.rm6.test")


def test_delete_demo_data_keeps_other_rows(seeded):
    member = factories.MemberFactory()
    event = factories.ActivityEventFactory(member=member)
    PointsEntry.objects.create(member=member, points=5, reason="welcome", event=event)

    services.delete_demo_data()

    assert Member.objects.get() == member
    assert PointsEntry.objects.get().member == member
    assert OnboardingStep.objects.count() == 4
    assert not UseCaseHub.objects.exists()


def test_delete_demo_data_restores_ledger_trigger(seeded):
    services.delete_demo_data()
    entry = PointsEntry.objects.create(
        member=factories.MemberFactory(), points=5, reason="welcome"
    )

    with (
        pytest.raises(IntegrityError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("DELETE FROM advocacy_pointsentry WHERE id = %s", [entry.pk])


def test_seed_demo_too_few_members_rejected(db):
    with pytest.raises(
        CommandError, match="Invalid number of members 4 for 3 accounts: use 5 or more"
    ):
        seed(accounts=3, members=4)

    assert not Account.objects.exists()


def test_seed_demo_announcements_by_account_admin(seeded):
    announcements = Topic.objects.filter(kind=Topic.Kind.ANNOUNCEMENT)

    assert announcements.exists()
    assert set(announcements.values_list("author__role", flat=True)) == {"admin"}
    assert not Topic.objects.filter(author__isnull=True).exists()


def test_seed_demo_arr_history_ends_at_account_arr(seeded):
    for account in Account.objects.all():
        latest = AccountArr.objects.filter(account=account).first()
        assert latest.arr == account.arr, account.name
        assert latest.effective_on <= datetime.now(UTC).date()


def test_seed_demo_consents_for_demo_champion(seeded):
    grants = ConsentGrant.objects.filter(
        member__user__email=CHAMPION_EMAIL, revoked_at__isnull=True
    )
    now = datetime.now(UTC)

    keys = set(grants.filter(expires_at__gt=now).values_list("purpose__key", flat=True))
    assert {"advocacy_contact", "story_publication"} <= keys


def test_seed_demo_consents_expire_in_member_zone(seeded):
    for grant in ConsentGrant.objects.filter(expires_on__isnull=False).select_related(
        "member"
    ):
        local = grant.expires_at.astimezone(ZoneInfo(grant.member.time_zone))
        assert local.date() == grant.expires_on + timedelta(days=1)
        assert (local.hour, local.minute) == (0, 0)


@pytest.mark.django_db(transaction=True)
def test_seed_demo_data_concurrent_runs_seed_once():
    results = []

    def run() -> None:
        try:
            results.append(
                services.seed_demo_data(accounts=2, members=6, days=7, seed=3)
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(results) == 2
    assert sum(result is None for result in results) == 1
    assert Account.objects.count() == 2
    assert Member.objects.count() == 6


def test_seed_demo_members_hold_role_groups(seeded):
    champion = get_user_model().objects.get(email=CHAMPION_EMAIL)
    member = get_user_model().objects.get(email=MEMBER_EMAIL)

    assert list(champion.groups.values_list("name", flat=True)) == ["role: champion"]
    assert list(member.groups.values_list("name", flat=True)) == ["role: member"]


def test_seed_demo_account_admins_hold_account_permissions(seeded):
    for admin in Member.objects.filter(role=Member.Role.ADMIN).select_related(
        "user", "account"
    ):
        assert admin.user.has_perm("membership.view_account_members", admin.account)


def test_seed_demo_community_events_for_member(seeded):
    member = Member.objects.get(user__email=MEMBER_EMAIL)

    upcoming = list_upcoming_events(member=member)
    past = list_past_events(member=member)

    assert upcoming.filter(cancelled_at__isnull=True).count() >= 3
    assert past.count() >= 2
    assert set(upcoming.values_list("kind", flat=True)) == set(
        CommunityEvent.Kind.values
    )
    assert not upcoming.exclude(space__slug__startswith=services.DEMO_ID_PREFIX)
    assert upcoming.filter(space__visibility=Space.Visibility.ACCOUNT).exists()


def test_seed_demo_community_event_rsvps(seeded):
    member = Member.objects.get(user__email=MEMBER_EMAIL)
    going = Rsvp.objects.filter(member=member, status=Rsvp.Status.GOING)

    assert going.count() == list_upcoming_events(member=member).count()
    assert Rsvp.objects.filter(status=Rsvp.Status.WAITLISTED).exists()
    for event in CommunityEvent.objects.all():
        going_count = event.rsvps.filter(status=Rsvp.Status.GOING).count()
        assert event.going_count == going_count, event.title
    assert ActivityEvent.objects.filter(
        member=member, kind="community.event_rsvp"
    ).exists()


def test_seed_demo_home_shows_upcoming_event(seeded, client):
    member = Member.objects.get(user__email=MEMBER_EMAIL)
    event = list_upcoming_events(member=member).first()
    client.force_login(member.user)

    response = client.get(reverse("portal:home"))

    assert response.status_code == 200
    page = response.content.decode()
    assert event.title in page
    assert "No upcoming events you can join" not in page


def test_seed_demo_creates_courses_with_certification(seeded):
    basics = Course.objects.get(slug="reporting-basics")

    assert basics.quiz.questions.count() == 3
    assert basics.certifications.get().slug == "certified-report-builder"
    assert list(Course.objects.get(slug="advanced-dashboards").prerequisites.all()) == [
        basics
    ]
    demo_member_email = services.DEMO_SIGN_INS[0][1]
    enrolment = CourseEnrolment.objects.get(member__user__email=demo_member_email)
    assert enrolment.course == basics


def test_seed_demo_accepts_solutions(seeded_at_fixed_time):
    questions = Topic.objects.filter(kind=Topic.Kind.QUESTION)
    solved = questions.filter(accepted_reply__isnull=False).select_related(
        "accepted_reply"
    )
    answered = questions.filter(replies__isnull=False).distinct()

    assert seeded_at_fixed_time.solutions == solved.count()
    assert solved.exists()
    # Some answered questions stay open, as in a real community.
    assert solved.count() < answered.count()
    for topic in solved:
        assert topic.accepted_reply.topic_id == topic.pk
        assert topic.accepted_reply.author_id != topic.author_id
        assert topic.accepted_reply.created_at <= topic.solved_at <= FIXED_NOW


def test_seed_demo_solution_counters_match(seeded_at_fixed_time):
    spaces = Space.objects.annotate(
        actual=Count("topics", filter=Q(topics__accepted_reply__isnull=False))
    )

    for space in spaces:
        assert space.solution_count == space.actual, space.name


def test_seed_demo_solution_events_at_solved_time(seeded_at_fixed_time):
    solved = Topic.objects.filter(accepted_reply__isnull=False)
    events = ActivityEvent.objects.filter(kind="community.solution_accepted")
    occurred = dict(events.values_list("subject_id", "occurred_at"))

    assert events.count() == solved.count()
    for topic in solved.select_related("accepted_reply"):
        reply = topic.accepted_reply
        assert occurred[str(reply.pk)] == topic.solved_at, topic.pk
        event = events.get(subject_id=str(reply.pk))
        assert event.member_id == reply.author_id


def test_seed_demo_solution_in_case_suggestions(seeded_at_fixed_time):
    member = Member.objects.get(user__email=MEMBER_EMAIL)
    # Any solved question in a space every member may read.
    question = (
        Topic.objects.filter(
            kind=Topic.Kind.QUESTION,
            accepted_reply__isnull=False,
            space__visibility__in=[Space.Visibility.PUBLIC, Space.Visibility.MEMBERS],
        )
        .order_by("-pk")
        .first()
    )
    assert question is not None, "the demo data has no solved question"
    # Solved questions with the same title rank alike, newest first.
    newest_same_title = (
        Topic.objects.filter(title=question.title, accepted_reply__isnull=False)
        .order_by("-pk")
        .first()
    )

    answers = list_case_suggestions(member=member, text=question.title)

    assert ("topic", newest_same_title.pk) in [answer.key for answer in answers]


def test_seed_demo_solutions_get_kudos(seeded):
    solved = Topic.objects.filter(accepted_reply__isnull=False).select_related(
        "accepted_reply"
    )

    assert solved.exists()
    for topic in solved:
        kudos = Kudos.objects.get(reply=topic.accepted_reply)
        assert kudos.member_id == topic.author_id
        assert kudos.created_at == topic.solved_at
        assert topic.accepted_reply.kudos_count == 1


def test_seed_demo_first_reply_times(seeded):
    """Each topic's first_reply_at is its first reply by someone else."""
    first_by_others = {
        row["topic_id"]: row["first"]
        for row in Reply.objects.exclude(author_id=F("topic__author_id"))
        .values("topic_id")
        .annotate(first=Min("created_at"))
    }
    stored = dict(Topic.objects.values_list("pk", "first_reply_at"))

    assert first_by_others
    assert {pk: at for pk, at in stored.items() if at is not None} == first_by_others


def test_seed_demo_answered_question_not_escalatable(seeded):
    question = (
        Topic.objects.filter(kind=Topic.Kind.QUESTION, first_reply_at__isnull=False)
        .select_related("author")
        .first()
    )

    assert not is_topic_escalatable(topic=question, member=question.author)


def test_seed_demo_champion_certificate_due(seeded):
    champion = Member.objects.get(user__email=CHAMPION_EMAIL)
    certificate = MemberCertificate.objects.get(member=champion)
    now = timezone.now()
    window = timedelta(days=certificate.certification.remind_days_before)

    assert certificate.revoked_at is None
    assert now < certificate.expires_at < now + window
    assert CourseEnrolment.objects.get(member=champion).completed_at is not None
    assert ActivityEvent.objects.filter(
        member=champion, kind="portal.certificate_issued"
    ).exists()


def test_seed_demo_hubs_hold_articles_and_courses(seeded):
    for hub in UseCaseHub.objects.filter(slug__startswith="demo-"):
        items = HubItem.objects.filter(hub=hub).select_related("content_type")
        kinds = {item.content_type.model for item in items}
        assert kinds == {"article", "course", "topic"}, hub.slug


def test_seed_demo_reporting_hub_items_in_order(seeded):
    hub = UseCaseHub.objects.get(slug="demo-reporting-hub")
    items = list(hub.items.select_related("content_type").order_by("position"))
    articles = Article.objects.in_bulk(
        [i.object_id for i in items if i.content_type.model == "article"]
    )
    courses = Course.objects.in_bulk(
        [i.object_id for i in items if i.content_type.model == "course"]
    )

    assert [item.content_type.model for item in items[:4]] == [
        "article",
        "article",
        "course",
        "course",
    ]
    assert [articles[item.object_id].title for item in items[:2]] == [
        "Export a report to CSV",
        "Schedule a dashboard email",
    ]
    assert [courses[item.object_id].slug for item in items[2:4]] == [
        "reporting-basics",
        "advanced-dashboards",
    ]
    assert all(item.content_type.model == "topic" for item in items[4:])


def test_seed_demo_case_due_times_follow_sla(seeded_at_fixed_time):
    cases = Case.objects.all()

    assert cases.count() == 6
    for case in cases:
        policy = SlaPolicy.objects.select_related("calendar").get(
            priority=case.priority
        )
        hours = load_working_hours(policy.calendar)
        first_due = add_business_minutes(
            case.created_at, policy.first_response_minutes, hours
        )
        resolution_due = add_business_minutes(
            case.created_at, policy.resolution_minutes, hours
        )
        assert case.first_response_due_at == first_due, case.subject
        if case.status == Case.Status.WAITING:
            paused_at = case.status_changes.get(to_status="waiting").changed_at
            assert case.resolution_due_at is None
            assert case.resolution_minutes_left == count_business_minutes(
                paused_at, resolution_due, hours
            )
        else:
            assert case.resolution_due_at == resolution_due, case.subject
            assert case.resolution_minutes_left is None


def test_seed_demo_case_due_time_skips_holidays(seeded_at_fixed_time):
    case = Case.objects.get(subject="Invoice shows the old billing address")

    # Filed on Wednesday 23 December 2026 at 11:00 in Berlin, with 24 working
    # hours to the first response. They are 6 that day, 8 on the 24th, none on
    # the 25th, the 26th and the Sunday, 8 on Monday and 2 on Tuesday the 29th.
    assert case.created_at == datetime(2026, 12, 23, 10, tzinfo=UTC)
    assert case.first_response_due_at == datetime(2026, 12, 29, 10, tzinfo=UTC)


def test_seed_demo_case_breach_flags(seeded_at_fixed_time):
    # A due time passed before the response, the solution or the seed time
    # carries a breach flag at that due time.
    for case in Case.objects.all():
        responded_by = case.first_responded_at or FIXED_NOW
        expected = case.first_response_due_at
        if responded_by <= case.first_response_due_at:
            expected = None
        assert case.first_response_breached_at == expected, case.subject


def test_seed_demo_late_solution_breached(seeded_at_fixed_time):
    case = Case.objects.get(subject="CSV export uses the wrong date format")

    assert case.solved_at > case.resolution_due_at
    assert case.resolution_breached_at == case.resolution_due_at


def test_seed_demo_case_due_now_not_breached(seeded_at_fixed_time):
    # Filed on Thursday 24 December at 19:00 in Berlin, after hours, with two
    # working hours to the first response, so due at 11:00 on Monday the 28th,
    # the seed time. The breach sweep flags only due times before now.
    case = Case.objects.get(subject="API token expired without warning")

    assert case.first_response_due_at == FIXED_NOW
    assert case.first_response_breached_at is None


def test_seed_demo_display_names_unique(seeded):
    members = list(Member.objects.values_list("display_name", flat=True))
    staff = [
        user.get_full_name() for user in get_user_model().objects.filter(is_staff=True)
    ]
    names = [name.casefold() for name in members + staff]

    assert len(names) == len(set(names))


class RepeatingNames:
    """Faker stand-in whose every locale draws the same first and last name."""

    def __getitem__(self, locale: str) -> "RepeatingNames":
        return self

    def first_name(self) -> str:
        return "Alex"

    def last_name(self) -> str:
        return "Morgan"


def test_population_repeated_names_made_unique():
    population = Population(
        rng=random.Random(1),
        fake=RepeatingNames(),
        now=datetime(2026, 3, 2, 12, tzinfo=UTC),
        days=30,
        sign_in_domain=services.DEMO_EMAIL_DOMAIN,
        id_prefix=services.DEMO_ID_PREFIX,
    )

    staff = population.make_staff(account_count=1)
    accounts = population.make_accounts(count=1, staff_count=len(staff))
    members = population.make_members(accounts, count=3)

    names = [person.display_name for person in staff + members]
    assert names == [
        "Alex Morgan",
        "Alex A. Morgan",
        "Alex B. Morgan",
        "Alex C. Morgan",
        "Alex D. Morgan",
    ]


def test_population_reserves_demo_admin_name():
    class DemoAdminNames(RepeatingNames):
        def first_name(self) -> str:
            return "Demo"

        def last_name(self) -> str:
            return "Admin"

    population = Population(
        rng=random.Random(1),
        fake=DemoAdminNames(),
        now=datetime(2026, 3, 2, 12, tzinfo=UTC),
        days=30,
        sign_in_domain=services.DEMO_EMAIL_DOMAIN,
        id_prefix=services.DEMO_ID_PREFIX,
    )

    first = population.make_staff(account_count=1)[0]

    assert first.display_name == "Demo A. Admin"


def test_seed_demo_articles_have_feedback(seeded):
    articles = list(Article.objects.filter(slug__startswith="demo-"))
    helpful = [a for a in articles if a.helpful_count > a.not_helpful_count]
    feedback_total = sum(a.helpful_count + a.not_helpful_count for a in articles)

    assert 0 < len(helpful) < len(articles)
    assert feedback_total == ArticleFeedback.objects.count()
    assert not ArticleFeedback.objects.filter(
        member__user__email__endswith="demo.rm6.test"
    ).exists()


def test_seed_demo_member_home_recommends_article(seeded):
    member = Member.objects.get(user__email=MEMBER_EMAIL)

    article = get_next_article(member=member)

    assert article is not None
    assert article.helpful_count > article.not_helpful_count
