"""Reads of use-case hubs: which hubs and which of their items a viewer may see."""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Model, Q, QuerySet
from django.urls import NoReverseMatch, reverse

from apps.community.models import CommunityEvent, Topic
from apps.community.selectors.access import filter_visible_topics, list_visible_spaces
from apps.membership.models import Member
from apps.portal.models import Article, Course, HubItem, UseCaseHub

# The content kinds a hub may list, by "app_label.model", with the label shown for each.
HUB_CONTENT_KINDS = {
    "portal.article": "Article",
    "portal.course": "Course",
    "community.topic": "Topic",
    "community.communityevent": "Event",
}


def _normalise_text(text: str) -> str:
    return " ".join(text.split()).casefold()


def get_hub_body(hub: UseCaseHub) -> str:
    """Return the hub's Markdown body without a repeat of its title or summary.

    The page header already shows the title and the summary, and bodies often
    start with a heading of the title or with the summary itself (the demo
    hubs do), which showed both twice. Only leading blocks are dropped.
    """
    blocks = [
        block.strip()
        for block in hub.body.replace("\r\n", "\n").split("\n\n")
        if block.strip()
    ]
    title = _normalise_text(hub.title)
    is_heading = bool(blocks) and blocks[0].startswith("#")
    if is_heading and _normalise_text(blocks[0].lstrip("#")) == title:
        blocks.pop(0)
    summary = _normalise_text(hub.summary)
    if blocks and summary and _normalise_text(blocks[0]) == summary:
        blocks.pop(0)
    return "\n\n".join(blocks)


def list_visible_hubs(*, is_staff: bool) -> QuerySet[UseCaseHub]:
    """Return the hubs a viewer may open: published ones, and drafts for staff."""
    hubs = UseCaseHub.objects.all()
    if is_staff:
        return hubs
    return hubs.filter(is_published=True)


def access_hub(*, slug: str, is_staff: bool) -> UseCaseHub:
    """Return the hub if the viewer may open it, else raise UseCaseHub.DoesNotExist."""
    return list_visible_hubs(is_staff=is_staff).get(slug=slug)


def filter_visible_hub_ids(member: Member, subject_ids: Iterable[str]) -> set[str]:
    """Return the hub ids, of those given, that the member can still open."""
    ids = [int(value) for value in subject_ids if str(value).isdigit()]
    hubs = UseCaseHub.objects.filter(pk__in=ids, is_published=True)
    return {str(pk) for pk in hubs.values_list("pk", flat=True)}


def _visible_articles(ids: list[int], *, is_staff: bool) -> QuerySet:
    articles = Article.objects.filter(pk__in=ids)
    if is_staff:
        return articles
    # Signed-in viewers read both audiences, public and members.
    return articles.filter(is_published=True)


def _visible_courses(ids: list[int], *, is_staff: bool) -> QuerySet:
    courses = Course.objects.filter(pk__in=ids)
    return courses if is_staff else courses.filter(is_published=True)


def _visible_topics(ids: list[int], *, member: Member | None, is_staff: bool):
    topics = Topic.objects.filter(pk__in=ids).select_related("space")
    # A hub shows only published topics, even to moderators who could open
    # a hidden one from its space.
    topics = topics.filter(is_hidden=False, deleted_at__isnull=True)
    return filter_visible_topics(topics, member, is_staff)


def _visible_events(ids: list[int], *, member: Member | None, is_staff: bool):
    events = CommunityEvent.objects.filter(pk__in=ids).select_related("space")
    if is_staff:
        return events
    spaces = list_visible_spaces(member=member)
    return events.filter(Q(space__isnull=True) | Q(space__in=spaces))


def get_content_url(label: str, content: Model) -> str:
    """Return the page address of hub content, or "" while it has no page."""
    if hasattr(content, "get_absolute_url"):
        return content.get_absolute_url()
    if label == "community.communityevent":
        return reverse("community:event", kwargs={"pk": content.pk})
    # NOTE: articles and courses have no get_absolute_url yet; the pages that
    # show them are expected under these names. Without them the hub lists
    # the title without a link.
    names = {"portal.article": "portal:article", "portal.course": "portal:course"}
    try:
        return reverse(names[label], kwargs={"slug": content.slug})
    except (KeyError, NoReverseMatch):
        return ""


@dataclass(frozen=True)
class HubEntry:
    """One item of a hub that the viewer may see, with its content loaded."""

    item: HubItem
    content: Model
    kind: str
    url: str

    @property
    def kind_label(self) -> str:
        return HUB_CONTENT_KINDS[self.kind]

    @property
    def title(self) -> str:
        return getattr(self.content, "title", str(self.content))

    @property
    def summary(self) -> str:
        return getattr(self.content, "summary", "") or ""


def list_hub_entries(
    *, hub: UseCaseHub, member: Member | None, is_staff: bool, kind: str = ""
) -> list[HubEntry]:
    """Return the hub's items the viewer may see, in the hub's order.

    Each item is checked with the rule of its own kind: published articles
    and courses, topics in spaces the viewer reads (private groups only for
    their members), events outside a space or in one the viewer reads.
    Items whose content was deleted are left out. One query for the items
    and at most one per kind, whatever the number of items.
    """
    items = list(HubItem.objects.filter(hub=hub).select_related("content_type"))
    ids_by_kind: dict[str, list[int]] = defaultdict(list)
    for item in items:
        label = f"{item.content_type.app_label}.{item.content_type.model}"
        if label in HUB_CONTENT_KINDS and (not kind or label == kind):
            ids_by_kind[label].append(item.object_id)

    loaders = {
        "portal.article": lambda ids: _visible_articles(ids, is_staff=is_staff),
        "portal.course": lambda ids: _visible_courses(ids, is_staff=is_staff),
        "community.topic": lambda ids: _visible_topics(
            ids, member=member, is_staff=is_staff
        ),
        "community.communityevent": lambda ids: _visible_events(
            ids, member=member, is_staff=is_staff
        ),
    }
    visible = {
        label: {obj.pk: obj for obj in loaders[label](ids)}
        for label, ids in ids_by_kind.items()
    }

    entries = []
    for item in items:
        label = f"{item.content_type.app_label}.{item.content_type.model}"
        content = visible.get(label, {}).get(item.object_id)
        if content is None:
            continue
        entries.append(
            HubEntry(
                item=item,
                content=content,
                kind=label,
                url=get_content_url(label, content),
            )
        )
    return entries
