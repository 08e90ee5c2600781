from django.apps import AppConfig


class DemoConfig(AppConfig):
    """Project-level tools that span every app, such as the demo data."""

    name = "rm6.demo"
    label = "demo"
    verbose_name = "Demo data"
