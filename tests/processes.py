"""Running code against the project's settings in a process of its own."""

import os
import subprocess
import sys
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent


def read_setting(
    name: str, settings_module: str, *, unset: tuple[str, ...] = (), **environment
) -> subprocess.CompletedProcess:
    """Load `settings_module` in a new process and print the setting `name`.

    The process gets this one's environment without the variables in `unset`
    and with `environment` added, so a settings default or a bad value can be
    tried without touching the running settings.
    """
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env.update(environment, DJANGO_SETTINGS_MODULE=settings_module)
    code = f"from django.conf import settings; print(settings.{name})"

    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
