import datetime
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from apps.advocacy.models import Badge, MemberBadge
from apps.advocacy.services import award_points
from apps.community.models import Space
from apps.lifecycle.models import HealthBand, HealthScore
from apps.membership.models import Account, Member
from apps.membership.services.roles import sync_role_groups
from apps.portal.models import Case, OnboardingProgress
from tests import factories
from tests.portal.onboarding.factories import (
    ArticleFactory,
    CaseFactory,
    CommunityEventFactory,
    CourseFactory,
    EnrolmentFactory,
    EventStepFactory,
    PathFactory,
    watch_topic,
)

pytestmark = pytest.mark.django_db

HOME_URL = reverse("portal:home")


def count_queries(client) -> int:
    with CaptureQueriesContext(connection) as context:
        response = client.get(HOME_URL)
    assert response.status_code == 200
    return len(context.captured_queries)


def add_history(member, *, size: int) -> None:
    """Give the member `size` of everything the home page reads."""
    space = factories.SpaceFactory()
    path = PathFactory()
    badge_number = Badge.objects.count()
    for index in range(size):
        kind = f"product.feature_{member.pk}_{index}"
        EventStepFactory(path=path, completion_kind=kind)
        factories.ActivityEventFactory(member=member, kind=kind)
        topic = factories.TopicFactory(space=space, author=member)
        factories.ReplyFactory(topic=topic, author=member)
        watch_topic(member, topic)
        CaseFactory(member=member)
        EnrolmentFactory(member=member, completed_at=timezone.now())
        ArticleFactory(helpful_count=index + 1)
        CommunityEventFactory(space=space)
        award_points(member=member, points=5, reason="test")
        badge = Badge.objects.create(
            name=f"Badge {badge_number + index}", slug=f"badge-{badge_number + index}"
        )
        MemberBadge.objects.create(
            member=member, badge=badge, awarded_at=timezone.now(), reason="test"
        )


def test_home_anonymous_redirected_to_sign_in(client):
    response = client.get(HOME_URL)

    assert response.status_code == 302
    assert response.url == f"{reverse('account_login')}?next=/"


def test_home_shows_account_facts(client):
    owner = factories.StaffFactory(first_name="Dana", last_name="Reyes")
    account = factories.AccountFactory(
        name="Globex",
        segment=Account.Segment.ENTERPRISE,
        cs_tier=Account.CsTier.HIGH_TOUCH,
        renewal_date=datetime.date(2027, 3, 31),
        owner=owner,
    )
    member = factories.MemberFactory(account=account, display_name="Sam")
    client.force_login(member.user)

    html = client.get(HOME_URL).content.decode()

    assert "Welcome, Sam" in html
    assert "<dd>Globex</dd>" in html
    assert "<dd>Enterprise</dd>" in html
    assert "<dd>High touch</dd>" in html
    assert '<time datetime="2027-03-31">31 March 2027</time>' in html
    assert "Dana Reyes" in html


def test_home_account_without_owner_or_renewal(member_client):
    html = member_client.get(HOME_URL).content.decode()

    assert "Not assigned" in html
    assert "Not set" in html


def test_home_shows_path_progress_synced_on_view(member_client, member):
    path = PathFactory(title="First week")
    EventStepFactory(path=path, completion_kind="community.question_posted")
    EventStepFactory(path=path, completion_kind="product.report_exported")
    factories.ActivityEventFactory(member=member, kind="product.report_exported")

    response = member_client.get(HOME_URL)

    html = response.content.decode()
    [progress] = response.context["paths"]
    assert [status.is_done for status in progress.steps] == [False, True]
    assert OnboardingProgress.objects.filter(member=member).count() == 1
    assert "1 of 2 steps done" in html
    assert f'<progress id="onboarding-progress-{path.pk}" max="2" value="1">' in html


def test_home_hides_paths_for_other_roles(member_client):
    path = PathFactory(title="Admin setup", roles=[Member.Role.ADMIN])
    EventStepFactory(path=path)

    html = member_client.get(HOME_URL).content.decode()

    assert "Admin setup" not in html
    assert "No onboarding path is assigned to you yet." in html


def test_home_empty_state_helps_new_member_start(member_client):
    path = PathFactory(title="First week")
    EventStepFactory(path=path, title="Ask your first question")

    response = member_client.get(HOME_URL)

    html = response.content.decode()
    assert response.context["is_new"] is True
    assert "Start here" in html
    assert "do its first step: Ask your first question" in html
    assert reverse("portal:hubs") in html
    assert "You watch no topics yet." in html
    assert "You have no open support cases." in html


def test_home_empty_state_gone_once_started(member_client, member):
    EventStepFactory(completion_kind="product.report_exported")
    factories.ActivityEventFactory(member=member, kind="product.report_exported")

    response = member_client.get(HOME_URL)

    assert response.context["is_new"] is False
    assert "Start here" not in response.content.decode()


