import pytest

from apps.membership.registries import register_named


def build_one():
    return 1


def build_two():
    return 2


def test_register_named_stores_function():
    registry = {}

    register_named(registry, label="test hook", name="one", function=build_one)

    assert registry == {"one": build_one}


def test_register_named_same_function_twice_is_no_op():
    registry = {}

    register_named(registry, label="test hook", name="one", function=build_one)
    register_named(registry, label="test hook", name="one", function=build_one)

    assert registry == {"one": build_one}


def test_register_named_taken_name_raises():
    registry = {"one": build_one}

    with pytest.raises(ValueError, match="already registered") as error:
        register_named(registry, label="test hook", name="one", function=build_two)

    assert str(error.value) == (
        "The test hook 'one' is already registered by "
        "tests.membership.test_registries.build_one; choose another name."
    )
    assert registry == {"one": build_one}


def test_register_admin_link_rejects_unknown_page():
    from apps.membership.admin_links import register_admin_link

    with pytest.raises(ValueError, match="'account' or 'member'"):
        register_admin_link("invoice", "Health page", build_one)
