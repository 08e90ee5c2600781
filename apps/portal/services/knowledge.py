"""Every write to the knowledge base: articles, versions, reviews and feedback.

Each text change saves a numbered ArticleVersion and refreshes the article's
full-text vector (title weight A, summary B, body C, english configuration),
so search and suggestions never read a stale vector. Review dates follow one
rule: `review_due_on` is `reviewed_on` plus `review_interval_days`.
"""

import logging
from dataclasses import dataclass
from datetime import date, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.postgres.search import SearchVector
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import F, Max
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify

from apps.lifecycle.services import record_activity
from apps.membership.models import Member
from apps.portal.models import (
    Article,
    ArticleFeedback,
    ArticleReviewReminder,
    ArticleVersion,
    ContentGap,
)
from apps.portal.selectors.knowledge import list_overdue_articles_by_owner
from rm6.errors import DomainError

logger = logging.getLogger(__name__)

SEARCH_CONFIG = "english"
TEXT_FIELDS = ("title", "summary", "body")
MAX_SLUG_ATTEMPTS = 20
# Ten years: a longer interval pushes the due date past what a date can hold.
MAX_REVIEW_INTERVAL_DAYS = 3650


@dataclass
class ArticleInput:
    """The editable fields of an article, as an edit form or the admin sends them."""

    title: str
    body: str
    summary: str = ""
    audience: str = Article.Audience.MEMBERS
    owner_id: int | None = None
    review_interval_days: int = 180
    is_published: bool = False


def build_search_vector() -> SearchVector:
    """Return the expression that `search_vector` is computed from."""
    return (
        SearchVector("title", weight="A", config=SEARCH_CONFIG)
        + SearchVector("summary", weight="B", config=SEARCH_CONFIG)
        + SearchVector("body", weight="C", config=SEARCH_CONFIG)
    )


def _validate(data: ArticleInput) -> None:
    if not data.title.strip():
        raise DomainError(
            "The title is empty; give the article a title.", field="title"
        )
    if not data.body.strip():
        raise DomainError("The body is empty; write the article's text.", field="body")
    if data.audience not in Article.Audience.values:
        raise DomainError(
            f"Audience {data.audience!r} is not valid; use one of "
            f"{', '.join(Article.Audience.values)}.",
            field="audience",
        )
    if data.review_interval_days < 1:
        raise DomainError(
            f"The review interval {data.review_interval_days} is not valid; use a "
            "number of days of 1 or more.",
            field="review_interval_days",
        )
    if data.review_interval_days > MAX_REVIEW_INTERVAL_DAYS:
        raise DomainError(
            f"The review interval {data.review_interval_days} is too long; use at "
            f"most {MAX_REVIEW_INTERVAL_DAYS} days (ten years).",
            field="review_interval_days",
        )
    if data.owner_id is not None:
        is_staff = (
            get_user_model()
            .objects.filter(pk=data.owner_id, is_staff=True, is_active=True)
            .exists()
        )
        if not is_staff:
            raise DomainError(
                f"Owner {data.owner_id} is not an active staff user; choose a staff "
                "user to keep the article correct.",
                field="owner",
            )


def _unique_slug(title: str) -> str:
    base = slugify(title)[:100] or "article"
    slug = base
    for number in range(2, MAX_SLUG_ATTEMPTS + 2):
        if not Article.objects.filter(slug=slug).exists():
            return slug
        slug = f"{base}-{number}"
    raise DomainError(
        f"Too many articles are titled {title!r}; choose a more specific title.",
        field="title",
    )


def _save_version(*, article: Article, edited_by, note: str) -> ArticleVersion:
    # The caller holds the article's row lock, so no other edit can read the
    # same maximum; the unique (article, number) constraint backs this up.
    latest = article.versions.aggregate(latest=Max("number"))["latest"] or 0
    return ArticleVersion.objects.create(
        article=article,
        number=latest + 1,
        title=article.title,
        summary=article.summary,
        body=article.body,
        edited_by=edited_by,
        note=note[:200],
    )