def test_home_panel_order_follows_lifecycle_stage(client):
    onboarding = factories.MemberFactory(
        lifecycle_stage=Member.LifecycleStage.ONBOARDING
    )
    at_risk = factories.MemberFactory(lifecycle_stage=Member.LifecycleStage.AT_RISK)

    client.force_login(onboarding.user)
    first_html = client.get(HOME_URL).content.decode()
    client.force_login(at_risk.user)
    risk_html = client.get(HOME_URL).content.decode()

    assert first_html.index('id="panel-onboarding"') < first_html.index(
        'id="panel-cases"'
    )
    assert risk_html.index('id="panel-cases"') < risk_html.index(
        'id="panel-onboarding"'
    )
    assert "one click away" in risk_html


def test_home_account_admin_sees_team_panel(client):
    admin = factories.MemberFactory(role=Member.Role.ADMIN)
    sync_role_groups(admin)
    EventStepFactory(path=PathFactory(title="First week"))
    client.force_login(admin.user)

    html = client.get(HOME_URL).content.decode()

    assert "Your team's onboarding" in html
    assert reverse("portal:onboarding_account", args=[admin.account_id]) in html


def test_home_account_admin_links_account_health(client):
    admin = factories.MemberFactory(role=Member.Role.ADMIN)
    sync_role_groups(admin)
    client.force_login(admin.user)

    html = client.get(HOME_URL).content.decode()

    assert reverse("lifecycle:account_health", args=[admin.account_id]) in html


def test_home_plain_member_has_no_account_health_link(member_client, member):
    html = member_client.get(HOME_URL).content.decode()

    assert reverse("lifecycle:account_health", args=[member.account_id]) not in html


def test_home_plain_member_has_no_team_panel(member_client):
    assert "Your team's onboarding" not in member_client.get(HOME_URL).content.decode()


def test_home_champion_sees_unanswered_questions(client):
    champion = factories.MemberFactory(role=Member.Role.CHAMPION)
    factories.TopicFactory(title="Where is the export?")
    client.force_login(champion.user)

    html = client.get(HOME_URL).content.decode()

    assert "Questions waiting for a first reply" in html
    assert "Where is the export?" in html


def test_home_next_course_respects_prerequisites(member_client, member):
    basics = CourseFactory(title="Basics", position=2)
    advanced = CourseFactory(title="Advanced", position=1)
    advanced.prerequisites.add(basics)
    CourseFactory(title="Draft", position=0, is_published=False)

    first = member_client.get(HOME_URL).context["next_course"]
    EnrolmentFactory(member=member, course=basics, completed_at=timezone.now())
    second = member_client.get(HOME_URL).context["next_course"]

    assert first == basics
    assert second == advanced


def test_home_next_course_prefers_started(member_client, member):
    CourseFactory(title="First", position=1)
    started = CourseFactory(title="Second", position=2)
    EnrolmentFactory(member=member, course=started)

    assert member_client.get(HOME_URL).context["next_course"] == started


def test_home_next_article_helpful_and_unread(member_client, member):
    read = ArticleFactory(title="Read", helpful_count=9)
    ArticleFactory(title="Unhelpful", helpful_count=1, not_helpful_count=5)
    ArticleFactory(title="Draft", helpful_count=20, is_published=False)
    unread = ArticleFactory(title="Unread", helpful_count=3)
    factories.ActivityEventFactory(
        member=member, kind="portal.article_viewed", subject=read
    )

    html = member_client.get(HOME_URL).content.decode()

    assert "Unread" in html
    assert member_client.get(HOME_URL).context["next_article"] == unread


def test_home_open_cases_only_own_and_open(member_client, member):
    CaseFactory(member=member, subject="Export fails", status=Case.Status.WAITING)
    CaseFactory(member=member, subject="Old problem", status=Case.Status.CLOSED)
    CaseFactory(subject="Colleague's case", member__account=member.account)

    html = member_client.get(HOME_URL).content.decode()

    assert "Export fails" in html
    assert "Waiting on member" in html
    assert "Old problem" not in html
    assert "Colleague&#x27;s case" not in html


def test_home_watched_topics_hide_private_spaces(member_client, member):
    shown = factories.TopicFactory(title="Shown topic")
    private = factories.TopicFactory(
        title="Private topic",
        space=factories.SpaceFactory(visibility=Space.Visibility.PRIVATE),
    )
    watch_topic(member, shown)
    watch_topic(member, private)

    html = member_client.get(HOME_URL).content.decode()

    assert "Shown topic" in html
    assert "Private topic" not in html


def test_home_events_upcoming_visible_not_cancelled(member_client):
    CommunityEventFactory(title="Office hours")
    CommunityEventFactory(title="Cancelled one", cancelled_at=timezone.now())
    CommunityEventFactory(
        title="Private webinar",
        space=factories.SpaceFactory(visibility=Space.Visibility.PRIVATE),
    )
    CommunityEventFactory(
        title="Past webinar",
        starts_at=timezone.now() - timedelta(days=3),
    )

    html = member_client.get(HOME_URL).content.decode()

    assert "Office hours" in html
    assert "Cancelled one" not in html
    assert "Private webinar" not in html
    assert "Past webinar" not in html


