from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.lifecycle.models import HealthScore
from apps.lifecycle.scoring import band_for


def create_health_score(*, member, score=75, computed_at=None) -> HealthScore:
    return HealthScore.objects.create(
        member=member,
        score=score,
        band=band_for(score),
        components={"activity": {"value": 12, "score": 60, "weight": 0.6}},
        computed_at=computed_at or timezone.now(),
    )


def result_ids(response, key: str = "id") -> list:
    return [row[key] for row in response.json()["results"]]


def count_queries(client, url: str) -> int:
    """Return how many queries one GET of `url` runs, asserting it succeeds."""
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries.captured_queries)
