import json


def test_healthz_reports_database_and_redis_up_worker_missing(client, db):
    response = client.get("/healthz")

    body = json.loads(response.content)
    assert response.status_code == 200
    assert body["checks"]["database"] == {"ok": True}
    assert body["checks"]["redis"] == {"ok": True}


def test_healthz_redis_down_is_503(client, db, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"

    response = client.get("/healthz")

    body = json.loads(response.content)
    assert response.status_code == 503
    assert body["status"] == "down"
    assert body["checks"]["redis"]["ok"] is False
    assert body["checks"]["worker"]["error"] == "skipped: redis is down"


def test_healthz_rejects_post(client, db):
    assert client.post("/healthz").status_code == 405
