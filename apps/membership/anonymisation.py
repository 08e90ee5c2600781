"""Handlers that erase other apps' copies of a member's personal data.

Membership imports no other app, so an app that copies a member's name,
email or external ID into its own rows registers a handler from its
`AppConfig.ready`. `apps.membership.services.profiles.delete_member_account`
calls every handler inside its transaction, after the member row contains the
anonymised values, so a handler can copy those values over its own.
"""

from collections.abc import Callable

from apps.membership.models import Member
from apps.membership.registries import register_named

# Called as handler(member=...); returns how many rows it changed.
AnonymiseHandler = Callable[..., int]

_handlers: dict[str, AnonymiseHandler] = {}


def register_anonymise_handler(name: str, handler: AnonymiseHandler) -> None:
    """Call `handler(member=...)` each time a member is anonymised.

    Registering the same function twice under a name is a no-op, so a
    repeated `ready()` does no harm. A different function under a taken
    name raises ValueError.
    """
    register_named(_handlers, label="anonymise handler", name=name, function=handler)


def run_anonymise_handlers(*, member: Member) -> dict[str, int]:
    """Call every registered handler and return its count under its name."""
    return {name: handler(member=member) for name, handler in sorted(_handlers.items())}
