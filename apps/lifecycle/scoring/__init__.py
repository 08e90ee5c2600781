"""Health scores of members and accounts, computed in SQL a batch at a time.

The active scorecard of each level (`Scorecard.is_active`) decides the
measures; without one, the built-in default of that level applies. See
`measures` for the defaults and the normalisation, `statements` for the SQL
and `refresh` for the batches, band changes and staleness.
"""

from apps.lifecycle.scoring.measures import (
    DEFAULT_ACCOUNT_SCORECARD,
    DEFAULT_MEMBER_SCORECARD,
    MAX_MEASURES,
    MeasureSpec,
    ScorecardSpec,
    band_for,
    describe_measure,
    get_scorecard_spec,
    list_measure_errors,
)
from apps.lifecycle.scoring.refresh import (
    BATCH_SIZE,
    DECAY_INTERVAL,
    StalePassLocked,
    is_lock_timeout,
    iter_id_batches,
    list_stale_account_ids,
    list_stale_member_ids,
    refresh_account_health_scores,
    refresh_member_health_scores,
    refresh_stale_account_scores,
    refresh_stale_member_scores,
)

__all__ = [
    "BATCH_SIZE",
    "DECAY_INTERVAL",
    "DEFAULT_ACCOUNT_SCORECARD",
    "DEFAULT_MEMBER_SCORECARD",
    "MAX_MEASURES",
    "MeasureSpec",
    "ScorecardSpec",
    "StalePassLocked",
    "band_for",
    "describe_measure",
    "get_scorecard_spec",
    "is_lock_timeout",
    "iter_id_batches",
    "list_measure_errors",
    "list_stale_account_ids",
    "list_stale_member_ids",
    "refresh_account_health_scores",
    "refresh_member_health_scores",
    "refresh_stale_account_scores",
    "refresh_stale_member_scores",
]
