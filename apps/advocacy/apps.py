from django.apps import AppConfig


class AdvocacyConfig(AppConfig):
    name = "apps.advocacy"
    label = "advocacy"
    verbose_name = "Advocacy"

    def ready(self) -> None:
        from apps.advocacy import receivers
        from apps.lifecycle.registry import subscribe

        subscribe("community.reply_posted", receivers.award_reply_points)
