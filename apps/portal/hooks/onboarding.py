from django.conf import settings
from django.core import checks

from apps.lifecycle.delivery.visibility import register_visibility_filter
from apps.lifecycle.registry import get_kind, register_kind, register_measure_source
from apps.membership.exports import register_export_section
from apps.membership.merge import register_merge_handler
from apps.portal.selectors.hubs import filter_visible_hub_ids
from apps.portal.selectors.onboarding import (
    build_onboarding_share_sql,
    export_member_onboarding,
)
from apps.portal.services.onboarding import (
    PATH_COMPLETED_KIND,
    STEP_DONE_KIND,
    STEP_UNDONE_KIND,
    move_merged_member_progress,
)


def check_value_moment_kind(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Warn when RM6_VALUE_MOMENT_KIND names no registered event kind.

    Time-to-value counts the first event of that kind, so a misspelt kind
    would leave every member without a value moment.
    """
    kind = settings.RM6_VALUE_MOMENT_KIND
    if get_kind(kind) is not None:
        return []
    return [
        checks.Warning(
            f"RM6_VALUE_MOMENT_KIND is {kind!r}, which is not a registered "
            "activity event kind, so no member would ever reach a value moment.",
            hint=f"Use a registered kind such as {PATH_COMPLETED_KIND}.",
            id="portal.W001",
        )
    ]


def connect() -> None:
    register_measure_source("onboarding_share", build_onboarding_share_sql)
    register_kind(STEP_DONE_KIND, "A member ticked an onboarding step done by hand.")
    register_kind(STEP_UNDONE_KIND, "A member unticked an onboarding step.")
    # Recorded by the progress sync, not by the member, and dated when the
    # last step was done: it marks the value moment, not activity.
    register_kind(
        PATH_COMPLETED_KIND,
        "A member finished every published step of an onboarding path.",
        counts_as_active=False,
    )
    register_kind("portal.hub_viewed", "A member viewed a use-case hub.")
    register_visibility_filter("portal.usecasehub", filter_visible_hub_ids)
    register_export_section("onboarding", export_member_onboarding)
    register_merge_handler("portal_onboarding", move_merged_member_progress)
    checks.register(check_value_moment_kind)