def _refresh_search_vector(article: Article) -> None:
    Article.objects.filter(pk=article.pk).update(search_vector=build_search_vector())


def _close_gaps_of(article: Article) -> None:
    if article.is_published:
        ContentGap.objects.filter(article=article).exclude(
            status=ContentGap.Status.PUBLISHED
        ).update(status=ContentGap.Status.PUBLISHED, updated_at=timezone.now())


@transaction.atomic
def create_article(
    *, data: ArticleInput, edited_by, note: str = "Created", slug: str = ""
) -> Article:
    """Create an article with version 1, a review date and a search vector.

    Writing the article counts as its first review, so its review falls due
    one interval after today.
    """
    _validate(data)
    today = timezone.localdate()

    article = Article(
        title=data.title.strip(),
        slug=slug or _unique_slug(data.title),
        summary=data.summary.strip(),
        body=data.body,
        audience=data.audience,
        owner_id=data.owner_id,
        review_interval_days=data.review_interval_days,
        reviewed_on=today,
        review_due_on=today + timedelta(days=data.review_interval_days),
        is_published=data.is_published,
        published_at=timezone.now() if data.is_published else None,
    )
    try:
        with transaction.atomic():
            article.save()
    except IntegrityError as error:
        raise DomainError(
            f"The slug {article.slug!r} is already taken; choose another.",
            field="slug",
        ) from error

    _save_version(article=article, edited_by=edited_by, note=note)
    _refresh_search_vector(article)
    return article


@transaction.atomic
def update_article(
    *, article_id: int, data: ArticleInput, edited_by, note: str = ""
) -> Article:
    """Apply an edit and save a new version when the text changed.

    The article's row is locked for the edit, so two editors saving at once
    get consecutive version numbers. Publishing an article that a content
    gap was drafted for marks that gap published.
    """
    _validate(data)
    article = Article.objects.select_for_update().get(pk=article_id)
    was_published = article.is_published
    old_text = tuple(getattr(article, name) for name in TEXT_FIELDS)

    article.title = data.title.strip()
    article.summary = data.summary.strip()
    article.body = data.body
    article.audience = data.audience
    article.owner_id = data.owner_id
    if data.review_interval_days != article.review_interval_days:
        article.review_interval_days = data.review_interval_days
        reviewed_on = article.reviewed_on or article.created_at.date()
        article.review_due_on = reviewed_on + timedelta(days=data.review_interval_days)
    article.is_published = data.is_published
    if data.is_published and not was_published:
        article.published_at = timezone.now()
    article.save()

    text_changed = old_text != tuple(getattr(article, name) for name in TEXT_FIELDS)
    if text_changed:
        _save_version(article=article, edited_by=edited_by, note=note or "Edited")
    _refresh_search_vector(article)
    _close_gaps_of(article)
    return article


@transaction.atomic
def mark_article_reviewed(
    *, article_id: int, reviewed_by, today: date | None = None
) -> Article:
    """Record that the article was checked today and move its next review on."""
    today = today or timezone.localdate()
    article = Article.objects.select_for_update().get(pk=article_id)
    article.reviewed_on = today
    article.review_due_on = today + timedelta(days=article.review_interval_days)
    article.save(update_fields=["reviewed_on", "review_due_on", "updated_at"])
    logger.info(
        "article reviewed", extra={"article_id": article.pk, "user_id": reviewed_by.pk}
    )
    return article


@transaction.atomic
def record_article_view(*, article: Article, member: Member | None) -> None:
    """Count a view, and record `portal.article_viewed` for a signed-in member.

    Onboarding steps of the "visit content" kind complete from this event,
    whose subject is the article.
    """
    Article.objects.filter(pk=article.pk).update(view_count=F("view_count") + 1)
    if member is not None:
        record_activity(member=member, kind="portal.article_viewed", subject=article)


