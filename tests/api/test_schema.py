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
