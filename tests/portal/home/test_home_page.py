import datetime

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from apps.lifecycle.models import HealthBand, HealthScore
from apps.membership.models import Account
from tests import factories

HOME_URL = reverse("portal:home")


def count_queries(client) -> int:
    with CaptureQueriesContext(connection) as context:
        response = client.get(HOME_URL)
    assert response.status_code == 200
    return len(context.captured_queries)


def add_history(member, *, size: int) -> None:
    """Give the member `size` onboarding steps, topics, replies and events."""
    space = factories.SpaceFactory()
    for index in range(size):
        kind = f"product.feature_{index}"
        factories.OnboardingStepFactory(completion_kind=kind)
        factories.ActivityEventFactory(member=member, kind=kind)
        topic = factories.TopicFactory(space=space, author=member)
        factories.ReplyFactory(topic=topic, author=member)


def test_home_anonymous_redirected_to_sign_in(client, db):
    response = client.get(HOME_URL)

    assert response.status_code == 302
    assert response.url == f"{reverse('account_login')}?next=/"


def test_home_shows_account_facts(client, db):
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


def test_home_shows_checklist_progress(member_client, member):
    factories.OnboardingStepFactory(
        title="Ask a question", completion_kind="community.question_posted"
    )
    factories.OnboardingStepFactory(
        title="Export a report", completion_kind="product.report_exported"
    )
    factories.ActivityEventFactory(member=member, kind="product.report_exported")

    response = member_client.get(HOME_URL)

    html = response.content.decode()
    done = [item.is_done for item in response.context["checklist"]]
    assert done == [False, True]
    assert "1 of 2 steps done" in html
    assert '<progress id="onboarding-progress" max="2" value="1">' in html
    assert "Done:" in html
    assert "Not done:" in html


def test_home_without_steps_says_so(member_client):
    html = member_client.get(HOME_URL).content.decode()

    assert "There are no onboarding steps yet." in html


def test_home_lists_recent_posts(member_client, member):
    topic = factories.TopicFactory(author=member, title="My export question")
    other_topic = factories.TopicFactory(title="Billing cycle")
    factories.ReplyFactory(topic=other_topic, author=member)

    html = member_client.get(HOME_URL).content.decode()

    assert "My export question" in html
    assert f"in {topic.space.name}" in html
    assert "Re: Billing cycle" in html


def test_home_without_posts_links_to_community(member_client):
    html = member_client.get(HOME_URL).content.decode()

    assert "You have not posted yet." in html


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


def test_home_member_awaiting_review_sees_notice(client, db):
    member = factories.MemberFactory(account=None)
    client.force_login(member.user)

    response = client.get(HOME_URL)

    html = response.content.decode()
    assert response.status_code == 200
    assert "Your membership is awaiting review." in html
    assert "Your account" not in html


def test_home_staff_without_member_sees_staff_landing(staff_client):
    response = staff_client.get(HOME_URL)

    html = response.content.decode()
    assert response.status_code == 200
    assert "Staff home" in html
    assert reverse("reporting:dashboard") in html
    assert reverse("admin:index") in html


def test_home_user_without_member_sees_notice(client, db):
    user = factories.UserFactory()
    client.force_login(user)

    html = client.get(HOME_URL).content.decode()

    assert "Your user has no member profile" in html


def test_home_query_count_fixed(client, db, django_assert_num_queries):
    owner = factories.StaffFactory()
    few_member = factories.MemberFactory(account__owner=owner)
    many_member = factories.MemberFactory(account__owner=owner)
    add_history(few_member, size=1)
    add_history(many_member, size=20)
    HealthScore.objects.create(
        member=many_member, score=10, band=HealthBand.RED, computed_at=timezone.now()
    )

    client.force_login(few_member.user)
    count_queries(client)
    few = count_queries(client)
    client.force_login(many_member.user)
    many = count_queries(client)

    assert few == many
    # Session, user, member, steps, kinds done, account, owner, topics,
    # replies, health score, score trend, unread notification count.
    with django_assert_num_queries(12):
        client.get(HOME_URL)
