"""Suggested answers for a support case, while the member writes it.

Suggestions mix published knowledge base articles and solved community
questions (a question topic with an accepted reply). Both must be visible to
the member: articles through `filter_visible_articles`, topics through the
community's own `filter_visible_topics`, so private spaces, hidden topics and
members-only articles follow the same rules as everywhere else.

Every word typed must match, and the last word matches as a prefix
(`word:*`), because the member is usually still typing it. When the words
together find nothing, any one of them may match instead. Each kind costs
one query: the matching rows are capped at CANDIDATE_LIMIT before ranking,
so a very common word or a one-letter prefix cannot make the query rank tens
of thousands of rows.

Articles are matched on `suggest_vector` (title and summary), not on the
body, and solved questions on their own `suggest_vector` (title only): a
case subject is short and matches titles best, and the smaller vectors keep
the GIN posting lists of common words short. A word only in a question's
body or replies does not suggest it.

Members often start with the same words, so the ranked answers are cached
in Redis for CACHE_SECONDS, keyed by the normalised words and by
everything that decides what the viewer may see (see `_cache_key`). The
cache holds only which rows ranked where; on a hit the rows are read again
through the visibility filters, so an answer unpublished, hidden or moved
out of the viewer's reach since is dropped at once, and titles are current.
An answer published during those seconds can be missing until the entry
expires. Recording what was shown stays per attempt, in the view.
"""

import hashlib
import logging
import re
from dataclasses import dataclass

from django.contrib.postgres.search import SearchQuery, SearchRank
from django.core.cache import cache
from django.db.models import F, QuerySet
from redis.exceptions import RedisError

from apps.community.models import Topic
from apps.community.selectors.access import (
    filter_visible_topics,
    topic_visibility_key,
)
from apps.membership.models import Member
from apps.portal.models import Article
from apps.portal.selectors.knowledge import filter_visible_articles

SEARCH_CONFIG = "english"
SUGGESTION_LIMIT = 5
MAX_WORDS = 8
MIN_PREFIX_LENGTH = 3
# NOTE: with more matches than this, the best-ranked row can fall outside
# the ranked candidates; it costs relevance only for very common words.
CANDIDATE_LIMIT = 400
WORD_PATTERN = re.compile(r"\w+", re.UNICODE)
logger = logging.getLogger(__name__)
# Long enough for members typing the same prefixes to share results, short
# enough that a newly published answer shows up within the minute.
CACHE_SECONDS = 30
CACHE_PREFIX = "portal:suggestions:v1"


@dataclass
class SuggestedAnswer:
    """An article or a solved question, ranked for the text typed."""

    kind: str  # "article" or "topic"
    content_id: int
    title: str
    summary: str
    rank: float

    @property
    def key(self) -> tuple[str, int]:
        return (self.kind, self.content_id)


def split_words(text: str) -> list[str]:
    """Return the searchable words of the typed text, at most MAX_WORDS of them.

    The last words count most, since they are what the member is typing now.
    """
    return WORD_PATTERN.findall((text or "").lower())[-MAX_WORDS:]


def build_prefix_query(text: str, *, any_word: bool = False) -> SearchQuery | None:
    """Return a tsquery matching the words with the last one as a prefix.

    Words contain only letters, digits and underscores, so quoting them
    keeps every tsquery operator out of the member's text. A last word
    shorter than MIN_PREFIX_LENGTH is dropped when other words come before
    it, since the member has only begun to type it. Typed alone, it is
    matched whole, because a one-letter prefix matches almost everything.
    Return None when no word is left.
    """
    words = split_words(text)
    if len(words) > 1 and len(words[-1]) < MIN_PREFIX_LENGTH:
        words = words[:-1]
    if not words:
        return None
    terms = [f"'{word}'" for word in words]
    if len(words[-1]) >= MIN_PREFIX_LENGTH:
        terms[-1] += ":*"
    operator = " | " if any_word else " & "
    return SearchQuery(operator.join(terms), search_type="raw", config=SEARCH_CONFIG)


def _ranked(
    queryset: QuerySet,
    search_query: SearchQuery,
    fields: list[str],
    vector: str = "search_vector",
):
    # Without an ORDER BY the LIMIT stops the scan at the first matches, where
    # the models' default orderings would sort every match first.
    candidates = (
        queryset.filter(**{vector: search_query})
        .order_by()
        .values("pk")[:CANDIDATE_LIMIT]
    )
    model = queryset.model
    return (
        model.objects.filter(pk__in=candidates)
        .annotate(rank=SearchRank(F(vector), search_query))
        .order_by("-rank", "-pk")
        .values_list("pk", "rank", *fields)
    )


