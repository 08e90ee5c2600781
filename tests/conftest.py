import pytest
from rest_framework.test import APIClient

from tests import factories


@pytest.fixture
def member(db):
    return factories.MemberFactory()


@pytest.fixture
def staff_user(db):
    return factories.StaffFactory()


@pytest.fixture
def api_client():
    return APIClient()


@pytest.fixture
def member_client(client, member):
    client.force_login(member.user)
    return client


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client
