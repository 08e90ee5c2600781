import logging

import redis
from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from rm6.celery import app as celery_app
from rm6.settings.base import redis_client_url

logger = logging.getLogger(__name__)

WORKER_PING_TIMEOUT = 1.0


def _check_database() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        logger.warning("health check: database unreachable: %s", type(exc).__name__)
        return {"ok": False, "error": f"database unreachable: {type(exc).__name__}"}
    return {"ok": True}


def _check_redis() -> dict:
    try:
        client = redis.Redis.from_url(
            redis_client_url(settings.REDIS_URL), socket_timeout=2
        )
        client.ping()
    except Exception as exc:
        logger.warning("health check: redis unreachable: %s", type(exc).__name__)
        return {"ok": False, "error": f"redis unreachable: {type(exc).__name__}"}
    return {"ok": True}


def _check_worker() -> dict:
    try:
        replies = celery_app.control.ping(timeout=WORKER_PING_TIMEOUT)
    except Exception as exc:
        logger.warning("health check: worker ping failed: %s", type(exc).__name__)
        return {
            "ok": False,
            "workers": 0,
            "error": f"ping failed: {type(exc).__name__}",
        }
    if not replies:
        return {
            "ok": False,
            "workers": 0,
            "error": "no Celery worker answered the ping",
        }
    return {"ok": True, "workers": len(replies)}


@never_cache
@require_GET
def healthz(request):
    """Report the database, Redis and Celery workers.

    The status is 503 when the database or Redis is down, because the web
    process cannot serve then. A missing worker gives "degraded" with 200:
    pages still work, only background work (scores, plays) waits.
    """
    checks = {
        "database": _check_database(),
        "redis": _check_redis(),
    }
    checks["worker"] = (
        _check_worker()
        if checks["redis"]["ok"]
        else {"ok": False, "workers": 0, "error": "skipped: redis is down"}
    )
    if not (checks["database"]["ok"] and checks["redis"]["ok"]):
        overall, status = "down", 503
    elif not checks["worker"]["ok"]:
        overall, status = "degraded", 200
    else:
        overall, status = "ok", 200
    return JsonResponse({"status": overall, "checks": checks}, status=status)