def _search(
    search_query: SearchQuery, *, member: Member, limit: int
) -> list[SuggestedAnswer]:
    articles = filter_visible_articles(Article.objects.all(), member=member)
    # These two conditions are exactly the condition of the partial
    # topic_suggest_idx index, so PostgreSQL reads only solved questions'
    # titles and needs no other index to test them.
    topics = filter_visible_topics(
        Topic.objects.filter(kind=Topic.Kind.QUESTION, accepted_reply__isnull=False),
        member,
    )
    answers = [
        SuggestedAnswer("article", pk, title, summary, rank)
        for pk, rank, title, summary in _ranked(
            articles, search_query, ["title", "summary"], vector="suggest_vector"
        )[:limit]
    ]
    answers += [
        SuggestedAnswer("topic", pk, title, space_name, rank)
        for pk, rank, title, space_name in _ranked(
            topics, search_query, ["title", "space__name"], vector="suggest_vector"
        )[:limit]
    ]
    # Ties go to articles, which the support team keeps current.
    answers.sort(key=lambda answer: (-answer.rank, answer.kind != "article"))
    return answers[:limit]


def _article_audience_key(member: Member | None) -> str:
    # Mirrors filter_visible_articles for a viewer who is not staff.
    if member is None or member.deactivated_at is not None:
        return "public"
    return "members"


def _cache_key(text: str, member: Member | None) -> str:
    words = " ".join(split_words(text))
    visibility = f"{_article_audience_key(member)}|{topic_visibility_key(member)}"
    digest = hashlib.sha256(f"{visibility}|{words}".encode()).hexdigest()
    return f"{CACHE_PREFIX}:{digest}"


def search_case_suggestions(
    text: str, *, member: Member | None, limit: int = SUGGESTION_LIMIT
) -> list[SuggestedAnswer]:
    """Search without the cache: what `list_case_suggestions` runs on a miss."""
    search_query = build_prefix_query(text)
    if search_query is None:
        return []
    answers = _search(search_query, member=member, limit=limit)
    if answers or len(split_words(text)) < 2:
        return answers
    return _search(build_prefix_query(text, any_word=True), member=member, limit=limit)


def _reload_visible(
    ranked: list[tuple[str, int, float]], *, member: Member | None
) -> list[SuggestedAnswer]:
    """Read cached answers again through the visibility filters, in rank order.

    One query per kind present, by primary key, so a hit costs far less than
    the search it replaces.
    """
    article_ids = [pk for kind, pk, _ in ranked if kind == "article"]
    topic_ids = [pk for kind, pk, _ in ranked if kind == "topic"]
    rows: dict[tuple[str, int], tuple[str, str]] = {}
    if article_ids:
        articles = filter_visible_articles(
            Article.objects.filter(pk__in=article_ids), member=member
        )
        for pk, title, summary in articles.order_by().values_list(
            "pk", "title", "summary"
        ):
            rows[("article", pk)] = (title, summary)
    if topic_ids:
        topics = filter_visible_topics(
            Topic.objects.filter(
                pk__in=topic_ids,
                kind=Topic.Kind.QUESTION,
                accepted_reply__isnull=False,
            ),
            member,
        )
        for pk, title, space_name in topics.order_by().values_list(
            "pk", "title", "space__name"
        ):
            rows[("topic", pk)] = (title, space_name)
    return [
        SuggestedAnswer(kind, pk, *rows[(kind, pk)], rank)
        for kind, pk, rank in ranked
        if (kind, pk) in rows
    ]


def list_case_suggestions(
    *, member: Member | None, text: str, limit: int = SUGGESTION_LIMIT
) -> list[SuggestedAnswer]:
    """Return up to `limit` suggested answers for the typed text, best first.

    On a cache miss: one query for the viewer's visibility key, then two
    searches when every word matches somewhere, four when the search falls
    back to any word. On a hit: the key and at most two reads by primary key.
    """
    if not split_words(text):
        return []
    key = f"{_cache_key(text, member)}:{limit}"
    try:
        ranked = cache.get(key)
    except RedisError as error:
        # The cache only saves time: without Redis the search still answers.
        logger.warning("suggestion cache read failed: %s", error)
        return search_case_suggestions(text, member=member, limit=limit)
    if ranked is not None:
        return _reload_visible(ranked, member=member)

    answers = search_case_suggestions(text, member=member, limit=limit)
    ranked = [(answer.kind, answer.content_id, answer.rank) for answer in answers]
    try:
        cache.set(key, ranked, CACHE_SECONDS)
    except RedisError as error:
        logger.warning("suggestion cache write failed: %s", error)
    return answers
