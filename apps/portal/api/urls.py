"""The portal API under /api/v1/portal/, one route module per area."""

from apps.portal.api import cases, courses, knowledge, onboarding

app_name = "portal_api"

urlpatterns = [
    *onboarding.urlpatterns,
    *courses.urlpatterns,
    *knowledge.urlpatterns,
    *cases.urlpatterns,
]
