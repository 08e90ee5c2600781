"""The portal's admin screens, one module per area."""

from apps.portal.admin import cases, courses, knowledge, onboarding

__all__ = ["cases", "courses", "knowledge", "onboarding"]
