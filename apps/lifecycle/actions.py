"""The registry of play step actions.

Lifecycle registers the built-in actions (wait, email, in-app notification,
CSM task, webhook); other apps register theirs (points, badge, advocacy ask)
from `AppConfig.ready`, so lifecycle never imports them. The play runner
looks an action up by name and calls its handler once per step run.
"""

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ActionContext:
    """The step run a handler acts on, and the objects around it."""

    play: object
    step: object
    enrolment: object
    step_run: object
    member: object | None
    account: object | None


@dataclass(frozen=True)
class ActionResult:
    """A handler's result: a short outcome shown in admin, and details."""

    outcome: str
    details: dict = field(default_factory=dict)


class ActionSkipped(Exception):
    """Raised by a handler that decides not to act; its message gives the reason."""


@dataclass(frozen=True)
class Action:
    """A registered action.

    `channel` names the fatigue-cap channel a handler touches (None for
    actions that touch no member, such as a CSM task), and `label` is shown
    in admin. `check_config`, when given, returns the (field, message) pairs
    wrong with a step's config, and admin shows them when the step is saved.
    `needs_member` marks actions that act on a member only, which admin
    rejects in plays that enrol accounts.
    """

    name: str
    label: str
    handler: Callable[[ActionContext], ActionResult]
    channel: str | None = None
    check_config: Callable[[dict], list[tuple[str, str]]] | None = None
    needs_member: bool = False


_actions: dict[str, Action] = {}


def register_action(
    name: str,
    handler: Callable[[ActionContext], ActionResult],
    *,
    label: str,
    channel: str | None = None,
    check_config: Callable[[dict], list[tuple[str, str]]] | None = None,
    needs_member: bool = False,
) -> None:
    """Register (or replace) the handler for a step action name."""
    _actions[name] = Action(
        name=name,
        label=label,
        handler=handler,
        channel=channel,
        check_config=check_config,
        needs_member=needs_member,
    )


def get_action(name: str) -> Action | None:
    return _actions.get(name)


def list_actions() -> list[Action]:
    """Return every registered action, sorted by name."""
    return sorted(_actions.values(), key=lambda a: a.name)
