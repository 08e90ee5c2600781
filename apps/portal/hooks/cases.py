"""Start-up registrations of support cases: event kinds, the open-cases
measure, notification visibility, member merges and data exports."""

from apps.lifecycle.delivery.visibility import register_visibility_filter
from apps.lifecycle.registry import register_kind, register_measure_source
from apps.membership.exports import register_export_section
from apps.membership.merge import register_merge_handler
from apps.portal.selectors.cases import (
    build_open_cases_sql,
    export_member_cases,
    filter_visible_case_ids,
)
from apps.portal.services.cases import move_merged_member_cases


def connect() -> None:
    register_kind("portal.case_filed", "A member filed a support case.")
    register_kind(
        "portal.case_replied", "A member replied on a support case they can see."
    )
    register_kind("portal.case_files_added", "Someone added files to a support case.")
    register_kind(
        "portal.case_answered",
        "Staff replied publicly on a member's case; recorded on the filer.",
        counts_as_active=False,
    )
    register_kind(
        "portal.case_status_changed",
        "A case changed status, by staff, its member or the auto-close task.",
        counts_as_active=False,
    )
    register_kind(
        "portal.case_solved", "A member's case was solved.", counts_as_active=False
    )
    register_kind("portal.case_rated", "A member rated the support on their case.")
    register_kind(
        "portal.case_assigned",
        "Staff assigned a member's case to someone.",
        counts_as_active=False,
    )
    register_kind(
        "portal.case_priority_changed",
        "Staff changed the priority of a member's case.",
        counts_as_active=False,
    )
    register_kind(
        "portal.case_sla_breached",
        "A case missed its first-response or resolution target.",
        counts_as_active=False,
    )
    register_kind(
        "portal.case_escalated",
        "A breached case was escalated to its assignee or the account's CSM.",
        counts_as_active=False,
    )
    register_kind(
        "portal.escalation_offered",
        "A question's author was offered a support case after no reply.",
        counts_as_active=False,
    )
    register_measure_source("open_cases", build_open_cases_sql)
    register_visibility_filter("portal.case", filter_visible_case_ids)
    register_export_section("support_cases", export_member_cases)
    register_merge_handler("support_cases", move_merged_member_cases)
