"""The portal's Celery tasks, one module per area; importing this package
registers them all, which is what the worker's autodiscovery does."""

from apps.portal.tasks import cases, courses, deflection, knowledge, onboarding

__all__ = ["cases", "courses", "deflection", "knowledge", "onboarding"]
