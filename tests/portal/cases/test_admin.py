from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.portal.models import Case, SlaPolicy
from tests.portal.cases.factories import BusinessCalendarFactory, SlaPolicyFactory

SLA_URL = "/admin/portal/slapolicy/"
CALENDAR_URL = "/admin/portal/businesscalendar/"


def count_queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


def test_sla_policy_changelist_fixed_queries(admin_client):
    SlaPolicyFactory(priority="low", calendar=BusinessCalendarFactory())
    admin_client.get(SLA_URL)
    few = count_queries(admin_client, SLA_URL)

    for priority in ["normal", "high", "urgent"]:
        SlaPolicyFactory(priority=priority, calendar=BusinessCalendarFactory())
    many = count_queries(admin_client, SLA_URL)

    assert SlaPolicy.objects.count() == len(Case.Priority.values)
    assert many == few


def test_sla_policy_change_page(admin_client):
    policy = SlaPolicyFactory()

    response = admin_client.get(f"{SLA_URL}{policy.pk}/change/")

    assert response.status_code == 200


def test_calendar_admin_rejects_unknown_time_zone(admin_client):
    response = admin_client.post(
        f"{CALENDAR_URL}add/",
        {
            "name": "Berlin office",
            "time_zone": "Europe/Berln",
            "weekdays": "0,1,2,3,4",
            "opens_at": "09:00",
            "closes_at": "17:00",
            "holidays-TOTAL_FORMS": "0",
            "holidays-INITIAL_FORMS": "0",
        },
    )

    errors = response.context["adminform"].form.errors
    assert errors["time_zone"] == [
        "'Europe/Berln' is not a known time zone. Use an IANA name such as "
        "Europe/Berlin or America/New_York."
    ]


def test_calendar_admin_rejects_day_out_of_range(admin_client):
    response = admin_client.post(
        f"{CALENDAR_URL}add/",
        {
            "name": "Berlin office",
            "time_zone": "Europe/Berlin",
            "weekdays": "0,7",
            "opens_at": "09:00",
            "closes_at": "17:00",
            "holidays-TOTAL_FORMS": "0",
            "holidays-INITIAL_FORMS": "0",
        },
    )

    errors = response.context["adminform"].form.errors
    assert "weekdays" in errors


def test_case_admin_is_read_only(admin_client, filer):
    from apps.portal.services.cases import file_case

    case = file_case(member=filer, subject="S", body="B")

    add = admin_client.get("/admin/portal/case/add/")
    change = admin_client.post(
        f"/admin/portal/case/{case.pk}/change/", {"subject": "Changed"}
    )

    case.refresh_from_db()
    assert add.status_code == 403
    assert change.status_code == 403
    assert case.subject == "S"
