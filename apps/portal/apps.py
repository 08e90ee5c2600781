from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "apps.portal"
    label = "portal"
    verbose_name = "Portal"

    def ready(self) -> None:
        from apps.lifecycle.registry import register_measure_source
        from apps.portal.selectors.onboarding import build_onboarding_share_sql

        register_measure_source("onboarding_share", build_onboarding_share_sql)
