"""Settings read from the environment."""

import subprocess

import pytest
from django.core.exceptions import ImproperlyConfigured

from rm6.settings.base import Env
from tests.processes import read_setting


def test_env_cast_error_names_variable(monkeypatch):
    monkeypatch.setenv("RM6_TEST_NUMBER", "abc")

    with pytest.raises(ImproperlyConfigured) as error:
        Env().int("RM6_TEST_NUMBER", default=1)

    assert str(error.value) == (
        "RM6_TEST_NUMBER is invalid: invalid literal for int() with base 10: "
        "'abc'. Set it to a valid value or unset it for the default (see "
        ".env.example)."
    )


def test_env_default_when_unset(monkeypatch):
    monkeypatch.delenv("RM6_TEST_NUMBER", raising=False)

    assert Env().int("RM6_TEST_NUMBER", default=7) == 7


def load_held_limit(value: str) -> subprocess.CompletedProcess:
    """Load the test settings in a new process with the held limit set to `value`."""
    return read_setting(
        "RM6_SEGMENT_MAX_HELD_MESSAGES",
        "rm6.settings.test",
        RM6_SEGMENT_MAX_HELD_MESSAGES=value,
    )


def test_settings_load_fails_on_bad_number():
    result = load_held_limit("lots")

    assert result.returncode == 1
    assert "RM6_SEGMENT_MAX_HELD_MESSAGES is invalid" in result.stderr.splitlines()[-1]


def test_settings_load_fails_on_negative_held_limit():
    # Gunicorn and Celery run no system checks, so the settings stop them.
    result = load_held_limit("-1")

    assert result.returncode == 1
    assert result.stderr.splitlines()[-1].endswith(
        "RM6_SEGMENT_MAX_HELD_MESSAGES is -1, but it must be 0 or more. Set it "
        "to the number of held messages each Segment source may keep, such as "
        "100000."
    )
