"""The content-gap backlog: grouping, the staff page, drafting and publishing."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from apps.community.models import SearchLog
from apps.portal.models import Article, CaseAttempt, ContentGap
from apps.portal.services.gaps import group_content_gaps, update_content_gap
from apps.portal.services.knowledge import ArticleInput, update_article
from rm6.errors import DomainError
from tests import factories
from tests.portal.knowledge.factories import make_attempt, make_case_topic

pytestmark = pytest.mark.django_db
NOT_DEFLECTED = CaseAttempt.Outcome.NOT_DEFLECTED


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

    response = staff_client.post(
        reverse("portal:gap_update", args=[gap.pk]),
        {"status": "in_progress", "owner": staff_user.pk, "due_on": "2027-01-15"},
    )

    assert response.status_code == 302
    gap.refresh_from_db()
    assert gap.status == "in_progress"
    assert gap.owner == staff_user
    assert str(gap.due_on) == "2027-01-15"


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
