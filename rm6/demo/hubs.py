"""Demo use-case hubs and the onboarding paths that point at them.

Each hub lists demo knowledge articles, courses and the busiest community
topics of some spaces, as curated hub items, in that order.
"""

from django.contrib.contenttypes.models import ContentType

from apps.community.models import Space, Topic
from apps.membership.models import Account, Member
from apps.portal.models import (
    Article,
    Course,
    HubItem,
    OnboardingPath,
    OnboardingStep,
    UseCaseHub,
)
from rm6.demo.courses import ADVANCED_SLUG, BASICS_SLUG
from rm6.demo.knowledge import demo_article_slug

# (key, title, summary, keys of the spaces whose busiest topics it lists,
#  titles of its demo articles, (course slug, note) of its courses)
DEMO_HUBS = [
    (
        "reporting-hub",
        "Reporting and exports",
        "Build reports your team trusts and get the data out where it is needed.",
        ["questions", "ideas"],
        ["Export a report to CSV", "Schedule a dashboard email"],
        [
            (BASICS_SLUG, "Start here: your first report in under an hour."),
            (ADVANCED_SLUG, ""),
        ],
    ),
    (
        "admin-hub",
        "Administering your workspace",
        "Connect your tools, manage people and keep the workspace healthy.",
        ["integrations", "announcements"],
        [
            "Set up single sign-on with Okta",
            "Connect the Salesforce integration",
            "Fix a webhook that times out",
        ],
        [(BASICS_SLUG, "Assign it to new members of your team.")],
    ),
]
# The busiest topics each hub lists, after its articles and courses.
HUB_TOPIC_COUNT = 6
# (key, title, roles, segments, steps as (title, completion, kind or hub key))
DEMO_PATHS = [
    (
        "admin-setup",
        "Set up your workspace",
        [Member.Role.ADMIN],
        [],
        [
            ("Read the administration hub", "visit", "admin-hub"),
            ("Invite your team", "manual", ""),
            ("Answer a colleague in the community", "event", "community.reply_posted"),
        ],
    ),
    (
        "enterprise-rollout",
        "Enterprise rollout",
        [],
        [Account.Segment.ENTERPRISE],
        [
            ("Book a kickoff with your success manager", "manual", ""),
            ("Explore the reporting hub", "visit", "reporting-hub"),
            ("Export your first report", "event", "product.report_exported"),
        ],
    ),
]


def write_demo_paths_and_hubs(*, spaces: dict[str, Space], slug_prefix: str) -> int:
    """Add two use-case hubs and two targeted onboarding paths; return the steps.

    The hubs' articles and courses must exist already. Progress is not
    written here. The events carry the seed time as recorded_at, so the
    per-minute sync reads them all when beat and a worker run within a day
    of seeding, and the nightly sync otherwise. A member's own page view
    syncs that member at once.
    """
    hubs = {}
    for position, (key, title, summary, *contents) in enumerate(DEMO_HUBS):
        hub = UseCaseHub.objects.create(
            title=title,
            slug=f"{slug_prefix}{key}",
            summary=summary,
            body=summary,
            is_published=True,
            position=position,
        )
        _write_hub_items(hub, *contents, spaces=spaces, slug_prefix=slug_prefix)
        hubs[key] = hub

    hub_type = ContentType.objects.get_for_model(UseCaseHub)
    steps = []
    for path_position, (key, title, roles, segments, path_steps) in enumerate(
        DEMO_PATHS, start=1
    ):
        path = OnboardingPath.objects.create(
            title=title,
            slug=f"{slug_prefix}{key}",
            roles=roles,
            segments=segments,
            is_published=True,
            position=path_position,
        )
        for position, (step_title, completion, value) in enumerate(path_steps):
            step = OnboardingStep(
                path=path, title=step_title, completion=completion, position=position
            )
            if completion == OnboardingStep.Completion.EVENT:
                step.completion_kind = value
            elif completion == OnboardingStep.Completion.VISIT:
                step.target_type = hub_type
                step.target_id = hubs[value].pk
                step.url = f"/hubs/{hubs[value].slug}/"
            steps.append(step)
    OnboardingStep.objects.bulk_create(steps)
    return len(steps)


def _write_hub_items(
    hub: UseCaseHub,
    space_keys: list[str],
    article_titles: list[str],
    courses: list[tuple[str, str]],
    *,
    spaces: dict[str, Space],
    slug_prefix: str,
) -> None:
    """Place the hub's articles, then its courses, then its busiest topics."""
    slugs = [demo_article_slug(t, slug_prefix=slug_prefix) for t in article_titles]
    articles = Article.objects.in_bulk(slugs, field_name="slug")
    course_slugs = [slug for slug, _ in courses]
    courses_by_slug = Course.objects.in_bulk(course_slugs, field_name="slug")
    topics = Topic.objects.filter(
        space__in=[spaces[space_key] for space_key in space_keys]
    ).order_by("-reply_count", "id")[:HUB_TOPIC_COUNT]

    # (content, note) in the order the hub lists them.
    contents = [(articles[slug], "") for slug in slugs]
    contents += [(courses_by_slug[slug], note) for slug, note in courses]
    contents += [(topic, "") for topic in topics]
    HubItem.objects.bulk_create(
        HubItem(
            hub=hub,
            content_type=ContentType.objects.get_for_model(content),
            object_id=content.pk,
            note=note,
            position=position,
        )
        for position, (content, note) in enumerate(contents)
    )
