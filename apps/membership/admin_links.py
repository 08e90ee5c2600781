"""Links that other apps add to the admin pages of accounts and members.

Membership imports no other app, yet staff editing an account in admin
want its health page, which lifecycle owns. An app registers a link from
its `AppConfig.ready`, and the account or member change page lists the
registered links under "Related pages".
"""

from collections.abc import Callable

from django.db.models import Model

from apps.membership.registries import register_named

# Called as build_url(obj) with a saved account or member; returns the URL.
LinkBuilder = Callable[[Model], str]

_links: dict[str, dict[str, LinkBuilder]] = {"account": {}, "member": {}}


def register_admin_link(model: str, label: str, build_url: LinkBuilder) -> None:
    """Add a link called `label` to the admin page of each account or member.

    `model` is "account" or "member". Registering the same function twice
    under a label is a no-op, and another function under a taken label
    raises ValueError.
    """
    if model not in _links:
        raise ValueError(
            f"Invalid admin page {model!r}: register links on the 'account' or "
            "'member' page."
        )
    register_named(
        _links[model], label=f"{model} admin link", name=label, function=build_url
    )


def list_admin_links(model: str, obj: Model) -> list[tuple[str, str]]:
    """Return (label, URL) of each link registered for the page, by label."""
    return [(label, build(obj)) for label, build in sorted(_links[model].items())]
