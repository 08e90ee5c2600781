"""Rows the product needs in every database: consent purposes and role groups.

They are created after every `migrate`, and again after a database flush,
through Django's post_migrate signal, the way Django itself creates
permissions and content types. Existing rows are left as staff edited them.
"""

from apps.membership.models import ConsentPurpose

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
