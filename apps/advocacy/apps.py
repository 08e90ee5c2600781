from django.apps import AppConfig


class AdvocacyConfig(AppConfig):
    name = "apps.advocacy"
    label = "advocacy"
    verbose_name = "Advocacy"

    def ready(self) -> None:
        from apps.advocacy import receivers
        from apps.advocacy.selectors import export_member_data
        from apps.advocacy.services import award_play_points, move_merged_member_points
        from apps.lifecycle.actions import register_action
        from apps.lifecycle.registry import subscribe
        from apps.membership.exports import register_export_section
        from apps.membership.merge import register_merge_handler

        subscribe("community.reply_posted", receivers.award_reply_points)
        register_export_section("points", export_member_data)
        register_merge_handler("advocacy", move_merged_member_points)
        register_action("points", award_play_points, label="Award points")
