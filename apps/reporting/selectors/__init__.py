"""Read-only KPI queries for the reporting pages and API, one module per topic.

A window is a pair of dates `[start, end)`: it starts at 00:00 UTC on
`start` and stops just before 00:00 UTC on `end`. Each function that reads
the database runs one SQL statement, whatever the number of rows it reads.
"""

from apps.reporting.selectors.activity import (
    MAU_DAYS,
    DailyActivity,
    SegmentActivity,
    count_active_members,
    get_mean_dau_mau,
    list_active_members_by_segment,
    list_daily_activity,
)

__all__ = [
    "MAU_DAYS",
    "DailyActivity",
    "SegmentActivity",
    "count_active_members",
    "get_mean_dau_mau",
    "list_active_members_by_segment",
    "list_daily_activity",
]
