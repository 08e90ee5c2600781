import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.django_db


def test_schema_lists_api_paths(api_client):
    response = api_client.get("/api/schema/", {"format": "json"})

    paths = response.json()["paths"]
    assert response.status_code == 200
    expected = [
        "/api/v1/accounts/",
        "/api/v1/accounts/{id}/",
        "/api/v1/events/",
        "/api/v1/events/batch/",
        "/api/v1/events/{id}/",
        "/api/v1/health-scores/",
        "/api/v1/health-scores/{member_id}/",
        "/api/v1/members/",
        "/api/v1/members/{id}/",
        "/api/v1/consent-purposes/",
        "/api/v1/members/{member_id}/consents/",
        "/api/v1/members/{member_id}/consents/{purpose_key}/",
    ]
    missing = [path for path in expected if path not in paths]
    assert missing == []
    assert all(path.startswith("/api/v1/") for path in paths)


def test_docs_served_without_cdn(api_client):
    response = api_client.get("/api/docs/")

    html = response.content.decode()
    assert response.status_code == 200
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui.css" in html
    assert "cdn.jsdelivr.net" not in html
    assert "unpkg.com" not in html


def test_schema_generates_without_warnings():
    """Every field has a type and every enum a stable name in the schema."""
    command = [
        sys.executable,
        "manage.py",
        "spectacular",
        "--validate",
        "--fail-on-warn",
        "--file",
        os.devnull,
    ]

    result = subprocess.run(
        command,
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "rm6.settings.test"},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr


def test_schema_describes_post_author(api_client):
    response = api_client.get("/api/schema/", {"format": "json"})

    author = response.json()["components"]["schemas"]["Author"]
    assert author["properties"] == {
        "id": {"type": "integer"},
        "name": {"type": "string"},
    }