def test_home_shows_points_and_badges(member_client, member):
    award_points(member=member, points=30, reason="test")
    badge = Badge.objects.create(name="First answer", slug="first-answer")
    MemberBadge.objects.create(
        member=member, badge=badge, awarded_at=timezone.now(), reason="test"
    )

    html = member_client.get(HOME_URL).content.decode()

    assert "<strong>30</strong> points" in html
    assert "First answer" in html


def test_home_shows_health_score(member_client, member):
    HealthScore.objects.create(
        member=member, score=72, band=HealthBand.GREEN, computed_at=timezone.now()
    )

    html = member_client.get(HOME_URL).content.decode()

    assert '<p class="figure">72' in html
    assert '<span class="badge badge--green">Green</span>' in html


def test_home_without_health_score(member_client):
    html = member_client.get(HOME_URL).content.decode()

    assert "Not computed yet." in html


def test_home_member_awaiting_review_sees_notice(client):
    member = factories.MemberFactory(account=None)
    client.force_login(member.user)

    response = client.get(HOME_URL)

    html = response.content.decode()
    assert response.status_code == 200
    assert "Your membership is awaiting review." in html
    assert "Your account" not in html


def test_home_unconfirmed_sign_up_asked_to_confirm(client):
    factories.AccountFactory(email_domains=["globex.test"])
    client.post(
        "/accounts/signup/",
        {
            "email": "hank@globex.test",
            "password1": "a-long-unusual-passphrase",
            "password2": "a-long-unusual-passphrase",
        },
    )

    html = client.get(HOME_URL).content.decode()

    assert "Confirm your email address." in html
    assert "hank@globex.test" in html
    assert reverse("account_email") in html
    assert "did not match a customer account" not in html


def test_home_staff_without_member_sees_staff_landing(client):
    staff = factories.StaffFactory()
    factories.AccountFactory(name="Managed Co", owner=staff)
    client.force_login(staff)

    response = client.get(HOME_URL)

    html = response.content.decode()
    assert response.status_code == 200
    assert "Staff home" in html
    assert "Managed Co" in html
    assert reverse("reporting:dashboard") in html
    assert reverse("admin:index") in html


def test_home_user_without_member_sees_notice(client):
    user = factories.UserFactory()
    client.force_login(user)

    html = client.get(HOME_URL).content.decode()

    assert "Your user has no member profile" in html


def test_home_query_count_fixed(client, django_assert_num_queries):
    owner = factories.StaffFactory()
    few_member = factories.MemberFactory(account__owner=owner)
    many_member = factories.MemberFactory(account__owner=owner)
    add_history(few_member, size=1)
    add_history(many_member, size=15)
    for member in (few_member, many_member):
        HealthScore.objects.create(
            member=member, score=10, band=HealthBand.RED, computed_at=timezone.now()
        )

    client.force_login(few_member.user)
    count_queries(client)
    few = count_queries(client)
    client.force_login(many_member.user)
    count_queries(client)
    many = count_queries(client)

    assert few == many
    # Session, user, member; the sync's savepoint, its two statements and
    # the release; the account (for the path filter and the card); paths,
    # steps, progress, completions; next course, next article, open cases,
    # watched topics, events; health score; badges, points; score trend;
    # unread notifications; the account's owner.
    with django_assert_num_queries(23):
        client.get(HOME_URL)


def test_home_open_cases_link_to_case_pages(member_client, member):
    case = CaseFactory(member=member, subject="Export fails")

    html = member_client.get(HOME_URL).content.decode()

    case_url = reverse("portal:case_detail", kwargs={"pk": case.pk})
    assert f'<a href="{case_url}">Export fails</a>' in html
    assert "See all your cases" not in html


def test_home_links_all_cases_when_more_than_shown(member_client, member):
    from apps.portal.selectors.home import HOME_LIST_LIMIT

    for _ in range(HOME_LIST_LIMIT + 1):
        CaseFactory(member=member)

    html = member_client.get(HOME_URL).content.decode()

    assert f'<a href="{reverse("portal:case_list")}">See all your cases</a>' in html


def test_home_headline_urges_unfinished_path(member_client, member):
    EventStepFactory(completion_kind="product.report_exported")

    html = member_client.get(HOME_URL).content.decode()

    assert member.lifecycle_stage == Member.LifecycleStage.ONBOARDING
    assert "Finish your onboarding path" in html


def test_home_headline_done_after_every_path(member_client, member):
    EventStepFactory(completion_kind="product.report_exported")
    factories.ActivityEventFactory(member=member, kind="product.report_exported")

    response = member_client.get(HOME_URL)

    html = response.content.decode()
    [progress] = response.context["paths"]
    assert progress.is_complete
    assert "Finish your onboarding path" not in html
    assert "You finished every onboarding path assigned to you." in html
