import pytest

from apps.membership.names import get_name_skeleton, validate_display_name
from apps.membership.services.profiles import update_profile
from rm6.errors import DomainError
from tests import factories

pytestmark = pytest.mark.django_db

CYRILLIC_A = "\u0430"


@pytest.mark.parametrize(
    "name",
    [
        "Pa\u200bul",  # zero-width space
        "Paul\u200d",  # zero-width joiner
        "\u202eluaP",  # right-to-left override
        "Pa\u2066ul",  # left-to-right isolate
    ],
)
def test_validate_display_name_rejects_invisible(name):
    with pytest.raises(DomainError) as raised:
        validate_display_name(name)

    assert "invisible character" in raised.value.message


def test_validate_display_name_rejects_mixed_script():
    with pytest.raises(DomainError) as raised:
        validate_display_name(f"P{CYRILLIC_A}ypal Support")

    assert "mixes letters from different alphabets" in raised.value.message


def test_validate_display_name_rejects_lookalike_of_member():
    factories.MemberFactory(display_name="Olga Smith")

    with pytest.raises(DomainError) as raised:
        validate_display_name("0LGA  SMITH")

    assert "looks the same as another member's name" in raised.value.message


def test_validate_display_name_rejects_cyrillic_copy():
    factories.MemberFactory(display_name="Cape")

    with pytest.raises(DomainError):
        validate_display_name("\u0421\u0430\u0440\u0435")


def test_validate_display_name_accepts_single_scripts():
    factories.MemberFactory(display_name="Olga Smith")

    validate_display_name("Jos\u00e9 Garc\u00eda")
    validate_display_name("\u0412\u043b\u0430\u0434\u0438\u043c\u0438\u0440")


def test_get_name_skeleton_maps_lookalikes():
    assert get_name_skeleton(f"P{CYRILLIC_A}ul") == "paul"
    assert get_name_skeleton("Il1") == "ill"
    assert get_name_skeleton("\uff30aul") == "paul"  # fullwidth P


def test_update_profile_rejects_zero_width(member):
    with pytest.raises(DomainError):
        update_profile(member=member, display_name="Ad\u200bmin")

    member.refresh_from_db()
    assert member.display_name == ""


def test_update_profile_own_name_kept(member):
    update_profile(member=member, display_name="Olga")

    updated = update_profile(member=member, display_name="Olga", headline="Hi")

    assert updated.headline == "Hi"


def test_update_profile_rejects_other_members_name(member):
    factories.MemberFactory(display_name="Olga")

    with pytest.raises(DomainError):
        update_profile(member=member, display_name="olga")
