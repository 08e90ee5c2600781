import pytest

from apps.community.models import MemberStats, Space, Topic
from apps.community.services.moderation import (
    recount_member_stats,
    recount_space,
    recount_topic,
)
from apps.membership.models import Member
from apps.membership.services.roles import sync_role_groups
from tests import factories


@pytest.fixture
def space(db):
    return factories.SpaceFactory(
        name="Questions", slug="questions", visibility=Space.Visibility.MEMBERS
    )


@pytest.fixture
def other_space(db):
    return factories.SpaceFactory(
        name="Integrations", slug="integrations", visibility=Space.Visibility.MEMBERS
    )


@pytest.fixture
def champion(db):
    champion = factories.MemberFactory(role=Member.Role.CHAMPION)
    sync_role_groups(champion)
    return champion


@pytest.fixture
def champion_client(client, champion):
    client.force_login(champion.user)
    return client


@pytest.fixture
def asker(db):
    return factories.MemberFactory()


@pytest.fixture
def question(space, asker):
    return factories.TopicFactory(space=space, author=asker, kind=Topic.Kind.QUESTION)


@pytest.fixture
def replies(question):
    """Three replies by three members, with the counters stored exactly."""
    replies = [factories.ReplyFactory(topic=question) for _ in range(3)]
    fix_counters()
    return replies


def fix_counters() -> None:
    """Store counted values, as a baseline, for rows made by factories."""
    for space in Space.objects.all():
        recount_space(space, fix=True)
    for topic in Topic.objects.all():
        recount_topic(topic, fix=True)
    for member in Member.objects.all():
        recount_member_stats(member, fix=True)


def assert_counters_exact() -> None:
    """Assert that every stored counter equals its recount."""
    for space in Space.objects.all():
        assert recount_space(space) == {}, f"space {space.slug}"
    for topic in Topic.objects.all():
        assert recount_topic(topic) == {}, f"topic {topic.pk}"
    for member in Member.objects.all():
        assert recount_member_stats(member) == {}, f"member {member.pk}"


def get_stats(member: Member) -> MemberStats:
    return MemberStats.objects.get_or_create(member=member)[0]


def refresh(*objects):
    for obj in objects:
        obj.refresh_from_db()
