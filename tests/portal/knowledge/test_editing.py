"""Staff work on articles: edits and versions, reviews, overdue lists."""

import threading
from datetime import date, timedelta

import pytest
from django.contrib.messages import get_messages
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from apps.portal.models import Article, ArticleReviewReminder, ArticleVersion
from apps.portal.selectors.knowledge import (
    get_content_freshness,
    search_articles,
)
from apps.portal.services.knowledge import (
    ArticleInput,
    mark_article_reviewed,
    update_article,
)
from apps.portal.tasks.knowledge import send_overdue_review_reminders_task
from rm6.errors import DomainError
from tests import factories
from tests.portal.knowledge.factories import make_article

pytestmark = pytest.mark.django_db


def _input(article: Article, **changes) -> ArticleInput:
    values = {
        "title": article.title,
        "summary": article.summary,
        "body": article.body,
        "audience": article.audience,
        "owner_id": article.owner_id,
        "review_interval_days": article.review_interval_days,
        "is_published": article.is_published,
    }
    values.update(changes)
    return ArticleInput(**values)


def test_create_saves_version_one_and_review_date():
    article = make_article(review_interval_days=30)

    version = article.versions.get()
    assert version.number == 1
    assert article.reviewed_on == timezone.localdate()
    assert article.review_due_on == timezone.localdate() + timedelta(days=30)


def test_update_saves_next_version():
    article = make_article()

    update_article(
        article_id=article.pk,
        data=_input(article, body="New steps."),
        edited_by=article.owner,
        note="Rewrote the steps",
    )

    numbers = list(article.versions.order_by("number").values_list("number", "note"))
    assert numbers == [(1, "Created"), (2, "Rewrote the steps")]


def test_update_without_text_change_saves_no_version():
    article = make_article()

    update_article(
        article_id=article.pk,
        data=_input(article, review_interval_days=90),
        edited_by=article.owner,
    )

    assert article.versions.count() == 1
    article.refresh_from_db()
    assert article.review_due_on == article.reviewed_on + timedelta(days=90)


def test_update_refreshes_search_vector():
    article = make_article(title="Old title", body="Nothing here.")

    update_article(
        article_id=article.pk,
        data=_input(article, body="Rotate the API keys monthly."),
        edited_by=article.owner,
    )

    page = search_articles(query="rotate", member=None, is_staff=True)
    assert [hit.article.pk for hit in page.hits] == [article.pk]


def test_update_rejects_non_staff_owner():
    article = make_article()
    member = factories.MemberFactory()

    with pytest.raises(DomainError) as error:
        update_article(
            article_id=article.pk,
            data=_input(article, owner_id=member.user_id, body="Changed."),
            edited_by=article.owner,
        )

    assert error.value.field == "owner"
    article.refresh_from_db()
    assert article.body == "Open Reports, choose Export and pick CSV."
    assert article.versions.count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_edits_get_unique_version_numbers():
    article = make_article()
    barrier = threading.Barrier(3)
    errors = []

    def edit(number: int) -> None:
        try:
            barrier.wait()
            update_article(
                article_id=article.pk,
                data=_input(article, body=f"Edit {number}"),
                edited_by=article.owner,
            )
        except Exception as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=edit, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    numbers = sorted(
        ArticleVersion.objects.filter(article=article).values_list("number", flat=True)
    )
    assert numbers == [1, 2, 3, 4]


def test_edit_page_creates_article(staff_client, staff_user):
    response = staff_client.post(
        reverse("portal:article_create"),
        {
            "title": "Reset a password",
            "summary": "",
            "body": "Use the sign-in page.",
            "audience": "public",
            "owner": staff_user.pk,
            "review_interval_days": 90,
            "is_published": "on",
        },
    )

    article = Article.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("portal:article", args=[article.slug])
    assert article.slug == "reset-a-password"
    assert article.versions.get().edited_by == staff_user


@pytest.mark.parametrize("days", [3651, 3000000, 99999999999])
def test_edit_page_rejects_long_interval(staff_client, staff_user, days):
    article = make_article(owner=staff_user)

    response = staff_client.post(
        reverse("portal:article_edit", args=[article.slug]),
        {
            "title": article.title,
            "summary": "",
            "body": article.body,
            "audience": article.audience,
            "owner": staff_user.pk,
            "review_interval_days": days,
        },
    )

    assert response.status_code == 200
    assert response.context["form"].errors["review_interval_days"] == [
        f"The review interval {days} is too long; use at most 3650 days (ten years)."
    ]
    article.refresh_from_db()
    assert article.review_interval_days == 180


def test_update_rejects_long_interval():
    article = make_article()

    with pytest.raises(DomainError) as error:
        update_article(
            article_id=article.pk,
            data=_input(article, review_interval_days=3000000),
            edited_by=article.owner,
            note="",
        )

    assert error.value.message == (
        "The review interval 3000000 is too long; use at most 3650 days (ten years)."
    )
    assert error.value.field == "review_interval_days"


def test_update_accepts_ten_year_interval():
    article = make_article()

    article = update_article(
        article_id=article.pk,
        data=_input(article, review_interval_days=3650),
        edited_by=article.owner,
        note="",
    )

    assert article.review_due_on == timezone.localdate() + timedelta(days=3650)


