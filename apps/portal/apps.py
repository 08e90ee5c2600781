from importlib import import_module

from django.apps import AppConfig

# Each area registers its event kinds, measure sources, play actions, export
# sections and merge handlers in `apps.portal.hooks.<area>.connect()`.
HOOK_AREAS = ("onboarding", "courses", "knowledge", "cases", "deflection")


class PortalConfig(AppConfig):
    name = "apps.portal"
    label = "portal"
    verbose_name = "Portal"

    def ready(self) -> None:
        for area in HOOK_AREAS:
            import_module(f"apps.portal.hooks.{area}").connect()
