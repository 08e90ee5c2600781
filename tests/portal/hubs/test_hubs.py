import pytest
from django.urls import reverse
from django.utils import timezone

from apps.community.models import Space
from apps.community.services.access import add_space_member
from apps.lifecycle.models import ActivityEvent
from apps.portal.models import OnboardingProgress
from apps.portal.services.onboarding import sync_member_progress
from tests import factories
from tests.portal.onboarding.factories import (
    ArticleFactory,
    CommunityEventFactory,
    CourseFactory,
    HubFactory,
    PathFactory,
    add_hub_item,
    visit_step,
)

pytestmark = pytest.mark.django_db

HUBS_URL = reverse("portal:hubs")


def hub_url(hub) -> str:
    return reverse("portal:hub", args=[hub.slug])


def titles(response) -> list[str]:
    return [entry.title for entry in response.context["page_obj"]]


@pytest.fixture
def private_space():
    return factories.SpaceFactory(visibility=Space.Visibility.PRIVATE)


@pytest.fixture
def hub(private_space):
    hub = HubFactory(title="Reporting")
    add_hub_item(hub, ArticleFactory(title="Export guide"), position=1)
    add_hub_item(hub, ArticleFactory(title="Draft article", is_published=False))
    add_hub_item(hub, CourseFactory(title="Reports 101"), position=2)
    add_hub_item(hub, factories.TopicFactory(title="Public question"), position=3)
    add_hub_item(
        hub,
        factories.TopicFactory(title="Champions only", space=private_space),
        position=4,
    )
    add_hub_item(
        hub,
        factories.TopicFactory(title="Hidden topic", is_hidden=True),
        position=5,
    )
    add_hub_item(hub, CommunityEventFactory(title="Report office hours"), position=6)
    add_hub_item(
        hub,
        CommunityEventFactory(title="Private webinar", space=private_space),
        position=7,
    )
    return hub


def test_hub_list_shows_published_hubs(member_client):
    HubFactory(title="Reporting")
    HubFactory(title="Draft hub", is_published=False)

    html = member_client.get(HUBS_URL).content.decode()

    assert "Reporting" in html
    assert "Draft hub" not in html


def test_hub_list_staff_sees_drafts(staff_client):
    HubFactory(title="Draft hub", is_published=False)

    html = staff_client.get(HUBS_URL).content.decode()

    assert "Draft hub" in html


def test_hub_list_empty_state(member_client):
    html = member_client.get(HUBS_URL).content.decode()

    assert "No hubs are published yet." in html


def test_hub_list_requires_sign_in(client):
    assert client.get(HUBS_URL).status_code == 302


def test_hub_detail_hides_items_member_cannot_see(member_client, hub):
    response = member_client.get(hub_url(hub))

    assert titles(response) == [
        "Export guide",
        "Reports 101",
        "Public question",
        "Report office hours",
    ]


def test_hub_detail_shows_private_items_to_group_member(client, hub, private_space):
    member = factories.MemberFactory()
    add_space_member(space=private_space, member=member)
    client.force_login(member.user)

    response = client.get(hub_url(hub))

    assert "Champions only" in titles(response)
    assert "Private webinar" in titles(response)
    assert "Hidden topic" not in titles(response)


def test_hub_detail_staff_sees_every_item(staff_client, hub):
    response = staff_client.get(hub_url(hub))

    assert "Draft article" in titles(response)
    assert "Champions only" in titles(response)


def test_hub_detail_filters_by_kind(member_client, hub):
    response = member_client.get(hub_url(hub), {"kind": "community.topic"})

    assert titles(response) == ["Public question"]


def test_hub_detail_draft_is_404_for_members(member_client):
    draft = HubFactory(is_published=False)

    assert member_client.get(hub_url(draft)).status_code == 404


def test_hub_detail_records_view_and_completes_visit_step(member_client, member, hub):
    step = visit_step(path=PathFactory(), target=hub)

    member_client.get(hub_url(hub))
    sync_member_progress(member=member)

    event = ActivityEvent.objects.get(member=member, kind="portal.hub_viewed")
    assert event.subject == hub
    assert OnboardingProgress.objects.filter(member=member, step=step).exists()


def test_hub_detail_skips_deleted_content(member_client):
    hub = HubFactory()
    article = ArticleFactory(title="Gone")
    add_hub_item(hub, article)
    article.delete()

    response = member_client.get(hub_url(hub))

    assert titles(response) == []
    assert "Nothing in this hub that you can open yet." in response.content.decode()


def test_hub_detail_query_count_fixed(member_client, django_assert_num_queries):
    hub = HubFactory()

    def add_items(count: int) -> None:
        for _ in range(count):
            add_hub_item(hub, ArticleFactory())
            add_hub_item(hub, CourseFactory())
            add_hub_item(hub, factories.TopicFactory())
            add_hub_item(
                hub,
                CommunityEventFactory(starts_at=timezone.now()),
            )

    add_items(1)
    member_client.get(hub_url(hub))
    with django_assert_num_queries(13) as few:
        member_client.get(hub_url(hub))
    add_items(6)

    with django_assert_num_queries(len(few.captured_queries)):
        member_client.get(hub_url(hub))


@pytest.mark.parametrize(
    "body",
    [
        "Build reports your team trusts.",
        "# Reporting\n\nBuild reports your team trusts.",
        "## Reporting\r\n\r\nBuild  reports your\nteam trusts.",
    ],
)
def test_hub_detail_shows_title_and_summary_once(member_client, body):
    hub = HubFactory(
        title="Reporting", summary="Build reports your team trusts.", body=body
    )

    html = member_client.get(reverse("portal:hub", args=[hub.slug])).content.decode()

    assert html.count("Build reports your team trusts.") == 1
    assert html.count("<h1>Reporting</h1>") == 1
    assert "<h1>Reporting</h1>" in html
    assert '<div class="post__body">' not in html


def test_hub_detail_keeps_body_after_repeated_summary(member_client):
    hub = HubFactory(
        title="Reporting",
        summary="Build reports your team trusts.",
        body="Build reports your team trusts.\n\nStart with the export guide.",
    )

    html = member_client.get(reverse("portal:hub", args=[hub.slug])).content.decode()

    assert html.count("Build reports your team trusts.") == 1
    assert "<p>Start with the export guide.</p>" in html
