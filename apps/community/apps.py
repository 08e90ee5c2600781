from django.apps import AppConfig


class CommunityConfig(AppConfig):
    name = "apps.community"
    label = "community"
    verbose_name = "Community"

    def ready(self) -> None:
        from apps.lifecycle.registry import register_kind

        register_kind("community.question_posted", "A member asked a question.")
        register_kind(
            "community.topic_posted",
            "A member started a discussion, idea or announcement.",
        )
        register_kind("community.reply_posted", "A member replied to a topic.")
        register_kind("community.topic_viewed", "A member viewed a topic.")
