"""Knowledge base articles for the demo, written through the knowledge
service so each has a first version, a review date and a search vector."""

from django.contrib.auth import get_user_model

from apps.membership.models import Member
from apps.portal.models import Article
from apps.portal.services.knowledge import (
    ArticleInput,
    create_article,
    give_article_feedback,
)

# (title, summary, body, audience)
DEMO_ARTICLES = [
    (
        "Export a report to CSV",
        "Download any report as a CSV file.",
        "1. Open **Reports** and choose the report.\n"
        "2. Select **Export**, then **CSV**.\n\n"
        "Exports over 100,000 rows arrive by email instead.",
        Article.Audience.PUBLIC,
    ),
    (
        "Reset your password",
        "Set a new password when you cannot sign in.",
        "Choose **Forgot password** on the sign-in page and follow the link in "
        "the email. The link expires after one hour.",
        Article.Audience.PUBLIC,
    ),
    (
        "Set up single sign-on with Okta",
        "Connect your Okta tenant over OpenID Connect.",
        "Create an OpenID Connect app in Okta, copy its client ID and secret, "
        "and enter them under **Settings → Single sign-on**.",
        Article.Audience.MEMBERS,
    ),
    (
        "Schedule a dashboard email",
        "Send a dashboard to your team every week.",
        "Open the dashboard, choose **Share → Schedule**, pick the day and the "
        "recipients. Recipients need access to the dashboard's data.",
        Article.Audience.MEMBERS,
    ),
    (
        "Connect the Salesforce integration",
        "Sync accounts and opportunities from Salesforce.",
        "An admin opens **Integrations → Salesforce**, signs in to Salesforce and "
        "chooses the objects to sync. The first sync can take an hour.",
        Article.Audience.MEMBERS,
    ),
    (
        "Fix a webhook that times out",
        "Why webhook deliveries fail and how to retry them.",
        "Deliveries time out after 10 seconds. Answer with 2xx quickly and do the "
        "work later; failed deliveries are retried with back-off.",
        Article.Audience.MEMBERS,
    ),
]


def demo_article_slug(title: str, *, slug_prefix: str) -> str:
    """Return the slug of the demo article titled `title`."""
    return f"{slug_prefix}{title.lower().replace(' ', '-')}"[:120]


def seed_demo_articles(*, staff_email: str, slug_prefix: str) -> int:
    """Create the demo articles, owned by the demo staff user; return the count."""
    owner = get_user_model().objects.filter(email=staff_email).first()
    for title, summary, body, audience in DEMO_ARTICLES:
        create_article(
            data=ArticleInput(
                title=title,
                summary=summary,
                body=body,
                audience=audience,
                owner_id=owner.pk if owner and owner.is_staff else None,
                is_published=True,
            ),
            edited_by=owner,
            slug=demo_article_slug(title, slug_prefix=slug_prefix),
        )
    return len(DEMO_ARTICLES)


def seed_demo_article_feedback(*, voter_ids: list[int], slug_prefix: str) -> int:
    """Record "was this helpful" feedback on the demo articles; return the count.

    Each article gets two to six answers from `voter_ids`, taken in turn. Every
    fourth article mostly did not help, so that the home page's next article
    comes from the others. The answers go through the knowledge service, so
    the article counters and activity events match them.
    """
    slugs = [
        demo_article_slug(title, slug_prefix=slug_prefix) for title, *_ in DEMO_ARTICLES
    ]
    articles = Article.objects.in_bulk(slugs, field_name="slug")
    voters = list(Member.objects.filter(pk__in=voter_ids).order_by("pk"))
    if not voters:
        return 0
    recorded = 0
    for index, slug in enumerate(slugs):
        answers = 2 + (index * 3) % 5
        is_mostly_helpful = index % 4 != 3
        for answer in range(answers):
            voter = voters[(index * 7 + answer) % len(voters)]
            # A mostly helpful article gets one "no" in four answers; the
            # others get one "yes", the first.
            helpful = answer % 4 != 3 if is_mostly_helpful else answer == 0
            give_article_feedback(article=articles[slug], member=voter, helpful=helpful)
            recorded += 1
    return recorded
