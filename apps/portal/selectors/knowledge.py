"""Reads of the knowledge base that pages, the API and reports share.

Visibility has one rule, `filter_visible_articles`: staff read every
article; everyone else reads published articles only, anonymous visitors
the public ones and signed-in members the public and members-only ones.
"""

import difflib
from dataclasses import dataclass, field
from datetime import date

from django.contrib.postgres.search import SearchHeadline, SearchQuery, SearchRank
from django.db.models import Count, F, Func, Q, QuerySet, Value
from django.db.models.functions import Replace
from django.utils import timezone

from apps.community.search import clean_query, render_highlight
from apps.membership.models import Member
from apps.portal.models import Article, ArticleFeedback, ArticleVersion

SEARCH_CONFIG = "english"
ARTICLES_PER_PAGE = 20
# Pages past this one are out of range whatever the list size; capping the
# number keeps the SQL OFFSET inside a bigint.
MAX_PAGE = 100_000
HIGHLIGHT_START = "\ue000"
HIGHLIGHT_STOP = "\ue001"


def filter_visible_articles(
    queryset: QuerySet[Article], *, member: Member | None, is_staff: bool = False
) -> QuerySet[Article]:
    """Keep the articles the viewer may read (None is an anonymous visitor)."""
    if is_staff:
        return queryset
    queryset = queryset.filter(is_published=True)
    if member is None or member.deactivated_at is not None:
        return queryset.filter(audience=Article.Audience.PUBLIC)
    return queryset.filter(
        audience__in=[Article.Audience.PUBLIC, Article.Audience.MEMBERS]
    )


def list_visible_articles(
    *, member: Member | None, is_staff: bool = False
) -> QuerySet[Article]:
    """Return every article the viewer may read."""
    return filter_visible_articles(
        Article.objects.all(), member=member, is_staff=is_staff
    )


@dataclass
class ArticleHit:
    """One article of a list page, with its highlighted title and snippet."""

    article: Article
    title: str
    snippet: str
    rank: float | None = None


@dataclass
class ArticlePage:
    query: str
    page: int
    hits: list[ArticleHit] = field(default_factory=list)
    has_next: bool = False
    out_of_range: bool = False

    @property
    def has_previous(self) -> bool:
        return self.page > 1


def _strip_markers(expression):
    # ts_headline's output is escaped and its markers turned into <mark> by
    # render_highlight, so the source text must not contain the markers.
    for marker in (HIGHLIGHT_START, HIGHLIGHT_STOP):
        expression = Replace(expression, Value(marker), Value(""))
    return expression


def _strip_markdown(expression):
    # Snippets are plain text: drop the markdown emphasis, heading and code
    # markers ("**Export**" reads "Export"), and underscores only at the edges
    # of words, so that names such as snake_case keep theirs.
    expression = Func(
        expression,
        Value(r"[*#`]+"),
        Value(""),
        Value("g"),
        function="regexp_replace",
    )
    return Func(
        expression,
        Value(r"(^|[^[:alnum:]])_+|_+([^[:alnum:]]|$)"),
        Value(r"\1\2"),
        Value("g"),
        function="regexp_replace",
    )


