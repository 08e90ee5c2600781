"""The data freshness KPI: how long ago each data source last ran successfully.

The sources are CRM sync, usage ingestion and score computation, which
record their runs through `apps.membership.services.data_sources`. Usage
ingestion is judged per origin: the event batch API and each active Segment
source. A source is fresh while the age of its last success is under its SLA.
"""

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from apps.lifecycle.models import SegmentSource
from apps.membership.models import DataSourceRun
from apps.membership.services.data_sources import (
    EVENT_BATCH_API_ORIGIN,
    segment_source_origin,
)

logger = logging.getLogger(__name__)

Source = DataSourceRun.Source

DEFAULT_SLA_HOURS = 24
# Ten years. A larger number would make no source stale, and Python's
# timedelta overflows for numbers such as 1e12 or inf.
MAX_SLA_HOURS = 87_600


@dataclass(frozen=True)
class SourceFreshness:
    """One data source origin's last runs, judged against its SLA at `now`."""

    source: str
    # Empty for the sources with one row; see DataSourceRun.origin.
    origin: str
    label: str
    sla: timedelta
    now: datetime
    last_success_at: datetime | None
    last_failure_at: datetime | None
    last_error: str

    @property
    def has_data(self) -> bool:
        return self.last_success_at is not None

    @property
    def age(self) -> timedelta | None:
        """Time since the last success; None when the source never succeeded."""
        if self.last_success_at is None:
            return None
        return self.now - self.last_success_at

    @property
    def is_fresh(self) -> bool | None:
        """Whether the age is under the SLA; None ("no data") without a success."""
        if self.age is None:
            return None
        return self.age < self.sla

    @property
    def is_stale(self) -> bool:
        """Whether the source succeeded once but not within its SLA."""
        return self.is_fresh is False

    @property
    def is_failing(self) -> bool:
        """Whether the latest run failed: a failure newer than any success."""
        if self.last_failure_at is None:
            return False
        return (
            self.last_success_at is None or self.last_failure_at > self.last_success_at
        )


def _hours(value, *, name: str) -> timedelta:
    try:
        hours = float(value)
    except (TypeError, ValueError):
        raise ImproperlyConfigured(
            f"RM6_DATA_FRESHNESS_SLA_HOURS has the invalid value {value!r} for "
            f"{name}; give a number of hours, such as 24."
        ) from None
    if not 0 < hours <= MAX_SLA_HOURS:
        raise ImproperlyConfigured(
            f"RM6_DATA_FRESHNESS_SLA_HOURS gives {name} {value!r} hours; "
            f"give a number of hours above 0 and at most {MAX_SLA_HOURS:,}."
        )
    return timedelta(hours=hours)


def parse_sla_hours(value) -> dict[str, timedelta]:
    """Return each source's SLA from the RM6_DATA_FRESHNESS_SLA_HOURS value.

    The value is one number of hours for every source, or a mapping from
    source to hours: a dict, or a string such as
    "crm_sync=24,usage_ingestion=2". A source left out of a mapping gets
    DEFAULT_SLA_HOURS. Raise ImproperlyConfigured for an unknown source or a
    number that is not above 0.
    """
    if isinstance(value, str) and "=" in value:
        pairs = [item.partition("=") for item in value.split(",") if item.strip()]
        keys = [key.strip() for key, _, _ in pairs]
        repeated = sorted({key for key in keys if keys.count(key) > 1})
        if "" in keys or repeated:
            raise ImproperlyConfigured(
                f"RM6_DATA_FRESHNESS_SLA_HOURS {value!r} has a pair without a "
                f"source or names a source twice ({', '.join(repeated) or 'empty'}); "
                "write source=hours pairs such as crm_sync=24,usage_ingestion=2."
            )
        value = {key.strip(): hours.strip() for key, _, hours in pairs}
    if not isinstance(value, Mapping):
        sla = _hours(value, name="every source")
        return dict.fromkeys(Source.values, sla)

    unknown = sorted(set(value) - set(Source.values))
    if unknown:
        raise ImproperlyConfigured(
            f"RM6_DATA_FRESHNESS_SLA_HOURS names the unknown data source(s) "
            f"{', '.join(unknown)}; use {', '.join(Source.values)}."
        )
    return {
        source: _hours(value.get(source, DEFAULT_SLA_HOURS), name=source)
        for source in Source.values
    }


def get_sla_by_source() -> dict[str, timedelta]:
    """Return each source's SLA from settings, DEFAULT_SLA_HOURS when unset."""
    value = getattr(settings, "RM6_DATA_FRESHNESS_SLA_HOURS", DEFAULT_SLA_HOURS)
    return parse_sla_hours(value)


def check_sla_setting(**kwargs) -> list[checks.CheckMessage]:
    """Report an RM6_DATA_FRESHNESS_SLA_HOURS value that the selector rejects."""
    try:
        get_sla_by_source()
    except ImproperlyConfigured as error:
        return [
            checks.Error(
                str(error),
                hint="Set one number of hours, or source=hours pairs separated "
                "by commas.",
                id="reporting.E001",
            )
        ]
    return []


def _list_origins() -> list[tuple[str, str, str]]:
    """Return the (source, origin, label) of every row the panel shows, in order.

    Usage ingestion has a row for the event batch API and one for each active
    Segment source, named by the source's current name. Rows of deleted and
    inactive Segment sources stay stored but are left out, because such a
    source cannot send and its row would only turn stale. Reactivating a
    source shows its row again.
    """
    segment_sources = SegmentSource.objects.filter(is_active=True).order_by(
        "name", "pk"
    )
    origins = []
    for source, label in Source.choices:
        if source != Source.USAGE_INGESTION:
            origins.append((source, "", label))
            continue
        origins.append((source, EVENT_BATCH_API_ORIGIN, f"{label}: event batch API"))
        origins.extend(
            (
                source,
                segment_source_origin(pk),
                f"{label}: Segment source “{name}”",
            )
            for pk, name in segment_sources.values_list("pk", "name")
        )
    return origins


def list_data_freshness(*, now: datetime) -> list[SourceFreshness]:
    """Return every data source origin's freshness at `now`, in two SQL queries.

    The queries read the stored runs and the active Segment sources, so their
    number does not grow with the number of sources. An origin with no stored
    run, or with failures only, has no data: its age and `is_fresh` are None,
    never 0 or fresh.
    """
    try:
        slas = get_sla_by_source()
    except ImproperlyConfigured as error:
        # `manage.py check` reports the setting (reporting.E001). A page that
        # reads it still shows the runs, judged against the default SLA.
        logger.error("data freshness uses the default SLA: %s", error)
        slas = dict.fromkeys(Source.values, timedelta(hours=DEFAULT_SLA_HOURS))
    runs = {(run.source, run.origin): run for run in DataSourceRun.objects.all()}

    rows = []
    for source, origin, label in _list_origins():
        run = runs.get((source, origin))
        rows.append(
            SourceFreshness(
                source=source,
                origin=origin,
                label=label,
                sla=slas[source],
                now=now,
                last_success_at=run.last_success_at if run else None,
                last_failure_at=run.last_failure_at if run else None,
                last_error=run.last_error if run else "",
            )
        )
    return rows
