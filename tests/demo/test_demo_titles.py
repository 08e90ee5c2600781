"""Variety of the demo topic titles, and what the case suggestions show."""

from collections import Counter
from datetime import UTC, datetime

import pytest

from apps.community.models import Topic
from apps.membership.models import Member
from apps.portal.models import Article
from apps.portal.selectors.suggestions import list_case_suggestions
from rm6.demo import services
from rm6.demo.simulation import Simulation

SMALL = {"accounts": 3, "members": 20, "days": 30}
FIXED_NOW = datetime(2026, 12, 28, 10, tzinfo=UTC)
MEMBER_EMAIL = "member@demo.rm6.test"
# At most this share of demo questions may repeat the title of an earlier one.
MAX_REPEATED_TITLE_SHARE = 0.01


@pytest.fixture
def seeded(db):
    return services.seed_demo_data(**SMALL, seed=2026, now=FIXED_NOW)


def test_simulation_question_titles_rarely_repeat():
    data = Simulation(
        accounts=50,
        members=500,
        days=365,
        seed=2026,
        now=FIXED_NOW,
        demo_sign_in_domain=services.DEMO_EMAIL_DOMAIN,
        id_prefix=services.DEMO_ID_PREFIX,
    ).run()
    titles = Counter(topic.title for topic in data.topics if topic.kind == "question")
    questions = sum(titles.values())
    repeats = questions - len(titles)

    assert questions > 1000
    assert repeats <= MAX_REPEATED_TITLE_SHARE * questions, titles.most_common(5)


def test_seed_demo_question_titles_rarely_repeat(seeded):
    titles = Counter(
        Topic.objects.filter(
            kind=Topic.Kind.QUESTION, space__slug__startswith="demo-"
        ).values_list("title", flat=True)
    )
    questions = sum(titles.values())

    assert questions > 0
    assert questions - len(titles) <= MAX_REPEATED_TITLE_SHARE * questions


def test_seed_demo_article_title_suggests_article(seeded):
    member = Member.objects.get(user__email=MEMBER_EMAIL)
    articles = Article.objects.filter(slug__startswith=services.DEMO_ID_PREFIX)

    assert articles.exists()
    for article in articles:
        answers = list_case_suggestions(member=member, text=article.title)
        top_keys = [answer.key for answer in answers[:3]]
        assert ("article", article.pk) in top_keys, article.title
