"""Full-text search over topics and replies, and "similar questions".

PostgreSQL triggers keep `search_vector` on topics (title weight A, body
weight B) and replies (body) with the english configuration; queries here use
the same configuration. A search runs a fixed number of queries whatever the
page size: one ranks the matching visible posts and takes one page, and one per model
builds the highlighted snippets of that page only, because ts_headline is
slow and needs to run on the shown rows only. The reply query is skipped
when the page holds no reply, so a search runs two or three queries.
"""

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.contrib.postgres.search import SearchHeadline, SearchQuery, SearchRank
from django.core.cache import cache
from django.db.models import F, IntegerField, Value
from django.db.models.functions import Cast, Replace
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from apps.community.models import Reply, SearchLog, Topic
from apps.community.selectors.access import (
    filter_visible_replies,
    filter_visible_topics,
)
from apps.membership.models import Member

logger = logging.getLogger(__name__)

SEARCH_CONFIG = "english"
MAX_QUERY_LENGTH = 200
RESULTS_PER_PAGE = 20
SIMILAR_QUESTIONS_LIMIT = 5
SIMILAR_QUESTIONS_MAX_WORDS = 12
NO_RESULT_LOG_INTERVAL = timedelta(minutes=1)

# Private-use characters mark the highlighted words in ts_headline output.
# Before ts_headline runs, these characters are removed from the text and
# "<", ">" and "&" are swapped for other private-use characters, because
# ts_headline's parser drops anything that looks like an HTML tag. So every
# marker in the output comes from ts_headline, the output is escaped as plain
# text, and only then are the markers turned into <mark> tags and the swapped
# characters back into their escaped forms.
HIGHLIGHT_START = "\ue000"
HIGHLIGHT_STOP = "\ue001"
SWAPPED_CHARACTERS = {"<": "\ue002", ">": "\ue003", "&": "\ue004"}
ESCAPED_FORMS = {
    HIGHLIGHT_START: "<mark>",
    HIGHLIGHT_STOP: "</mark>",
    "\ue002": "&lt;",
    "\ue003": "&gt;",
    "\ue004": "&amp;",
}


@dataclass(frozen=True)
class SearchFilters:
    """The filters of a search; None or empty leaves a filter off."""

    space: str = ""
    kind: str = ""
    is_solved: bool | None = None
    tag: str = ""
    date_from: date | None = None
    date_to: date | None = None

    def as_log_dict(self) -> dict:
        values = {
            "space": self.space,
            "kind": self.kind,
            "is_solved": self.is_solved,
            "tag": self.tag,
            "date_from": self.date_from.isoformat() if self.date_from else None,
            "date_to": self.date_to.isoformat() if self.date_to else None,
        }
        return {
            name: value for name, value in values.items() if value not in ("", None)
        }


@dataclass
class SearchResult:
    """One matching topic or reply, with its highlighted title and snippet."""

    topic_id: int
    reply_id: int | None
    rank: float
    created_at: datetime
    title: str = ""
    snippet: str = ""
    space_name: str = ""
    topic_kind: str = ""

    @property
    def url(self) -> str:
        url = reverse("community:topic", kwargs={"pk": self.topic_id})
        return f"{url}#reply-{self.reply_id}" if self.reply_id else url


@dataclass
class SearchPage:
    query: str
    page: int
    results: list[SearchResult] = field(default_factory=list)
    has_next: bool = False

    @property
    def has_previous(self) -> bool:
        return self.page > 1


def clean_query(query: str) -> str:
    """Return the query with surrounding and repeated whitespace removed."""
    return " ".join((query or "").split())[:MAX_QUERY_LENGTH]


def render_highlight(text: str) -> SafeString:
    """Escape ts_headline output and turn its markers into HTML."""
    escaped = escape(text)
    for marker, html in ESCAPED_FORMS.items():
        escaped = escaped.replace(marker, html)
    # Safe because every character but the markers was escaped above.
    return mark_safe(escaped)


def _headline(field_name: str, query: SearchQuery, **options) -> SearchHeadline:
    text = F(field_name)
    for marker in ESCAPED_FORMS:
        text = Replace(text, Value(marker), Value(""))
    for character, marker in SWAPPED_CHARACTERS.items():
        text = Replace(text, Value(character), Value(marker))
    return SearchHeadline(
        text,
        query,
        config=SEARCH_CONFIG,
        start_sel=HIGHLIGHT_START,
        stop_sel=HIGHLIGHT_STOP,
        **options,
    )


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def _filter_topics(topics, filters: SearchFilters, *, prefix: str = ""):
    if filters.space:
        topics = topics.filter(**{f"{prefix}space__slug": filters.space})
    if filters.kind:
        topics = topics.filter(**{f"{prefix}kind": filters.kind})
    if filters.is_solved is not None:
        topics = topics.filter(
            **{
                f"{prefix}kind": Topic.Kind.QUESTION,
                f"{prefix}accepted_reply__isnull": not filters.is_solved,
            }
        )
    if filters.tag:
        topics = topics.filter(**{f"{prefix}tags__slug": filters.tag})
    return topics


def _filter_dates(posts, filters: SearchFilters):
    if filters.date_from:
        posts = posts.filter(created_at__gte=_day_start(filters.date_from))
    if filters.date_to:
        next_day = filters.date_to + timedelta(days=1)
        posts = posts.filter(created_at__lt=_day_start(next_day))
    return posts


