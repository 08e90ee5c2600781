"""The content-gap backlog: grouping, the staff page, drafting and publishing."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from apps.community.models import SearchLog
from apps.portal.models import Article, CaseAttempt, ContentGap
from apps.portal.services.cases import file_case
from apps.portal.services.gaps import group_content_gaps, update_content_gap
from apps.portal.services.knowledge import ArticleInput, update_article
from rm6.errors import DomainError
from tests import factories
from tests.portal.knowledge.factories import make_attempt, make_case_topic

pytestmark = pytest.mark.django_db
NOT_DEFLECTED = CaseAttempt.Outcome.NOT_DEFLECTED


@pytest.fixture
def filer_member(db):
    return factories.MemberFactory()


@pytest.fixture
def sources():
    topic = make_case_topic("Reporting")
    now = timezone.now()
    make_attempt(query="Export fails!", topic=topic, outcome=NOT_DEFLECTED)
    make_attempt(query="export   FAILS", topic=topic, outcome=NOT_DEFLECTED)
    make_attempt(
        query="export fails",
        topic=topic,
        outcome=NOT_DEFLECTED,
        solved_by_suggestion_at=now,
    )
    make_attempt(query="export fails", topic=topic, outcome="deflected")
    make_attempt(query="", topic=None, outcome=NOT_DEFLECTED)
    SearchLog.objects.create(query="SSO with Okta?", result_count=0)
    SearchLog.objects.create(query="sso  with okta", result_count=0)
    SearchLog.objects.create(query="billing", result_count=3)
    return topic


def test_grouping_normalises_and_counts(sources):
    group_content_gaps()

    gaps = {gap.key: gap for gap in ContentGap.objects.all()}
    assert set(gaps) == {f"cases:{sources.pk}:export fails", "search:sso with okta"}
    case_gap = gaps[f"cases:{sources.pk}:export fails"]
    assert case_gap.occurrences == 2
    assert case_gap.title == "Reporting: export fails"
    assert case_gap.topic == sources
    assert case_gap.sample_queries == ["Export fails!", "export   FAILS"]
    assert gaps["search:sso with okta"].occurrences == 2
    assert gaps["search:sso with okta"].source == ContentGap.Source.SEARCH


def test_grouping_twice_same_rows(sources):
    group_content_gaps()
    first = list(ContentGap.objects.order_by("key").values("key", "occurrences"))

    group_content_gaps()

    assert (
        list(ContentGap.objects.order_by("key").values("key", "occurrences")) == first
    )


def test_grouping_keeps_staff_fields(sources, staff_user):
    group_content_gaps()
    gap = ContentGap.objects.get(source=ContentGap.Source.SEARCH)
    due_on = timezone.localdate() + timedelta(days=7)
    update_content_gap(
        gap_id=gap.pk, status="in_progress", owner_id=staff_user.pk, due_on=due_on
    )
    SearchLog.objects.create(query="SSO with okta", result_count=0)

    group_content_gaps()

    gap.refresh_from_db()
    assert gap.occurrences == 3
    assert gap.status == "in_progress"
    assert gap.owner == staff_user
    assert gap.due_on == due_on


def test_update_rejects_published_without_article(sources):
    group_content_gaps()
    gap = ContentGap.objects.first()

    with pytest.raises(DomainError) as error:
        update_content_gap(
            gap_id=gap.pk, status="published", owner_id=None, due_on=None
        )

    assert error.value.field == "status"
    gap.refresh_from_db()
    assert gap.status == "open"


def test_gap_page_staff_only(member_client, sources):
    group_content_gaps()

    response = member_client.get(reverse("portal:gaps"))

    assert response.status_code == 403


def test_gap_page_filters_by_status_and_owner(staff_client, staff_user, sources):
    group_content_gaps()
    gap = ContentGap.objects.get(source=ContentGap.Source.SEARCH)
    update_content_gap(
        gap_id=gap.pk, status="in_progress", owner_id=staff_user.pk, due_on=None
    )

    by_status = staff_client.get(reverse("portal:gaps"), {"status": "open"})
    by_owner = staff_client.get(reverse("portal:gaps"), {"owner": staff_user.pk})

    assert [g.key for g in by_status.context["page_obj"]] == [
        f"cases:{sources.pk}:export fails"
    ]
    assert [g.key for g in by_owner.context["page_obj"]] == ["search:sso with okta"]


def _count(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(reverse("portal:gaps")).status_code == 200
    return len(queries)


def test_gap_page_query_count_fixed(staff_client):
    now = timezone.now()
    for number in range(2):
        SearchLog.objects.create(query=f"missing {number}", result_count=0)
    group_content_gaps()
    few = _count(staff_client)

    for number in range(2, 20):
        SearchLog.objects.create(query=f"missing {number}", result_count=0)
    group_content_gaps()
    ContentGap.objects.update(owner=factories.StaffFactory(), due_on=now.date())
    many = _count(staff_client)

    assert few == many


def test_gap_update_view_sets_owner_and_due(staff_client, staff_user, sources):
    group_content_gaps()
    gap = ContentGap.objects.get(source=ContentGap.Source.SEARCH)

    due_on = timezone.localdate() + timedelta(days=40)

    response = staff_client.post(
        reverse("portal:gap_update", args=[gap.pk]),
        {"status": "in_progress", "owner": staff_user.pk, "due_on": str(due_on)},
    )

    assert response.status_code == 302
    gap.refresh_from_db()
    assert gap.status == "in_progress"
    assert gap.owner == staff_user
    assert gap.due_on == due_on


@pytest.mark.parametrize("days_ago", [1, 46000])
def test_gap_update_rejects_due_date_in_past(staff_client, sources, days_ago):
    group_content_gaps()
    gap = ContentGap.objects.get(source=ContentGap.Source.SEARCH)
    today = timezone.localdate()
    due_on = today - timedelta(days=days_ago)

    response = staff_client.post(
        reverse("portal:gap_update", args=[gap.pk]),
        {"status": "in_progress", "due_on": str(due_on)},
        follow=True,
    )

    [message] = [str(m) for m in response.context["messages"]]
    assert message == (
        f"The gap was not changed. The due date {due_on} is in the past; choose "
        f"today ({today}) or a later date."
    )
    gap.refresh_from_db()
    assert (gap.status, gap.due_on) == ("open", None)


def test_gap_update_keeps_unchanged_past_due_date(sources):
    group_content_gaps()
    gap = ContentGap.objects.get(source=ContentGap.Source.SEARCH)
    past = timezone.localdate() - timedelta(days=3)
    ContentGap.objects.filter(pk=gap.pk).update(due_on=past)

    update_content_gap(gap_id=gap.pk, status="in_progress", owner_id=None, due_on=past)

    gap.refresh_from_db()
    assert (gap.status, gap.due_on) == ("in_progress", past)


def test_gap_page_rejects_published_without_article(staff_client, sources):
    group_content_gaps()
    gap = ContentGap.objects.get(source=ContentGap.Source.SEARCH)

    response = staff_client.post(
        reverse("portal:gap_update", args=[gap.pk]),
        {"status": "published"},
        follow=True,
    )

    [message] = [str(m) for m in response.context["messages"]]
    assert message == (
        "The gap was not changed. This gap has no published article yet; draft an "
        "article from it and publish the article, which marks the gap published."
    )
    gap.refresh_from_db()
    assert gap.status == "open"


def test_grouping_falls_back_to_case_subject(sources, filer_member):
    attempt = make_attempt(
        member=filer_member, query="", topic=sources, outcome=NOT_DEFLECTED
    )
    file_case(
        member=filer_member,
        subject="Export fails",
        body="Nothing happens.",
        topic=sources,
        attempt_id=attempt.pk,
    )
    CaseAttempt.objects.filter(pk=attempt.pk).update(outcome=NOT_DEFLECTED)

    group_content_gaps()

    gap = ContentGap.objects.get(key=f"cases:{sources.pk}:export fails")
    assert gap.occurrences == 3
    assert "Export fails" in gap.sample_queries


def test_grouping_counts_cases_filed_without_attempt(sources, filer_member):
    file_case(
        member=filer_member, subject="Export FAILS!", body="Via the API.", topic=sources
    )
    file_case(member=filer_member, subject="SAML login loops", body="Via the API.")

    group_content_gaps()

    gaps = {gap.key: gap for gap in ContentGap.objects.all()}
    assert gaps[f"cases:{sources.pk}:export fails"].occurrences == 3
    assert gaps["cases:0:saml login loops"].title == "saml login loops"
    assert gaps["cases:0:saml login loops"].sample_queries == ["SAML login loops"]


def test_gap_update_view_refuses_members(member_client, sources):
    group_content_gaps()
    gap = ContentGap.objects.first()

    response = member_client.post(
        reverse("portal:gap_update", args=[gap.pk]), {"status": "dismissed"}
    )

    assert response.status_code == 403
    gap.refresh_from_db()
    assert gap.status == "open"


def test_draft_then_publish_closes_gap(staff_client, staff_user, sources):
    group_content_gaps()
    gap = ContentGap.objects.get(source=ContentGap.Source.SEARCH)

    response = staff_client.post(reverse("portal:gap_draft_article", args=[gap.pk]))

    gap.refresh_from_db()
    article = gap.article
    assert response.status_code == 302
    assert response.url == reverse("portal:article_edit", args=[article.slug])
    assert article.is_published is False
    assert gap.status == "in_progress"
    assert gap.owner == staff_user
    assert "SSO with Okta?" in article.body

    update_article(
        article_id=article.pk,
        data=ArticleInput(
            title="Sign in with Okta",
            body="Configure Okta as an OpenID Connect provider.",
            owner_id=staff_user.pk,
            is_published=True,
        ),
        edited_by=staff_user,
    )

    gap.refresh_from_db()
    assert gap.status == "published"
    assert Article.objects.get().is_published is True


def test_draft_twice_returns_same_article(staff_client, sources):
    group_content_gaps()
    gap = ContentGap.objects.first()
    url = reverse("portal:gap_draft_article", args=[gap.pk])

    staff_client.post(url)
    staff_client.post(url)

    assert Article.objects.count() == 1


def test_gap_admin_rejects_due_date_in_past(admin_client, sources):
    group_content_gaps()
    gap = ContentGap.objects.get(source=ContentGap.Source.SEARCH)

    response = admin_client.post(
        f"/admin/portal/contentgap/{gap.pk}/change/",
        {"title": gap.title, "status": "open", "due_on": "1900-01-01"},
    )

    assert response.status_code == 200
    assert "1900-01-01 is in the past" in response.content.decode()
    gap.refresh_from_db()
    assert gap.due_on is None
