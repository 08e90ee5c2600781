from django.urls import path

from apps.reporting.api.views import PortalKpisView

app_name = "reporting_api"

urlpatterns = [
    path("kpis/", PortalKpisView.as_view(), name="kpis"),
]