def search_posts(
    *,
    query: str,
    member: Member | None,
    is_staff: bool = False,
    filters: SearchFilters | None = None,
    page: int = 1,
    per_page: int = RESULTS_PER_PAGE,
) -> SearchPage:
    """Return one page of the visible topics and replies matching `query`.

    The query uses web search syntax ("quoted phrases", or, -excluded).
    Results are ordered by ts_rank_cd, best first, then newest first.
    """
    filters = filters or SearchFilters()
    query = clean_query(query)
    page = max(page, 1)
    result = SearchPage(query=query, page=page)
    if not query:
        return result

    search_query = SearchQuery(query, search_type="websearch", config=SEARCH_CONFIG)
    topics = filter_visible_topics(
        Topic.objects.filter(search_vector=search_query), member, is_staff
    )
    topics = _filter_dates(_filter_topics(topics, filters), filters)
    replies = filter_visible_replies(
        Reply.objects.filter(search_vector=search_query), member, is_staff
    )
    replies = _filter_dates(_filter_topics(replies, filters, prefix="topic__"), filters)

    rank = SearchRank(F("search_vector"), search_query, cover_density=True)
    # Both sides annotate the same names in the same order, so the UNION's
    # columns line up.
    topic_rows = topics.annotate(
        hit_topic=F("id"),
        hit_reply=Cast(Value(None), output_field=IntegerField()),
        hit_rank=rank,
        hit_created_at=F("created_at"),
    ).values_list("hit_topic", "hit_reply", "hit_rank", "hit_created_at")
    reply_rows = replies.annotate(
        hit_topic=F("topic_id"),
        hit_reply=F("id"),
        hit_rank=rank,
        hit_created_at=F("created_at"),
    ).values_list("hit_topic", "hit_reply", "hit_rank", "hit_created_at")
    offset = (page - 1) * per_page
    rows = list(
        topic_rows.union(reply_rows, all=True).order_by("-hit_rank", "-hit_created_at")[
            offset : offset + per_page + 1
        ]
    )
    result.has_next = len(rows) > per_page
    result.results = [
        SearchResult(topic_id=topic, reply_id=reply, rank=rank, created_at=created_at)
        for topic, reply, rank, created_at in rows[:per_page]
    ]
    _add_snippets(result.results, search_query)
    return result


def _add_snippets(results: list[SearchResult], search_query: SearchQuery) -> None:
    if not results:
        return
    topic_ids = {result.topic_id for result in results}
    reply_ids = {result.reply_id for result in results if result.reply_id}

    topics = Topic.objects.filter(pk__in=topic_ids).annotate(
        title_headline=_headline("title", search_query, highlight_all=True),
        body_headline=_headline("body", search_query, max_words=35, min_words=15),
        space_label=F("space__name"),
    )
    topic_rows = {
        row["pk"]: row
        for row in topics.values(
            "pk", "title_headline", "body_headline", "space_label", "kind"
        )
    }
    reply_headlines = {}
    if reply_ids:
        replies = Reply.objects.filter(pk__in=reply_ids).annotate(
            body_headline=_headline("body", search_query, max_words=35, min_words=15)
        )
        reply_headlines = dict(replies.values_list("pk", "body_headline"))

    for result in results:
        topic_row = topic_rows[result.topic_id]
        result.title = render_highlight(topic_row["title_headline"])
        result.space_name = topic_row["space_label"]
        result.topic_kind = topic_row["kind"]
        if result.reply_id:
            snippet = reply_headlines[result.reply_id]
        else:
            snippet = topic_row["body_headline"]
        result.snippet = render_highlight(snippet)


def log_search_without_results(
    *, query: str, member: Member | None, filters: SearchFilters
) -> bool:
    """Store a search that found nothing, at most once a minute per member and query.

    Return whether a row was written. The gate is a cache key added
    atomically, so concurrent requests write one row.
    """
    query = clean_query(query)
    if not query:
        return False
    member_key = member.pk if member is not None else "anonymous"
    # A digest of the query keeps spaces and symbols out of the cache key.
    digest = hashlib.sha256(query.lower().encode()).hexdigest()[:32]
    key = f"community:search-log:{member_key}:{digest}"
    interval = int(NO_RESULT_LOG_INTERVAL.total_seconds())
    if not cache.add(key, 1, timeout=interval):
        return False

    SearchLog.objects.create(
        query=query, member=member, filters=filters.as_log_dict(), result_count=0
    )
    return True


def list_similar_questions(
    *, title: str, member: Member | None, is_staff: bool = False
) -> list[Topic]:
    """Return the visible questions closest to a title being written.

    Any word of the title may match, so a half-written title finds
    questions too. The best SIMILAR_QUESTIONS_LIMIT come back, best first.
    """
    words = clean_query(title).split()[:SIMILAR_QUESTIONS_MAX_WORDS]
    if not words:
        return []
    search_query = None
    for word in words:
        word_query = SearchQuery(word, search_type="plain", config=SEARCH_CONFIG)
        search_query = word_query if search_query is None else search_query | word_query

    questions = Topic.objects.filter(
        kind=Topic.Kind.QUESTION, search_vector=search_query
    ).select_related("space")
    questions = filter_visible_topics(questions, member, is_staff)
    rank = SearchRank(F("search_vector"), search_query, cover_density=True)
    return list(
        questions.annotate(rank=rank).order_by("-rank", "-created_at")[
            :SIMILAR_QUESTIONS_LIMIT
        ]
    )
