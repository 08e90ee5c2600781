from django.apps import AppConfig


class CommunityConfig(AppConfig):
    name = "apps.community"
    label = "community"
    verbose_name = "Community"

    def ready(self) -> None:
        from apps.community.selectors import export_member_data
        from apps.community.services import move_merged_member_posts
        from apps.lifecycle.registry import register_kind
        from apps.membership.exports import register_export_section
        from apps.membership.merge import register_merge_handler

        register_kind("community.question_posted", "A member asked a question.")
        register_kind(
            "community.topic_posted",
            "A member started a discussion, idea or announcement.",
        )
        register_kind("community.reply_posted", "A member replied to a topic.")
        register_kind("community.topic_viewed", "A member viewed a topic.")
        register_export_section("community", export_member_data)
        register_merge_handler("community", move_merged_member_posts)
