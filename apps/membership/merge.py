"""Handlers that move other apps' data when two duplicate members are merged.

Membership imports no other app, so each app that stores rows pointing at a
member registers a handler from its `AppConfig.ready`.
`apps.membership.services.merge.merge_members` calls every handler inside
its transaction, with both member rows locked.
"""

from collections.abc import Callable

from apps.membership.models import Member
from apps.membership.registries import register_named

# Called as handler(survivor=..., duplicate=...); returns how many rows of
# each kind it moved, for example {"topics": 3, "replies": 5}.
MergeHandler = Callable[..., dict[str, int]]

_handlers: dict[str, MergeHandler] = {}

# The name under which membership reports what it moved itself.
OWN_HANDLER_NAME = "membership"


def register_merge_handler(name: str, handler: MergeHandler) -> None:
    """Call `handler(survivor=..., duplicate=...)` in every member merge.

    Registering the same function twice under a name is a no-op, so a
    repeated `ready()` does no harm. A different function under a taken
    name, or the name membership uses itself, raises ValueError.
    """
    if name == OWN_HANDLER_NAME:
        raise ValueError(f"The merge handler name {name!r} is membership's own.")
    register_named(_handlers, label="merge handler", name=name, function=handler)


def list_merge_handlers() -> list[tuple[str, MergeHandler]]:
    """Return the registered handlers as (name, handler), sorted by name."""
    return sorted(_handlers.items())


def run_merge_handlers(*, survivor: Member, duplicate: Member) -> dict[str, dict]:
    """Call every registered handler and return its counts under its name."""
    return {
        name: handler(survivor=survivor, duplicate=duplicate)
        for name, handler in list_merge_handlers()
    }
