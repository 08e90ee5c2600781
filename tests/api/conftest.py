import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from apps.membership.models import Member
from tests import factories


@pytest.fixture
def staff_api(api_client, staff_user):
    """Return an API client signed in as staff through a session."""
    api_client.force_login(staff_user)
    return api_client


@pytest.fixture
def member_api(api_client, member):
    """Return an API client signed in as the `member` fixture through a session."""
    api_client.force_login(member.user)
    return api_client


@pytest.fixture
def account_admin(member):
    """Return an account admin of the `member` fixture's account."""
    return factories.MemberFactory(account=member.account, role=Member.Role.ADMIN)


@pytest.fixture
def staff_token_api(staff_user):
    """Return an API client that sends a staff user's token, without a session."""
    token = Token.objects.create(user=staff_user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client
