from django.apps import AppConfig


class ReportingConfig(AppConfig):
    name = "apps.reporting"
    label = "reporting"
    verbose_name = "Reporting"

    def ready(self) -> None:
        from django.core import checks

        from apps.reporting.selectors.freshness import check_sla_setting

        checks.register(check_sla_setting)
