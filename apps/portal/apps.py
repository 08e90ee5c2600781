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
        from django.db.models.signals import post_delete

        from apps.portal import receivers
        from apps.portal.models import CaseAttachment

        for area in HOOK_AREAS:
            import_module(f"apps.portal.hooks.{area}").connect()
        post_delete.connect(
            receivers.delete_case_attachment_file,
            sender=CaseAttachment,
            dispatch_uid="portal.delete_case_attachment_file",
        )
