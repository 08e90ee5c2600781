"""The member's own data as one JSON document, with sections from every app.

Membership imports no other app, so the apps that hold a member's data
register a section from their `AppConfig.ready`, and `build_member_export`
calls each one.
"""

from collections.abc import Callable
from typing import Any

from django.utils import timezone

from apps.membership.models import Member
from apps.membership.registries import register_named

ExportSection = Callable[[Member], Any]

_sections: dict[str, ExportSection] = {}

# The sections membership writes itself; no app may register these names.
OWN_SECTIONS = ("profile", "account", "consents", "affiliations")


def register_export_section(name: str, build: ExportSection) -> None:
    """Add a section to every data export, built by `build(member)`.

    The callable returns data that DjangoJSONEncoder can encode. Registering
    the same function twice under a name is a no-op, so a repeated `ready()`
    does no harm. A different function under a taken name raises ValueError.
    """
    if name in OWN_SECTIONS:
        raise ValueError(f"The export section {name!r} is membership's own.")
    register_named(_sections, label="export section", name=name, function=build)


def list_export_sections() -> list[str]:
    return sorted(_sections)


def build_member_export(member: Member) -> dict[str, Any]:
    """Return everything the hub stores about the member, for them to download."""
    user = member.user
    export: dict[str, Any] = {
        "exported_at": timezone.now(),
        "profile": {
            "id": member.pk,
            "email": user.email,
            "first_name": user.first_name,
            "last_name": user.last_name,
            "display_name": member.display_name,
            "headline": member.headline,
            "bio": member.bio,
            "role": member.role,
            "lifecycle_stage": member.lifecycle_stage,
            "time_zone": member.time_zone,
            "locale": member.locale,
            "email_notifications": member.email_notifications,
            "in_app_notifications": member.in_app_notifications,
            "show_headline": member.show_headline,
            "show_bio": member.show_bio,
            "show_account": member.show_account,
            "show_activity": member.show_activity,
            "external_id": member.external_id,
            "created_at": member.created_at,
            "first_signed_in_at": member.first_signed_in_at,
            "last_signed_in_at": member.last_signed_in_at,
            "deactivated_at": member.deactivated_at,
        },
        "account": {"name": member.account.name} if member.account else None,
        "consents": [
            {
                "purpose": grant.purpose.key,
                "purpose_name": grant.purpose.name,
                "source": grant.source,
                "evidence": grant.evidence,
                "granted_at": grant.granted_at,
                "expires_on": grant.expires_on,
                "expires_at": grant.expires_at,
                "revoked_at": grant.revoked_at,
                "revoked_source": grant.revoked_source,
            }
            for grant in member.consents.select_related("purpose")
        ],
        "affiliations": [
            {
                "account": affiliation.account.name,
                "relationship": affiliation.relationship,
                "created_at": affiliation.created_at,
            }
            for affiliation in member.affiliations.select_related("account").order_by(
                "created_at", "id"
            )
        ],
    }
    for name in list_export_sections():
        export[name] = _sections[name](member)
    return export
