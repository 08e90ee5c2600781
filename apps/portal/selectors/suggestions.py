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
"""

import re
from dataclasses import dataclass

from django.contrib.postgres.search import SearchQuery, SearchRank
from django.db.models import F, QuerySet

from apps.community.models import Topic
from apps.community.selectors.access import filter_visible_topics
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


def _ranked(queryset: QuerySet, search_query: SearchQuery, fields: list[str]):
    # Without an ORDER BY the LIMIT stops the scan at the first matches, where
    # the models' default orderings would sort every match first.
    candidates = (
        queryset.filter(search_vector=search_query)
        .order_by()
        .values("pk")[:CANDIDATE_LIMIT]
    )
    model = queryset.model
    return (
        model.objects.filter(pk__in=candidates)
        .annotate(rank=SearchRank(F("search_vector"), search_query))
        .order_by("-rank", "-pk")
        .values_list("pk", "rank", *fields)
    )


def _search(
    search_query: SearchQuery, *, member: Member, limit: int
) -> list[SuggestedAnswer]:
    articles = filter_visible_articles(Article.objects.all(), member=member)
    topics = filter_visible_topics(
        Topic.objects.filter(kind=Topic.Kind.QUESTION, accepted_reply__isnull=False),
        member,
    )
    answers = [
        SuggestedAnswer("article", pk, title, summary, rank)
        for pk, rank, title, summary in _ranked(
            articles, search_query, ["title", "summary"]
        )[:limit]
    ]
    answers += [
        SuggestedAnswer("topic", pk, title, space_name, rank)
        for pk, rank, title, space_name in _ranked(
            topics, search_query, ["title", "space__name"]
        )[:limit]
    ]
    # Ties go to articles, which the support team keeps current.
    answers.sort(key=lambda answer: (-answer.rank, answer.kind != "article"))
    return answers[:limit]


def list_case_suggestions(
    *, member: Member, text: str, limit: int = SUGGESTION_LIMIT
) -> list[SuggestedAnswer]:
    """Return up to `limit` suggested answers for the typed text, best first.

    Two queries when every word matches somewhere, four when the search
    falls back to any word.
    """
    search_query = build_prefix_query(text)
    if search_query is None:
        return []
    answers = _search(search_query, member=member, limit=limit)
    if answers or len(split_words(text)) < 2:
        return answers
    return _search(build_prefix_query(text, any_word=True), member=member, limit=limit)
