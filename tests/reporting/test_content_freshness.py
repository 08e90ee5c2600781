from datetime import date, timedelta

import pytest

from apps.reporting.selectors.portal import get_content_freshness
from tests.reporting.factories import ArticleFactory

TODAY = date(2025, 6, 30)


def reviewed(days_ago, interval=180, **kwargs):
    return ArticleFactory(
        reviewed_on=TODAY - timedelta(days=days_ago),
        review_interval_days=interval,
        **kwargs,
    )


def test_freshness_due_today_is_fresh(db):
    reviewed(180)

    freshness = get_content_freshness(today=TODAY)

    assert freshness.published == 1
    assert freshness.fresh == 1


def test_freshness_due_yesterday_is_overdue(db):
    reviewed(181)

    freshness = get_content_freshness(today=TODAY)

    assert freshness.fresh == 0
    assert freshness.overdue == 1


def test_freshness_uses_each_article_interval(db):
    reviewed(30, interval=30)
    reviewed(31, interval=30)
    reviewed(364, interval=365)

    freshness = get_content_freshness(today=TODAY)

    assert freshness.published == 3
    assert freshness.fresh == 2


def test_freshness_ignores_stored_due_date(db):
    reviewed(10, review_due_on=TODAY - timedelta(days=1))

    assert get_content_freshness(today=TODAY).fresh == 1


def test_freshness_never_reviewed_is_overdue(db):
    ArticleFactory(reviewed_on=None)
    reviewed(1)

    freshness = get_content_freshness(today=TODAY)

    assert freshness.never_reviewed == 1
    assert freshness.overdue == 1
    assert freshness.rate.value == pytest.approx(0.5)


def test_freshness_counts_published_only(db):
    reviewed(400, is_published=False)
    reviewed(1)

    freshness = get_content_freshness(today=TODAY)

    assert freshness.published == 1
    assert freshness.rate.percent == 100.0


def test_freshness_no_articles_is_no_data(db):
    freshness = get_content_freshness(today=TODAY)

    assert freshness.published == 0
    assert freshness.rate.value is None
