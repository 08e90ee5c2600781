from django.contrib import admin
from django.contrib.staticfiles.storage import staticfiles_storage
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from rm6 import views

api_v1 = [
    path("", include("apps.membership.api.urls")),
    path("", include("apps.lifecycle.api.urls")),
    path("", include("apps.community.api.urls")),
    path("portal/", include("apps.portal.api.urls")),
    path("reporting/", include("apps.reporting.api.urls")),
]

admin.site.site_header = "RM6 Loyalty Hub administration"
admin.site.site_title = "RM6 Loyalty Hub"
admin.site.index_title = "Members, community and lifecycle"

urlpatterns = [
    path("", include("apps.portal.urls")),
    path("community/", include("apps.community.urls")),
    path("members/", include("apps.membership.urls")),
    path("reporting/", include("apps.reporting.urls")),
    path("lifecycle/", include("apps.lifecycle.urls")),
    path("advocacy/", include("apps.advocacy.urls")),
    # The notification centre, unsubscribe links and the CSM task list.
    path("", include("apps.lifecycle.delivery.urls")),
    path("accounts/", include("allauth.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    # Segment-compatible ingestion, at the paths Segment's clients call.
    path("v1/", include("apps.lifecycle.ingestion.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path(
        "api/docs/",
        SpectacularSwaggerView.as_view(url_name="api-schema"),
        name="api-docs",
    ),
    path("healthz", views.healthz, name="healthz"),
    # Browsers that ignore the <link rel="icon"> in base.html request this path.
    path(
        "favicon.ico",
        RedirectView.as_view(
            url=staticfiles_storage.url("img/favicon.svg"), permanent=True
        ),
    ),
]
