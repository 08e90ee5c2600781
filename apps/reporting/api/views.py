from datetime import UTC, datetime

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.reporting.api.serializers import PortalKpisSerializer
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
            200: PortalKpisSerializer,
            400: OpenApiResponse(
                description="An invalid date or window, keyed by the parameter."
            ),
        },
    )
    def get(self, request: Request) -> Response:
        """Return time-to-value, CSAT, course completion, deflection and freshness.

        Staff only. Each windowed KPI has its total and one row per account
        segment. A share whose total is 0 has a null percent.
        """
        today = datetime.now(UTC).date()
        start, end = parse_window(request.query_params, today=today)
        kpis = get_portal_kpis(start=start, end=end, today=today)
        return Response(PortalKpisSerializer(kpis).data)
