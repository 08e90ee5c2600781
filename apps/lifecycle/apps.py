from django.apps import AppConfig


class LifecycleConfig(AppConfig):
    name = "apps.lifecycle"
    label = "lifecycle"
    verbose_name = "Lifecycle"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from apps.lifecycle import receivers
        from apps.lifecycle.registry import register_kind

        register_kind("membership.signed_in", "A member signed in.")
        register_kind(
            "product.*",
            "Product usage pushed by an integration; the rest of the name is "
            "the feature or action, for example product.report_exported.",
        )
        register_kind(
            "lifecycle.health_band_changed",
            "A member's health band changed (red, yellow, green).",
            counts_as_active=False,
        )
        user_logged_in.connect(
            receivers.record_sign_in, dispatch_uid="lifecycle.record_sign_in"
        )
