import pytest

from apps.community.models import Space, SpaceMembership
from apps.community.services.access import add_space_member
from tests import factories


@pytest.fixture
def private_space(db):
    return factories.SpaceFactory(
        name="Champions", slug="champions", visibility=Space.Visibility.PRIVATE
    )


@pytest.fixture
def members_space(db):
    return factories.SpaceFactory(
        name="Questions", slug="questions", visibility=Space.Visibility.MEMBERS
    )


@pytest.fixture
def group_member(private_space):
    """A member of the private group."""
    member = factories.MemberFactory()
    add_space_member(space=private_space, member=member)
    return member


@pytest.fixture
def group_moderator(private_space):
    member = factories.MemberFactory()
    add_space_member(
        space=private_space, member=member, role=SpaceMembership.Role.MODERATOR
    )
    return member


@pytest.fixture
def outsider(db):
    """A member who is not in the private group."""
    return factories.MemberFactory()


@pytest.fixture
def private_topic(private_space, group_member):
    return factories.TopicFactory(
        space=private_space,
        author=group_member,
        title="Secret roadmap for exporters",
        body="The champion-only export roadmap.",
    )