@transaction.atomic
def give_article_feedback(
    *, article: Article, member: Member, helpful: bool, comment: str = ""
) -> ArticleFeedback:
    """Store or change a member's "was this helpful" answer.

    The member's feedback row is locked while the counters move, so the
    article's helpful and not-helpful counts always equal the stored answers,
    even when the same member answers twice at once.
    """
    comment = (comment or "").strip()
    if len(comment) > 1000:
        raise DomainError(
            f"The comment has {len(comment)} characters; shorten it to 1000 or fewer.",
            field="comment",
        )

    feedback, created = ArticleFeedback.objects.select_for_update().get_or_create(
        article=article,
        member=member,
        defaults={"helpful": helpful, "comment": comment},
    )
    counters = {}
    if created:
        counters = _count_change(added=helpful)
    elif feedback.helpful != helpful:
        counters = _count_change(added=helpful, removed=feedback.helpful)
    if not created:
        feedback.helpful = helpful
        feedback.comment = comment
        feedback.save(update_fields=["helpful", "comment", "updated_at"])
    if counters:
        Article.objects.filter(pk=article.pk).update(**counters)

    record_activity(
        member=member,
        kind="portal.article_feedback",
        subject=article,
        properties={"helpful": helpful, "changed": not created},
    )
    return feedback


def _count_change(*, added: bool, removed: bool | None = None) -> dict:
    def field(helpful: bool) -> str:
        return "helpful_count" if helpful else "not_helpful_count"

    changes = {field(added): F(field(added)) + 1}
    if removed is not None:
        changes[field(removed)] = F(field(removed)) - 1
    return changes


@transaction.atomic
def draft_article_from_gap(*, gap_id: int, drafted_by) -> Article:
    """Create an unpublished article for a content gap and link the two.

    The gap moves to in progress; publishing the article later marks it
    published. A gap that already has an article returns that article.
    """
    gap = ContentGap.objects.select_for_update().get(pk=gap_id)
    if gap.article_id is not None:
        return gap.article

    samples = "\n".join(f"- {query}" for query in gap.sample_queries[:10])
    body = (
        "Draft written for a content gap. Members searched for:\n\n"
        f"{samples or '- ' + gap.title}\n\nReplace this text with the answer."
    )
    article = create_article(
        data=ArticleInput(
            title=gap.title[:200],
            body=body,
            owner_id=drafted_by.pk,
            is_published=False,
        ),
        edited_by=drafted_by,
        note="Drafted from a content gap",
    )
    gap.article = article
    gap.status = ContentGap.Status.IN_PROGRESS
    if gap.owner_id is None:
        gap.owner = drafted_by
    gap.save(update_fields=["article", "status", "owner", "updated_at"])
    return article


@transaction.atomic
def send_overdue_review_reminder(*, owner_id: int, today: date | None = None) -> bool:
    """Email one owner the list of their overdue reviews, at most once a day.

    Return whether a reminder was sent. The reminder row is unique per owner
    and day, so a rerun of the beat task the same day sends nothing.
    """
    today = today or timezone.localdate()
    owner = get_user_model().objects.filter(pk=owner_id, is_active=True).first()
    if owner is None or not owner.email:
        return False
    articles = list_overdue_articles_by_owner(owner=owner, today=today)
    if not articles:
        return False

    _reminder, created = ArticleReviewReminder.objects.get_or_create(
        owner=owner, sent_on=today, defaults={"article_count": len(articles)}
    )
    if not created:
        return False

    lines = [
        f"- {article.title} (due {article.review_due_on:%Y-%m-%d})"
        for article in articles
    ]
    page = settings.SITE_URL.rstrip("/") + reverse("portal:overdue_reviews")
    body = (
        f"{len(articles)} article(s) you own are past their review date:\n\n"
        + "\n".join(lines)
        + f"\n\nReview them at {page}\n"
    )
    recipient = owner.email
    transaction.on_commit(
        lambda: send_mail("Articles due for review", body, None, [recipient])
    )
    logger.info(
        "review reminder queued", extra={"owner_id": owner.pk, "count": len(articles)}
    )
    return True
