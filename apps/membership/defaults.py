"""Rows the product needs in every database: consent purposes and role groups.

They are created after every `migrate`, and again after a database flush,
through Django's post_migrate signal, the way Django itself creates
permissions and content types. Existing rows are left as staff edited them.
The site that Django creates as example.com gets the hub's name too.
"""

from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.sites.models import Site

from apps.membership.models import ConsentPurpose

SITE_NAME = "RM6 Loyalty Hub"
# The domain of the site that Django's sites app creates when none exists.
DJANGO_DEFAULT_SITE_DOMAIN = "example.com"

CONSENT_PURPOSES = [
    (
        "marketing_email",
        "Marketing email",
        "News about products, events and programmes by email.",
    ),
    (
        "advocacy_contact",
        "Advocacy contact",
        "Invitations to write reviews, take reference calls or speak at events.",
    ),
    (
        "story_publication",
        "Story publication",
        "Publishing your name, quotes or story on the website and in sales material.",
    ),
    (
        "product_research",
        "Product research",
        "Invitations to interviews, surveys and early-access programmes.",
    ),
]


def create_default_rows(sender, using="default", **kwargs) -> None:
    """Create the standard consent purposes and role groups when missing."""
    from apps.membership.services.roles import sync_role_definitions

    for position, (key, name, description) in enumerate(CONSENT_PURPOSES):
        ConsentPurpose.objects.using(using).get_or_create(
            key=key,
            defaults={"name": name, "description": description, "position": position},
        )
    sync_role_definitions()
    name_default_site(using=using)


def name_default_site(*, using: str = "default") -> None:
    """Give Django's example.com site the hub's name and RM6_SITE_URL's domain.

    allauth puts the site's name in the subject and greeting of its emails,
    such as the address confirmation at sign-up. A site whose domain is no
    longer example.com is left alone.
    """
    domain = urlsplit(settings.SITE_URL).netloc or "127.0.0.1:8000"
    renamed = (
        Site.objects.using(using)
        .filter(pk=settings.SITE_ID, domain=DJANGO_DEFAULT_SITE_DOMAIN)
        .update(domain=domain, name=SITE_NAME)
    )
    if renamed:
        Site.objects.clear_cache()