def search_articles(
    *,
    query: str,
    member: Member | None,
    is_staff: bool = False,
    page: int = 1,
    per_page: int = ARTICLES_PER_PAGE,
    last_page_when_out_of_range: bool = True,
) -> ArticlePage:
    """Return one page of visible articles, best match first, in one query.

    Without a query the page lists articles by title. With one, it uses web
    search syntax and ranks by ts_rank; PostgreSQL computes ts_headline after
    the LIMIT, so snippets cost only the shown rows.

    A page past the last one comes back as the last page, as Paginator's
    get_page does, at the cost of a count and a second search. With
    `last_page_when_out_of_range` False it comes back empty and marked
    `out_of_range`, so that the API can answer 404.
    """
    query = clean_query(query)
    page = min(max(page, 1), MAX_PAGE)
    result = _search_page(
        query=query, member=member, is_staff=is_staff, page=page, per_page=per_page
    )
    if result.hits or page == 1:
        return result
    if not last_page_when_out_of_range:
        result.out_of_range = True
        return result
    matches = _visible_matches(query=query, member=member, is_staff=is_staff).count()
    last_page = max((matches + per_page - 1) // per_page, 1)
    return _search_page(
        query=query, member=member, is_staff=is_staff, page=last_page, per_page=per_page
    )


def _visible_matches(
    *, query: str, member: Member | None, is_staff: bool
) -> QuerySet[Article]:
    articles = list_visible_articles(member=member, is_staff=is_staff)
    if not query:
        return articles
    search_query = SearchQuery(query, search_type="websearch", config=SEARCH_CONFIG)
    return articles.filter(search_vector=search_query)


def _search_page(
    *, query: str, member: Member | None, is_staff: bool, page: int, per_page: int
) -> ArticlePage:
    result = ArticlePage(query=query, page=page)
    articles = list_visible_articles(member=member, is_staff=is_staff).only(
        "id", "slug", "title", "summary", "audience", "is_published", "updated_at"
    )
    offset = (page - 1) * per_page

    if not query:
        rows = list(articles.order_by("title", "id")[offset : offset + per_page + 1])
        result.has_next = len(rows) > per_page
        result.hits = [
            ArticleHit(article=row, title=row.title, snippet=row.summary)
            for row in rows[:per_page]
        ]
        return result

    search_query = SearchQuery(query, search_type="websearch", config=SEARCH_CONFIG)
    rows = list(
        articles.filter(search_vector=search_query)
        .annotate(
            rank=SearchRank(F("search_vector"), search_query),
            title_headline=SearchHeadline(
                _strip_markers(F("title")),
                search_query,
                config=SEARCH_CONFIG,
                start_sel=HIGHLIGHT_START,
                stop_sel=HIGHLIGHT_STOP,
                highlight_all=True,
            ),
            body_headline=SearchHeadline(
                _strip_markdown(_strip_markers(F("body"))),
                search_query,
                config=SEARCH_CONFIG,
                start_sel=HIGHLIGHT_START,
                stop_sel=HIGHLIGHT_STOP,
                max_words=35,
                min_words=15,
            ),
        )
        .order_by("-rank", "title", "id")[offset : offset + per_page + 1]
    )
    result.has_next = len(rows) > per_page
    result.hits = [
        ArticleHit(
            article=row,
            title=render_highlight(row.title_headline),
            snippet=render_highlight(row.body_headline),
            rank=row.rank,
        )
        for row in rows[:per_page]
    ]
    return result


def get_member_feedback(*, article: Article, member: Member | None):
    """Return the member's "was this helpful" answer on the article, or None."""
    if member is None:
        return None
    return ArticleFeedback.objects.filter(article=article, member=member).first()


def list_article_versions(*, article: Article) -> QuerySet[ArticleVersion]:
    """Return the article's versions, newest first, with their editors."""
    return article.versions.select_related("edited_by").order_by("-number")


@dataclass
class DiffLine:
    kind: str  # "added", "removed", "context" or "header"
    text: str


def diff_versions(
    *, older: ArticleVersion | None, newer: ArticleVersion
) -> list[DiffLine]:
    """Return a line diff of title, summary and body between two versions."""

    def text_of(version: ArticleVersion | None) -> list[str]:
        if version is None:
            return []
        return [
            f"Title: {version.title}",
            f"Summary: {version.summary}",
            "",
            *version.body.splitlines(),
        ]

    lines = []
    older_label = f"version {older.number}" if older else "nothing"
    for line in difflib.unified_diff(
        text_of(older),
        text_of(newer),
        fromfile=older_label,
        tofile=f"version {newer.number}",
        lineterm="",
    ):
        if line.startswith(("---", "+++", "@@")):
            lines.append(DiffLine("header", line))
        elif line.startswith("+"):
            lines.append(DiffLine("added", line[1:]))
        elif line.startswith("-"):
            lines.append(DiffLine("removed", line[1:]))
        else:
            lines.append(DiffLine("context", line[1:]))
    return lines


def list_overdue_articles(
    *, owner=None, today: date | None = None
) -> QuerySet[Article]:
    """Return published articles past their review date, most overdue first.

    An article that was never reviewed has no due date and counts as overdue.
    """
    today = today or timezone.localdate()
    articles = Article.objects.filter(is_published=True).filter(
        Q(review_due_on__lt=today) | Q(review_due_on__isnull=True)
    )
    if owner is not None:
        articles = articles.filter(owner=owner)
    return articles.select_related("owner").order_by(
        F("review_due_on").asc(nulls_first=True), "id"
    )


def list_overdue_articles_by_owner(*, owner, today: date | None = None) -> list:
    """Return one owner's overdue articles as a list, for the reminder email."""
    return list(list_overdue_articles(owner=owner, today=today))


def list_owners_with_overdue_reviews(*, today: date | None = None) -> list[int]:
    """Return the ids of the active owners who have at least one overdue review."""
    return list(
        list_overdue_articles(today=today)
        .filter(owner__isnull=False, owner__is_active=True)
        .order_by()
        .values_list("owner_id", flat=True)
        .distinct()
    )


@dataclass(frozen=True)
class ContentFreshness:
    """Content freshness: published articles reviewed within their interval."""

    fresh: int
    total: int

    @property
    def share(self) -> float | None:
        """The fresh share from 0 to 1, or None ("no data") with no articles."""
        return self.fresh / self.total if self.total else None


def get_content_freshness(*, today: date | None = None) -> ContentFreshness:
    """Return content freshness today, in one query.

    An article is fresh while today is on or before its review due date, that
    is, when its last review lies within its review interval.
    """
    today = today or timezone.localdate()
    counts = Article.objects.filter(is_published=True).aggregate(
        total=Count("id"), fresh=Count("id", filter=Q(review_due_on__gte=today))
    )
    return ContentFreshness(fresh=counts["fresh"], total=counts["total"])
