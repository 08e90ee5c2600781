"""Handlers that erase other apps' copies of a member's personal data.

Membership imports no other app, so an app that copies a member's name,
email or external ID into its own rows registers a handler from its
`AppConfig.ready`. `apps.membership.services.profiles.delete_member_account`
calls every handler inside its transaction, after the member row contains the
anonymised values, so a handler can copy those values over its own.
"""

from collections.abc import Callable

from apps.membership.models import Member

# Called as handler(member=...); returns how many rows it changed.
AnonymiseHandler = Callable[..., int]

_handlers: dict[str, AnonymiseHandler] = {}


def register_anonymise_handler(name: str, handler: AnonymiseHandler) -> None:
    """Call `handler(member=...)` each time a member is anonymised.

    Registering the same function twice under a name is a no-op, so a
    repeated `ready()` does no harm. A different function under a taken
    name raises ValueError.
    """
    registered = _handlers.get(name)
    if registered is not None and registered is not handler:
        raise ValueError(
            f"The anonymise handler {name!r} is already registered by "
            f"{registered.__module__}.{registered.__qualname__}; choose another name."
        )
    _handlers[name] = handler


def run_anonymise_handlers(*, member: Member) -> dict[str, int]:
    """Call every registered handler and return its count under its name."""
    return {name: handler(member=member) for name, handler in sorted(_handlers.items())}