def test_edit_pages_refuse_members(member_client):
    article = make_article()

    urls = [
        reverse("portal:article_create"),
        reverse("portal:article_edit", args=[article.slug]),
        reverse("portal:article_versions", args=[article.slug]),
        reverse("portal:article_version_diff", args=[article.slug, 1]),
        reverse("portal:overdue_reviews"),
    ]
    for url in urls:
        assert member_client.get(url).status_code == 403
    response = member_client.post(
        reverse("portal:article_edit", args=[article.slug]),
        {
            "title": "Hacked",
            "body": "x",
            "audience": "public",
            "review_interval_days": 1,
        },
    )
    assert response.status_code == 403
    article.refresh_from_db()
    assert article.title == "Export a report"


def test_version_diff_shows_changes(staff_client):
    article = make_article(body="First line.\nSecond line.")
    update_article(
        article_id=article.pk,
        data=_input(article, body="First line.\nChanged line."),
        edited_by=article.owner,
    )

    response = staff_client.get(
        reverse("portal:article_version_diff", args=[article.slug, 2])
    )

    assert response.status_code == 200
    assert "<del>-Second line.</del>" in response.text
    assert "<ins>+Changed line.</ins>" in response.text


def test_version_diff_missing_version_404(staff_client):
    article = make_article()

    response = staff_client.get(
        reverse("portal:article_version_diff", args=[article.slug, 9])
    )

    assert response.status_code == 404


def _make_overdue(owner, title: str, due_on: date) -> Article:
    article = make_article(title=title, owner=owner)
    Article.objects.filter(pk=article.pk).update(review_due_on=due_on)
    return article


def test_overdue_page_lists_own_overdue_only(staff_client, staff_user):
    today = timezone.localdate()
    _make_overdue(staff_user, "Mine overdue", today - timedelta(days=3))
    _make_overdue(staff_user, "Mine due today", today)
    _make_overdue(factories.StaffFactory(), "Someone else's", today - timedelta(days=3))

    response = staff_client.get(reverse("portal:overdue_reviews"))

    titles = [article.title for article in response.context["page_obj"]]
    assert titles == ["Mine overdue"]
    assert response.context["freshness"].fresh == 1
    assert response.context["freshness"].total == 3


def test_mark_reviewed_moves_due_date(staff_client, staff_user):
    today = timezone.localdate()
    article = _make_overdue(staff_user, "Mine overdue", today - timedelta(days=3))

    response = staff_client.post(
        reverse("portal:article_mark_reviewed", args=[article.slug]),
        {"next": "overdue"},
    )

    assert response.status_code == 302
    article.refresh_from_db()
    assert article.reviewed_on == today
    assert article.review_due_on == today + timedelta(days=180)
    due = article.review_due_on
    [message] = [str(m) for m in get_messages(response.wsgi_request)]
    assert message == (
        f"Marked reviewed; the next review is due on {due.day} {due:%B} {due.year}."
    )


def test_overdue_page_dates_use_day_month_year(staff_client, staff_user):
    _make_overdue(staff_user, "Mine overdue", date(2026, 3, 4))

    response = staff_client.get(reverse("portal:overdue_reviews"))

    assert "4 March 2026" in response.text
    assert "2026-03-04</time>" not in response.text
    assert "March 4, 2026" not in response.text


def test_content_freshness_no_data_without_articles():
    freshness = get_content_freshness()

    assert freshness.total == 0
    assert freshness.share is None


def test_content_freshness_share():
    today = date(2026, 6, 1)
    owner = factories.StaffFactory()
    article = make_article(owner=owner)
    make_article(title="Second", owner=owner)
    mark_article_reviewed(article_id=article.pk, reviewed_by=owner, today=today)
    make_article(title="Unpublished", owner=owner, is_published=False)

    freshness = get_content_freshness(today=today + timedelta(days=181))

    assert (freshness.fresh, freshness.total) == (1, 2)
    assert freshness.share == 0.5


def test_reminder_task_emails_each_owner_once_a_day():
    today = timezone.localdate()
    owner = factories.StaffFactory()
    _make_overdue(owner, "Overdue one", today - timedelta(days=1))
    _make_overdue(owner, "Overdue two", today - timedelta(days=2))
    _make_overdue(factories.StaffFactory(), "Other owner", today - timedelta(days=1))

    first = send_overdue_review_reminders_task()
    again = send_overdue_review_reminders_task()

    assert first == 2
    assert again == 0
    assert ArticleReviewReminder.objects.get(owner=owner).article_count == 2


@pytest.mark.django_db(transaction=True)
def test_reminder_email_lists_overdue_articles():
    today = timezone.localdate()
    owner = factories.StaffFactory()
    _make_overdue(owner, "Overdue one", today - timedelta(days=1))

    send_overdue_review_reminders_task()

    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [owner.email]
    assert "Overdue one" in mail.outbox[0].body


def _count_queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_overdue_page_query_count_fixed(staff_client, staff_user):
    overdue_on = timezone.localdate() - timedelta(days=1)
    url = reverse("portal:overdue_reviews")
    for number in range(2):
        _make_overdue(staff_user, f"Overdue {number}", overdue_on)
    few = _count_queries(staff_client, url)

    for number in range(2, 12):
        _make_overdue(staff_user, f"Overdue {number}", overdue_on)
    many = _count_queries(staff_client, url)

    assert few == many


def test_versions_page_query_count_fixed(staff_client):
    article = make_article()
    url = reverse("portal:article_versions", args=[article.slug])
    few = _count_queries(staff_client, url)

    for number in range(10):
        update_article(
            article_id=article.pk,
            data=_input(article, body=f"Edit {number}"),
            edited_by=factories.StaffFactory(),
        )
    many = _count_queries(staff_client, url)

    assert few == many
