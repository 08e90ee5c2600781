from django.urls import reverse
from django.utils import timezone

from apps.lifecycle.ingestion.sources import create_segment_source
from apps.membership.models import DataSourceRun
from apps.portal.models import CaseAttempt
from rm6.api import STAFF_ONLY_MESSAGE
from tests import factories
from tests.reporting.factories import WINDOW, CaseAttemptFactory, build_portal_rows

KPIS_URL = reverse("reporting_api:kpis")


def test_kpis_api_anonymous_unauthorised(api_client, portal_rows):
    response = api_client.get(KPIS_URL, WINDOW)

    assert response.status_code == 401
    assert "csat" not in response.json()


def test_kpis_api_member_forbidden(api_client, member, portal_rows):
    api_client.force_authenticate(member.user)

    response = api_client.get(KPIS_URL, WINDOW)

    assert response.status_code == 403
    assert response.json() == {"detail": STAFF_ONLY_MESSAGE}


def test_kpis_api_staff_figures(api_client, staff_user, portal_rows):
    CaseAttemptFactory(outcome=CaseAttempt.Outcome.PENDING)
    api_client.force_authenticate(staff_user)

    response = api_client.get(KPIS_URL, WINDOW)

    body = response.json()
    member_ttv = body["member_time_to_value"]
    deflection = body["deflection"]["total"]
    assert response.status_code == 200
    assert (body["start"], body["end"]) == ("2025-03-01", "2025-03-31")
    assert member_ttv["kind"] == "portal.onboarding_path_completed"
    assert member_ttv["breakdown"]["total"]["median_seconds"] == 86400.0
    assert member_ttv["breakdown"]["total"]["not_reached"] == {
        "count": 0,
        "total": 2,
        "percent": 0.0,
    }
    assert body["csat"]["total"]["mean_score"] == 5.0
    assert body["course_completion"]["total"]["rate"]["percent"] == 100.0
    assert deflection["pending"] == 1
    assert deflection["rate"] == {"count": 2, "total": 2, "percent": 100.0}
    assert body["content_freshness"]["fresh"] == 2
    assert len(body["deflection"]["segments"]) == 4


def test_kpis_api_no_data_is_null(api_client, staff_user):
    api_client.force_authenticate(staff_user)

    response = api_client.get(KPIS_URL, WINDOW)

    body = response.json()
    assert body["csat"]["total"]["mean_score"] is None
    assert body["csat"]["total"]["satisfied_share"]["percent"] is None
    assert body["member_time_to_value"]["breakdown"]["total"]["median_seconds"] is None
    assert body["content_freshness"]["rate"]["percent"] is None


def test_kpis_api_invalid_window_names_parameter(api_client, staff_user):
    api_client.force_authenticate(staff_user)

    response = api_client.get(KPIS_URL, {"start": "2025-03-31", "end": "2025-03-01"})

    assert response.status_code == 400
    assert response.json()["end"][0].startswith(
        "The start date 2025-03-31 is not before the end date 2025-03-01."
    )


def test_kpis_api_query_count_same_at_two_sizes(
    api_client, db, django_assert_num_queries
):
    staff = factories.StaffFactory()
    api_client.force_authenticate(staff)
    build_portal_rows(1)

    # The six portal KPIs, the data source runs and the Segment sources.
    with django_assert_num_queries(8):
        small = api_client.get(KPIS_URL, WINDOW)
    build_portal_rows(5)
    DataSourceRun.objects.create(
        source=DataSourceRun.Source.CRM_SYNC, last_success_at=timezone.now()
    )
    for name in ("Web app", "Mobile app"):
        create_segment_source(name=name)
    with django_assert_num_queries(8):
        large = api_client.get(KPIS_URL, WINDOW)

    assert small.json()["csat"]["total"]["rated"] == 1
    assert large.json()["csat"]["total"]["rated"] == 6
    assert len(large.json()["data_freshness"]) == 5


def test_kpis_api_in_schema(api_client, staff_user):
    api_client.force_authenticate(staff_user)

    response = api_client.get(reverse("api-schema"), {"format": "json"})

    paths = response.json()["paths"]
    assert "get" in paths["/api/v1/reporting/kpis/"]


def test_kpis_api_flags_unregistered_value_kind(api_client, staff_user, settings):
    settings.RM6_VALUE_MOMENT_KIND = "portal.onboarding_finsihed"
    api_client.force_authenticate(staff_user)

    response = api_client.get(KPIS_URL, WINDOW)

    member_ttv = response.json()["member_time_to_value"]
    assert member_ttv["kind"] == "portal.onboarding_finsihed"
    assert member_ttv["is_kind_registered"] is False
