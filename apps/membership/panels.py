"""Summaries that other apps add to a member's home page and public profile.

Membership imports no other app, and the portal that draws the home page
may not import advocacy, so an app that owns something these pages show
(points and badges, community counters) registers a builder from its
`AppConfig.ready`. The page calls each one with the member.
"""

from collections.abc import Callable
from typing import Any

from apps.membership.models import Member
from apps.membership.registries import register_named

# Called as build(member); returns a dict for the page's template, or None
# when there is nothing to show. It should run a fixed number of queries.
PanelBuilder = Callable[[Member], dict[str, Any] | None]


class PanelRegistry:
    """Builders of the summaries one page shows, by name."""

    def __init__(self, page: str) -> None:
        self.page = page
        self._builders: dict[str, PanelBuilder] = {}

    def register(self, name: str, build: PanelBuilder) -> None:
        """Add the summary `name`, built by `build(member)`, to the page.

        Registering the same function twice under a name is a no-op, so a
        repeated `ready()` does no harm. A different function under a taken
        name raises ValueError.
        """
        register_named(
            self._builders, label=f"{self.page} panel", name=name, function=build
        )

    def build(self, member: Member) -> dict[str, dict[str, Any]]:
        """Return each registered panel's data by name, leaving out empty ones."""
        panels = {}
        for name in sorted(self._builders):
            data = self._builders[name](member)
            if data is not None:
                panels[name] = data
        return panels


_home = PanelRegistry("home")
# A profile section's dict names its template under "template"; the profile
# page includes it with the dict as `section`.
_profile = PanelRegistry("profile")


def register_home_panel(name: str, build: PanelBuilder) -> None:
    """Add the summary `name`, built by `build(member)`, to every member's home."""
    _home.register(name, build)


def build_home_panels(member: Member) -> dict[str, dict[str, Any]]:
    """Return each registered home panel's data by name, leaving out empty ones."""
    return _home.build(member)


def register_profile_section(name: str, build: PanelBuilder) -> None:
    """Add the section `name`, built by `build(member)`, to public profiles.

    The profile shows sections only for members who let others see their
    activity.
    """
    _profile.register(name, build)


def build_profile_sections(member: Member) -> dict[str, dict[str, Any]]:
    """Return each registered profile section's data by name, leaving out empty ones."""
    return _profile.build(member)
