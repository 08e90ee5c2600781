import dataclasses
from datetime import UTC, datetime

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.reporting.api.serializers import KpisSerializer
from apps.reporting.selectors.freshness import list_data_freshness
from apps.reporting.selectors.portal import get_portal_kpis
from apps.reporting.views import DEFAULT_WINDOW_DAYS, MAX_WINDOW_DAYS, parse_window
from rm6.api import IsStaffUser


class PortalKpisView(APIView):
    """The portal KPIs of the staff dashboard, for integrations."""

    permission_classes = [IsStaffUser]

    @extend_schema(
        operation_id="reporting_kpis",
        parameters=[
            OpenApiParameter(
                "start",
                OpenApiTypes.DATE,
                description="First day of the window, included, at 00:00 UTC. "
                f"Defaults to {DEFAULT_WINDOW_DAYS} days before the end.",
            ),
            OpenApiParameter(
                "end",
                OpenApiTypes.DATE,
                description="Day after the window, excluded, at 00:00 UTC. "
                "Defaults to today, or to the start plus "
                f"{DEFAULT_WINDOW_DAYS} days. At most {MAX_WINDOW_DAYS} days "
                "after the start.",
            ),
        ],
        responses={
            200: KpisSerializer,
            400: OpenApiResponse(
                description="An invalid date or window, keyed by the parameter."
            ),
        },
    )
    def get(self, request: Request) -> Response:
        """Return the portal KPIs of the window and each data source's freshness.

        Staff only. Each windowed KPI has its total and one row per account
        segment. A share whose total is 0 has a null percent. Data freshness
        is the state now, and a source that never succeeded has null age and
        `is_fresh`.
        """
        now = datetime.now(UTC)
        today = now.date()
        start, end = parse_window(request.query_params, today=today)
        kpis = get_portal_kpis(start=start, end=end, today=today)

        # A shallow copy of the dataclass's fields, so that the nested
        # serializers still get the dataclasses with their properties.
        report = {
            field.name: getattr(kpis, field.name) for field in dataclasses.fields(kpis)
        }
        report["data_freshness"] = list_data_freshness(now=now)
        return Response(KpisSerializer(report).data)
