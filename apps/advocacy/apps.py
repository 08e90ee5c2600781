from django.apps import AppConfig


class AdvocacyConfig(AppConfig):
    name = "apps.advocacy"
    label = "advocacy"
    verbose_name = "Advocacy"

    def ready(self) -> None:
        from apps.advocacy import receivers
        from apps.advocacy.selectors import (
            export_member_advocacy,
            export_member_data,
            get_home_recognition,
        )
        from apps.advocacy.services import (
            award_play_badge,
            award_play_points,
            check_ask_config,
            check_badge_config,
            check_points_config,
            move_merged_member_points,
            send_play_advocacy_ask,
        )
        from apps.lifecycle.actions import register_action
        from apps.lifecycle.registry import register_kind, subscribe
        from apps.membership.exports import register_export_section
        from apps.membership.merge import register_merge_handler
        from apps.membership.panels import register_home_panel

        register_kind(
            "advocacy.badge_awarded", "A member earned a badge.", counts_as_active=False
        )
        register_kind(
            "advocacy.ask_sent",
            "A member was asked to advocate (review, reference call, story).",
            counts_as_active=False,
        )
        register_kind("advocacy.ask_accepted", "A member accepted an advocacy ask.")
        register_kind("advocacy.ask_declined", "A member declined an advocacy ask.")
        register_kind(
            "advocacy.ask_completed",
            "Staff marked an advocacy ask completed; counted as an advocacy action.",
        )
        subscribe("community.reply_posted", receivers.award_reply_points)
        register_export_section("points", export_member_data)
        register_export_section("advocacy", export_member_advocacy)
        register_merge_handler("advocacy", move_merged_member_points)
        register_home_panel("recognition", get_home_recognition)
        register_action(
            "points",
            award_play_points,
            label="Award points",
            check_config=check_points_config,
            needs_member=True,
        )
        # A badge is recognition, not an outbound touch, so no fatigue cap
        # counts it. Asks count against the caps set on the advocacy_ask channel.
        register_action(
            "badge",
            award_play_badge,
            label="Award a badge",
            check_config=check_badge_config,
            needs_member=True,
        )
        register_action(
            "advocacy_ask",
            send_play_advocacy_ask,
            label="Send an advocacy ask",
            channel="advocacy_ask",
            check_config=check_ask_config,
            needs_member=True,
        )
