from apps.lifecycle.registry import register_kind, register_measure_source
from apps.membership.exports import register_export_section
from apps.membership.merge import register_merge_handler
from apps.portal.selectors.courses import (
    build_course_completions_sql,
    export_member_courses,
)
from apps.portal.services.courses import move_merged_member_courses


def connect() -> None:
    register_kind("portal.course_viewed", "A member viewed a course page.")
    register_kind("portal.course_enrolled", "A member enrolled in a course.")
    register_kind("portal.lesson_viewed", "A member viewed a lesson.")
    register_kind("portal.lesson_completed", "A member marked a lesson complete.")
    register_kind("portal.quiz_passed", "A member passed a course quiz.")
    register_kind("portal.quiz_failed", "A member took a course quiz and failed.")
    register_kind(
        "portal.course_completed",
        "A member completed a course: every published lesson done and the "
        "quiz, if any, passed. Recorded once per enrolment.",
    )
    register_kind(
        "portal.certificate_issued",
        "A member earned a certificate by passing a course quiz.",
    )
    register_kind(
        "portal.certificate_reminder_sent",
        "The hub reminded a member to recertify before a certificate expires.",
        counts_as_active=False,
    )
    register_kind(
        "portal.certificate_expired",
        "A member's certificate lapsed with no newer one of its certification.",
        counts_as_active=False,
    )
    register_kind(
        "portal.certificate_revoked",
        "Staff revoked a member's certificate.",
        counts_as_active=False,
    )
    register_measure_source("course_completions", build_course_completions_sql)
    register_export_section("courses", export_member_courses)
    register_merge_handler("courses", move_merged_member_courses)
