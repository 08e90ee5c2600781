from django.urls import reverse
from django.utils import timezone

from apps.lifecycle.ingestion.sources import create_segment_source
from apps.membership.models import DataSourceRun
from apps.portal.models import CaseAttempt
from tests.reporting.factories import WINDOW, CaseAttemptFactory, build_portal_rows

DASHBOARD_URL = reverse("reporting:dashboard")


def test_dashboard_anonymous_redirected(client, portal_rows):
    response = client.get(DASHBOARD_URL, WINDOW)

    assert response.status_code == 302
    assert response.url.startswith(reverse("account_login"))


def test_dashboard_member_forbidden(member_client, portal_rows):
    response = member_client.get(DASHBOARD_URL, WINDOW)

    html = response.content.decode()
    assert response.status_code == 403
    assert "Time-to-value" not in html


def test_dashboard_shows_portal_kpis(staff_client, portal_rows):
    response = staff_client.get(DASHBOARD_URL, WINDOW)

    html = response.content.decode()
    kpis = response.context["kpis"]
    assert response.status_code == 200
    assert kpis.start.isoformat() == WINDOW["start"]
    assert kpis.member_time_to_value.breakdown.total.reached == 2
    assert '<p class="figure">1 day</p>' in html
    assert "over the 2 of 2 members whose first sign-in was in this window" in html
    assert '<p class="figure">5.00 of 5</p>' in html
    assert "2 (100.0&nbsp;%) rated 4 or 5." in html
    assert "2 of the 2 enrolments started in this window are completed" in html
    assert "2 deflected of the 2 case attempts with an outcome" in html
    assert "2 of 2 published articles were reviewed" in html


def test_dashboard_shows_pending_attempts_apart(staff_client, portal_rows):
    CaseAttemptFactory(outcome=CaseAttempt.Outcome.PENDING)

    response = staff_client.get(DASHBOARD_URL, WINDOW)

    html = response.content.decode()
    assert "2 deflected of the 2 case attempts with an outcome" in html
    assert "1 more (33.3&nbsp;% of 3) are pending and not counted yet." in html


def test_dashboard_portal_segments_table(staff_client, portal_rows):
    response = staff_client.get(DASHBOARD_URL, WINDOW)

    rows = response.context["kpis"].segments
    assert [row.label for row in rows] == [
        "SMB",
        "Mid-market",
        "Enterprise",
        "No account",
    ]
    assert rows[1].deflection.deflected == 2
    assert rows[0].deflection.rate.value is None


def test_dashboard_portal_empty_states(staff_client, db):
    response = staff_client.get(DASHBOARD_URL, WINDOW)

    html = response.content.decode()
    assert "No member signed in for the first time in this window." in html
    assert "No account has a contract start date in this window." in html
    assert "No rated cases in this window." in html
    assert "No course enrolments started in this window." in html
    assert "No member opened the new-case form in this window." in html
    assert "No published articles." in html


def test_dashboard_query_count_same_at_two_sizes(
    staff_client, db, django_assert_num_queries
):
    build_portal_rows(1)
    DataSourceRun.objects.create(
        source=DataSourceRun.Source.CRM_SYNC, last_success_at=timezone.now()
    )
    staff_client.get(DASHBOARD_URL, WINDOW)

    # Session, user, the three activity queries, the six portal KPIs, the
    # data source runs and the Segment sources.
    with django_assert_num_queries(13):
        small = staff_client.get(DASHBOARD_URL, WINDOW)
    build_portal_rows(5)
    DataSourceRun.objects.create(
        source=DataSourceRun.Source.USAGE_INGESTION,
        origin=DataSourceRun.EVENT_BATCH_API_ORIGIN,
        last_success_at=timezone.now(),
    )
    for name in ("Web app", "Mobile app"):
        create_segment_source(name=name)
    with django_assert_num_queries(13):
        large = staff_client.get(DASHBOARD_URL, WINDOW)

    assert small.context["kpis"].csat.total.rated == 1
    assert large.context["kpis"].csat.total.rated == 6
    assert len(large.context["data_freshness"]) == 5


def test_dashboard_warns_of_unregistered_value_kind(staff_client, db, settings):
    settings.RM6_VALUE_MOMENT_KIND = "portal.onboarding_finsihed"

    response = staff_client.get(DASHBOARD_URL, WINDOW)

    html = response.content.decode()
    assert (
        "The value moment event kind <code>portal.onboarding_finsihed</code> "
        "is not registered by any app" in html
    )


def test_dashboard_no_warning_for_registered_value_kind(staff_client, db, settings):
    settings.RM6_VALUE_MOMENT_KIND = "community.question_posted"

    response = staff_client.get(DASHBOARD_URL, WINDOW)

    html = response.content.decode()
    assert response.context["kpis"].member_time_to_value.is_kind_registered
    assert "is not registered by any app" not in html
