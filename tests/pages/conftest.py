import pytest

from apps.community.models import Space
from apps.membership.models import Member
from tests import factories


@pytest.fixture
def public_space(db):
    return factories.SpaceFactory(
        name="Announcements", slug="news", visibility=Space.Visibility.PUBLIC
    )


@pytest.fixture
def members_space(db):
    return factories.SpaceFactory(
        name="Questions", slug="questions", visibility=Space.Visibility.MEMBERS
    )


@pytest.fixture
def account_space(member):
    """A space private to the `member` fixture's account."""
    return factories.SpaceFactory(
        name="Acme private",
        slug="acme-private",
        visibility=Space.Visibility.ACCOUNT,
        account=member.account,
    )


@pytest.fixture
def other_account_space(db):
    return factories.SpaceFactory(
        name="Other private",
        slug="other-private",
        visibility=Space.Visibility.ACCOUNT,
        account=factories.AccountFactory(),
    )


@pytest.fixture
def account_admin(member):
    """An account admin in the `member` fixture's account."""
    return factories.MemberFactory(account=member.account, role=Member.Role.ADMIN)
