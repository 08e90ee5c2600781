"""Pieces every benchmark script shares: its own database, and the machine.

The scripts run as `python bench/<name>.py`, which puts this folder on the
import path, so they import this module by its plain name.
"""

import os
import platform
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg


def database_urls(database_url: str, name: str) -> tuple[str, str]:
    """Return the URL of the server's maintenance database and of `name`."""
    parts = urlsplit(database_url)
    server = urlunsplit(parts._replace(path="/postgres"))
    bench = urlunsplit(parts._replace(path=f"/{name}"))
    return server, bench


def create_database(server_url: str, name: str) -> None:
    """Create the bench database `name` unless it exists."""
    with psycopg.connect(server_url, autocommit=True) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [name]
        ).fetchone()
        if not exists:
            print(f"creating database {name}", flush=True)
            connection.execute(f'CREATE DATABASE "{name}"')


def machine_description(
    *, database_settings: list[str], services: list[str]
) -> list[str]:
    """Describe CPU, memory, OS and PostgreSQL, then the `services` lines.

    `database_settings` names the PostgreSQL settings to report. Django must
    be set up, because the database is read through its connection.
    """
    from django.db import connection

    cpu = _first_value(Path("/proc/cpuinfo"), "model name")
    memory = _first_value(Path("/proc/meminfo"), "MemTotal")
    if memory != "unknown":
        memory = f"{int(memory.split()[0]) / 1024 / 1024:.1f} GiB"
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        version = cursor.fetchone()[0].split(" on ")[0]
        settings = []
        for name in database_settings:
            cursor.execute(f"SHOW {name}")
            settings.append(f"{name} {cursor.fetchone()[0]}")
    return [
        f"CPU: {cpu}, {os.cpu_count()} logical CPUs",
        f"RAM: {memory}",
        f"OS: {platform.platform()}, Python {platform.python_version()}",
        f"Database: {version} ({', '.join(settings)}), on the same machine",
        *services,
    ]


def _first_value(path: Path, key: str) -> str:
    for line in path.read_text().splitlines():
        if line.startswith(key):
            return line.split(":", 1)[1].strip()
    return "unknown"
