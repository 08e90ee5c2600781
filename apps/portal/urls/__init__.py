"""The portal's pages; each area keeps its routes in a module of this package."""

from apps.portal.urls import cases, courses, home, knowledge, onboarding

app_name = "portal"

urlpatterns = [
    *home.urlpatterns,
    *onboarding.urlpatterns,
    *courses.urlpatterns,
    *knowledge.urlpatterns,
    *cases.urlpatterns,
]
