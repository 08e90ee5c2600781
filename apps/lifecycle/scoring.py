"""Member health scores, computed in SQL over all members of a batch at once.

The default member scorecard has two measures:
- activity: events of kinds that count as active in the last 30 days,
  0 events scoring 0 and 20 or more scoring 100, linear between;
- recency: days since the member's last active event, 3 days or fewer
  scoring 100 and 30 or more scoring 0, linear between.
The score is 60 % activity plus 40 % recency, rounded; the bands are red
below 40, yellow from 40 to 69 and green from 70.
"""

import logging
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from apps.lifecycle import registry
from apps.lifecycle.models import ActivityEvent, HealthBand
from apps.membership.models import Member

logger = logging.getLogger(__name__)

ACTIVITY_WINDOW = timedelta(days=30)
ACTIVITY_FULL_AT = 20
RECENCY_FULL_DAYS = 3
RECENCY_ZERO_DAYS = 30
ACTIVITY_WEIGHT = 0.6
RECENCY_WEIGHT = 0.4
# Scores older than this are recomputed even without new events, because
# the recency measure decays with time alone.
DECAY_INTERVAL = timedelta(days=1)


def band_for(score: int) -> str:
    """Return the band for a 0-100 score."""
    if score >= 70:
        return HealthBand.GREEN
    if score >= 40:
        return HealthBand.YELLOW
    return HealthBand.RED


_SCORE_SQL = """
WITH stats AS (
    SELECT m.id AS member_id,
           count(e.id) AS events_30d,
           max(e.occurred_at) AS last_active_at
    FROM membership_member m
    LEFT JOIN lifecycle_activityevent e
           ON e.member_id = m.id
          AND e.occurred_at >= %(since)s
          AND e.occurred_at <= %(now)s
          AND NOT (e.kind = ANY(%(inactive_kinds)s))
    WHERE m.id = ANY(%(member_ids)s)
    GROUP BY m.id
), measured AS (
    SELECT member_id,
           events_30d,
           extract(epoch FROM %(now)s - last_active_at) / 86400.0 AS days_idle
    FROM stats
), normalised AS (
    SELECT member_id, events_30d, days_idle,
           least(100.0, events_30d * 100.0 / %(activity_full_at)s) AS activity,
           CASE
               WHEN days_idle IS NULL THEN 0.0
               ELSE greatest(0.0, least(100.0,
                   (%(recency_zero)s - days_idle) * 100.0
                   / (%(recency_zero)s - %(recency_full)s)))
           END AS recency
    FROM measured
), scored AS (
    SELECT *,
           round(activity * %(activity_weight)s
                 + recency * %(recency_weight)s)::int AS score
    FROM normalised
), previous AS (
    SELECT member_id, band
    FROM lifecycle_healthscore
    WHERE member_id = ANY(%(member_ids)s)
), upserted AS (
    INSERT INTO lifecycle_healthscore
        (member_id, score, band, components, computed_at)
    SELECT member_id, score,
           CASE WHEN score >= 70 THEN 'green'
                WHEN score >= 40 THEN 'yellow'
                ELSE 'red' END,
           jsonb_build_object(
               'activity', jsonb_build_object(
                   'value', events_30d,
                   'score', round(activity),
                   'weight', %(activity_weight)s),
               'recency', jsonb_build_object(
                   'value', round(days_idle::numeric, 1),
                   'score', round(recency),
                   'weight', %(recency_weight)s)),
           %(now)s
    FROM scored
    ON CONFLICT (member_id) DO UPDATE
       SET score = EXCLUDED.score, band = EXCLUDED.band,
           components = EXCLUDED.components, computed_at = EXCLUDED.computed_at
    RETURNING member_id, score, band
), snapshot AS (
    INSERT INTO lifecycle_healthscoresnapshot (member_id, day, score, band)
    SELECT member_id, %(today)s, score, band FROM upserted
    ON CONFLICT (member_id, day) DO UPDATE
       SET score = EXCLUDED.score, band = EXCLUDED.band
)
SELECT u.member_id, p.band, u.band
FROM upserted u JOIN previous p USING (member_id)
WHERE p.band <> u.band
"""


@transaction.atomic
def refresh_member_health_scores(
    *, member_ids: list[int], now: datetime | None = None
) -> int:
    """Recompute the scores of the given members; return how many were scored.

    One statement scores the whole batch, writes today's snapshot and finds
    band changes, which are recorded as `lifecycle.health_band_changed`.
    """
    if not member_ids:
        return 0
    now = now or timezone.now()
    params = {
        "member_ids": list(member_ids),
        "now": now,
        "since": now - ACTIVITY_WINDOW,
        "today": now.date(),
        "inactive_kinds": registry.list_inactive_kind_names(),
        "activity_full_at": ACTIVITY_FULL_AT,
        "recency_full": RECENCY_FULL_DAYS,
        "recency_zero": RECENCY_ZERO_DAYS,
        "activity_weight": ACTIVITY_WEIGHT,
        "recency_weight": RECENCY_WEIGHT,
    }
    with connection.cursor() as cursor:
        cursor.execute(_SCORE_SQL, params)
        changes = cursor.fetchall()

    accounts = dict(
        Member.objects.filter(pk__in=[c[0] for c in changes]).values_list(
            "pk", "account_id"
        )
    )
    ActivityEvent.objects.bulk_create(
        ActivityEvent(
            member_id=member_id,
            account_id=accounts.get(member_id),
            kind="lifecycle.health_band_changed",
            occurred_at=now,
            properties={"from": old_band, "to": new_band},
        )
        for member_id, old_band, new_band in changes
    )
    return Member.objects.filter(pk__in=member_ids).count()


def list_stale_member_ids(
    *, now: datetime | None = None, after_id: int = 0, limit: int = 5000
) -> list[int]:
    """Return members with no score, active events newer than it, or a decayed one.

    Ids come in ascending order from `after_id`, so a caller can page through.
    """
    now = now or timezone.now()
    sql = """
        SELECT m.id
        FROM membership_member m
        LEFT JOIN lifecycle_healthscore h ON h.member_id = m.id
        WHERE m.id > %(after_id)s
          AND (h.member_id IS NULL
               OR h.computed_at < %(decayed_before)s
               OR EXISTS (
                   SELECT 1 FROM lifecycle_activityevent e
                   WHERE e.member_id = m.id
                     AND e.recorded_at > h.computed_at
                     AND NOT (e.kind = ANY(%(inactive_kinds)s))
               ))
        ORDER BY m.id
        LIMIT %(limit)s
    """
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            {
                "after_id": after_id,
                "decayed_before": now - DECAY_INTERVAL,
                "inactive_kinds": registry.list_inactive_kind_names(),
                "limit": limit,
            },
        )
        return [row[0] for row in cursor.fetchall()]
