"""Summaries that other apps add to a member's home page.

Membership imports no other app, and the portal that draws the home page
may not import advocacy, so an app that owns something the home page shows
(points and badges, for example) registers a builder from its
`AppConfig.ready`. The portal calls each one with the member.
"""

from collections.abc import Callable
from typing import Any

from apps.membership.models import Member

# Called as build(member); returns a dict for the page's template, or None
# when there is nothing to show. It should run a fixed number of queries.
PanelBuilder = Callable[[Member], dict[str, Any] | None]

_builders: dict[str, PanelBuilder] = {}


def register_home_panel(name: str, build: PanelBuilder) -> None:
    """Add the summary `name`, built by `build(member)`, to every member's home.

    Registering the same function twice under a name is a no-op, so a
    repeated `ready()` does no harm. A different function under a taken
    name raises ValueError.
    """
    registered = _builders.get(name)
    if registered is not None and registered is not build:
        raise ValueError(
            f"The home panel {name!r} is already registered by "
            f"{registered.__module__}.{registered.__qualname__}; choose another name."
        )
    _builders[name] = build


def build_home_panels(member: Member) -> dict[str, dict[str, Any]]:
    """Return each registered panel's data by name, leaving out empty ones."""
    panels = {}
    for name in sorted(_builders):
        data = _builders[name](member)
        if data is not None:
            panels[name] = data
    return panels
