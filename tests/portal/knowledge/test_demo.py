"""The demo data set's knowledge base articles."""

import pytest

from apps.portal.models import Article
from rm6.demo.knowledge import DEMO_ARTICLES
from rm6.demo.services import delete_demo_data, seed_demo_data

pytestmark = pytest.mark.django_db


def test_demo_seed_creates_searchable_articles():
    seed_demo_data(accounts=3, members=20, days=30)

    articles = Article.objects.filter(slug__startswith="demo-")
    assert articles.count() == len(DEMO_ARTICLES)
    assert articles.filter(is_published=True).count() == len(DEMO_ARTICLES)
    assert articles.filter(search_vector__isnull=True).count() == 0
    assert articles.filter(owner__is_staff=True).count() == len(DEMO_ARTICLES)


def test_demo_delete_removes_articles():
    seed_demo_data(accounts=3, members=20, days=30)

    delete_demo_data()

    assert Article.objects.filter(slug__startswith="demo-").count() == 0
