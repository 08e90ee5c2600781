"""The registry of activity event kinds and of reactions to them.

Each app registers the kinds it records, and the handlers that react to other
apps' events, from its `AppConfig.ready`. Lifecycle itself never imports the
apps that fill the registry, which keeps the dependency direction one-way.
"""

import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

KIND_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")


@dataclass(frozen=True)
class EventKind:
    """A registered kind: a dotted name, or a family such as `product.*`."""

    name: str
    description: str
    counts_as_active: bool = True
    from_integrations: bool = False


_kinds: dict[str, EventKind] = {}
_families: dict[str, EventKind] = {}
_handlers: dict[str, list[Callable]] = defaultdict(list)


def register_kind(
    name: str,
    description: str,
    *,
    counts_as_active: bool = True,
    from_integrations: bool = False,
) -> None:
    """Register an event kind; `prefix.*` registers every kind under a prefix.

    `counts_as_active` sets whether an event of this kind makes its member an
    active member for reporting and scoring. `from_integrations` sets whether
    the event batch API and Segment sources may record it. Kinds that the
    hub records itself leave it off: their handlers award points and their
    plays act, so an integration must not be able to claim them.
    """
    kind = EventKind(name, description, counts_as_active, from_integrations)
    if name.endswith(".*"):
        prefix = name[:-1]
        if not KIND_PATTERN.match(prefix + "x"):
            raise ValueError(f"invalid event kind family {name!r}")
        _families[prefix] = kind
        return
    if not KIND_PATTERN.match(name):
        raise ValueError(
            f"invalid event kind {name!r}: use lower-case dotted words, "
            "for example community.reply_posted"
        )
    _kinds[name] = kind


def get_kind(name: str) -> EventKind | None:
    """Return the registered kind for a name, looking in families too."""
    if name in _kinds:
        return _kinds[name]
    if not KIND_PATTERN.match(name):
        return None
    for prefix, family in _families.items():
        if name.startswith(prefix):
            return family
    return None


def list_kinds() -> list[EventKind]:
    """Return every registered kind and family, sorted by name."""
    return sorted([*_kinds.values(), *_families.values()], key=lambda k: k.name)


def list_inactive_kind_names() -> list[str]:
    """Return the names of kinds that do not make a member active."""
    return sorted(k.name for k in _kinds.values() if not k.counts_as_active)


def subscribe(kind: str, handler: Callable) -> None:
    """Call `handler(event)` inside the transaction that records each `kind` event."""
    if handler not in _handlers[kind]:
        _handlers[kind].append(handler)


def list_handlers(kind: str) -> list[Callable]:
    return list(_handlers.get(kind, ()))


# Health score measures and band changes --------------------------------------

# A measure source builds the SQL of one scorecard measure kind for a level
# ("member" or "account"). The SQL must return one row (subject_id, value) per
# subject in %(subject_ids)s, a bigint array of member or account ids, and may
# read %(since)s (the start of the measure's window) and %(now)s. Subjects it
# returns no row for get a NULL value, which scores 0. The builder returns
# None for a level the measure does not apply to.
MeasureSqlBuilder = Callable[[str], str | None]

_measure_sources: dict[str, MeasureSqlBuilder] = {}
_band_change_handlers: list[Callable] = []


@dataclass(frozen=True)
class BandChange:
    """A subject's health band changed when its score was refreshed.

    `event_id` is the `lifecycle.health_band_changed` event recorded for a
    member. Account band changes record no event, because an event needs a
    member, so the account's daily snapshots are their history.
    """

    level: str
    subject_id: int
    account_id: int | None
    previous_band: str
    band: str
    score: int
    changed_at: datetime
    event_id: int | None = None


def register_measure_source(kind: str, sql_builder: MeasureSqlBuilder) -> None:
    """Register the SQL builder of a scorecard measure kind that another app owns."""
    _measure_sources[kind] = sql_builder


def get_measure_source(kind: str) -> MeasureSqlBuilder | None:
    return _measure_sources.get(kind)


def subscribe_band_change(handler: Callable) -> None:
    """Call `handler(change)` with a BandChange for each band change, both levels.

    Handlers run inside the transaction that stores the new scores. Member
    band changes are also recorded as `lifecycle.health_band_changed` events,
    whose kind handlers run in the same transaction too.
    """
    if handler not in _band_change_handlers:
        _band_change_handlers.append(handler)


def list_band_change_handlers() -> list[Callable]:
    return list(_band_change_handlers)
