"""Display-name checks on the paths that create members or set their names."""

import pytest
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from apps.membership.models import Member
from apps.membership.services import create_member
from apps.membership.services.members import upsert_member, upsert_member_by_email
from rm6.errors import DomainError
from tests import factories

pytestmark = pytest.mark.django_db

User = get_user_model()

# "Cape" written with Cyrillic Es, a, Er and Ie.
CYRILLIC_CAPE = "\u0421\u0430\u0440\u0435"
# "Paypal" with a Cyrillic a (U+0430) among Latin letters.
MIXED_SCRIPT_NAME = "P\u0430ypal Support"


@pytest.fixture
def staff_token_api(staff_user):
    token = Token.objects.create(user=staff_user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def test_create_member_rejects_lookalike():
    factories.MemberFactory(display_name="Cape")
    user = factories.UserFactory(email="new@acme.test")

    with pytest.raises(DomainError) as raised:
        create_member(user=user, display_name=CYRILLIC_CAPE)

    assert raised.value.field == "display_name"
    assert "looks the same as another member's name" in raised.value.message
    assert not Member.objects.filter(user=user).exists()


def test_create_member_rejects_invisible_character():
    user = factories.UserFactory(email="new@acme.test")

    with pytest.raises(DomainError) as raised:
        create_member(user=user, display_name="Pa\u200bul")

    assert "invisible character U+200B" in raised.value.message
    assert not Member.objects.filter(user=user).exists()


def test_create_member_accepts_empty_name():
    factories.MemberFactory(display_name="")
    user = factories.UserFactory(email="new@acme.test")

    member = create_member(user=user)

    assert member.display_name == ""


def test_create_member_accepts_distinct_name():
    factories.MemberFactory(display_name="Cape")
    user = factories.UserFactory(email="new@acme.test")

    member = create_member(user=user, display_name="Olga Smith")

    assert member.display_name == "Olga Smith"


def test_create_member_existing_skips_check():
    member = factories.MemberFactory(display_name="Cape")

    again = create_member(user=member.user, display_name="Cape")

    assert again.pk == member.pk


def test_upsert_create_rejects_mixed_script():
    with pytest.raises(DomainError) as raised:
        upsert_member(
            external_id="usr-1",
            email="paul@acme.test",
            display_name=MIXED_SCRIPT_NAME,
        )

    assert raised.value.field == "display_name"
    assert "mixes letters from different alphabets" in raised.value.message
    assert not User.objects.filter(email="paul@acme.test").exists()
    assert not Member.objects.filter(external_id="usr-1").exists()


def test_upsert_by_email_rejects_lookalike():
    factories.MemberFactory(display_name="Cape")

    with pytest.raises(DomainError) as raised:
        upsert_member_by_email(email="copy@acme.test", display_name=CYRILLIC_CAPE)

    assert "looks the same as another member's name" in raised.value.message
    assert not User.objects.filter(email="copy@acme.test").exists()


def test_upsert_update_rejects_lookalike():
    factories.MemberFactory(display_name="Cape")
    member = factories.MemberFactory(external_id="usr-2", display_name="Olga")

    with pytest.raises(DomainError) as raised:
        upsert_member(external_id="usr-2", display_name=CYRILLIC_CAPE)

    member.refresh_from_db()
    assert "looks the same as another member's name" in raised.value.message
    assert member.display_name == "Olga"


def test_upsert_update_keeps_own_name():
    factories.MemberFactory(external_id="usr-3", display_name="Cape")

    updated, created = upsert_member(external_id="usr-3", display_name="Cape")

    assert created is False
    assert updated.display_name == "Cape"


def test_member_upsert_api_rejects_lookalike(staff_token_api):
    factories.MemberFactory(display_name="Cape")

    response = staff_token_api.put(
        "/api/v1/members/by-external-id/usr-4/",
        {"email": "copy@acme.test", "display_name": CYRILLIC_CAPE},
        format="json",
    )

    assert response.status_code == 400
    assert "looks the same as another member's name" in str(response.json())
    assert not User.objects.filter(email="copy@acme.test").exists()
    assert not Member.objects.filter(external_id="usr-4").exists()
