"""Settings read from the environment."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from rm6.settings.base import Env


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


def test_settings_load_fails_on_bad_number():
    # The settings as a process loads them, with an integer setting mistyped.
    env = {**os.environ, "RM6_SEGMENT_MAX_HELD_MESSAGES": "lots"}
    code = "from django.conf import settings; settings.RM6_SEGMENT_MAX_HELD_MESSAGES"

    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parent.parent,
        env={**env, "DJANGO_SETTINGS_MODULE": "rm6.settings.test"},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 1
    assert "RM6_SEGMENT_MAX_HELD_MESSAGES is invalid" in result.stderr.splitlines()[-1]
