"""The registry of activity event kinds and of reactions to them.

Each app registers the kinds it records, and the handlers that react to other
apps' events, from its `AppConfig.ready`. Lifecycle itself never imports the
apps that fill the registry, which keeps the dependency direction one-way.
"""

import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

KIND_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")


@dataclass(frozen=True)
class EventKind:
    """A registered kind: a dotted name, or a family such as `product.*`."""

    name: str
    description: str
    counts_as_active: bool = True


_kinds: dict[str, EventKind] = {}
_families: dict[str, EventKind] = {}
_handlers: dict[str, list[Callable]] = defaultdict(list)


def register_kind(
    name: str, description: str, *, counts_as_active: bool = True
) -> None:
    """Register an event kind; `prefix.*` registers every kind under a prefix.

    `counts_as_active` says whether an event of this kind makes its member an
    active member for reporting and scoring.
    """
    kind = EventKind(name, description, counts_as_active)
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
