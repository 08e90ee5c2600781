import re
from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.urls import reverse

from apps.lifecycle.ingestion.sources import create_segment_source
from apps.lifecycle.models import SegmentSource
from apps.membership.models import DataSourceRun
from apps.membership.services.data_sources import segment_source_origin
from apps.reporting.selectors.freshness import (
    check_sla_setting,
    list_data_freshness,
    parse_sla_hours,
)
from tests.reporting.factories import WINDOW

Source = DataSourceRun.Source
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
DASHBOARD_URL = reverse("reporting:dashboard")
KPIS_URL = reverse("reporting_api:kpis")
DAY = timedelta(hours=24)
BATCH = DataSourceRun.EVENT_BATCH_API_ORIGIN


def freshness_by_source(now=NOW) -> dict:
    return {row.source: row for row in list_data_freshness(now=now)}


def add_segment_source(name: str, *, is_active: bool = True) -> SegmentSource:
    return create_segment_source(name=name, is_active=is_active)[0]


def add_segment_run(source: SegmentSource, **times) -> DataSourceRun:
    return DataSourceRun.objects.create(
        source=Source.USAGE_INGESTION,
        origin=segment_source_origin(source.pk),
        **times,
    )


# The selector


def test_list_data_freshness_no_runs_is_no_data(db):
    rows = list_data_freshness(now=NOW)

    assert [row.source for row in rows] == [
        "crm_sync",
        "usage_ingestion",
        "score_computation",
    ]
    assert [row.origin for row in rows] == ["", "event_batch_api", ""]
    for row in rows:
        assert row.has_data is False
        assert row.age is None
        assert row.is_fresh is None
        assert row.is_stale is False
        assert row.sla == DAY


def test_list_data_freshness_fresh_under_sla(db):
    DataSourceRun.objects.create(
        source=Source.CRM_SYNC, last_success_at=NOW - timedelta(hours=23)
    )

    row = freshness_by_source()["crm_sync"]

    assert row.age == timedelta(hours=23)
    assert row.is_fresh is True
    assert row.is_stale is False


def test_list_data_freshness_stale_at_sla(db):
    DataSourceRun.objects.create(source=Source.CRM_SYNC, last_success_at=NOW - DAY)

    row = freshness_by_source()["crm_sync"]

    assert row.age == DAY
    assert row.is_fresh is False
    assert row.is_stale is True


def test_list_data_freshness_failures_only_is_no_data(db):
    DataSourceRun.objects.create(
        source=Source.USAGE_INGESTION,
        origin=BATCH,
        last_failure_at=NOW - timedelta(minutes=5),
        last_error="segment request rejected: invalid_json",
    )

    row = freshness_by_source()["usage_ingestion"]

    assert row.is_fresh is None
    assert row.is_failing is True
    assert row.last_error == "segment request rejected: invalid_json"


def test_list_data_freshness_failure_after_success(db):
    DataSourceRun.objects.create(
        source=Source.SCORE_COMPUTATION,
        last_success_at=NOW - timedelta(hours=2),
        last_failure_at=NOW - timedelta(hours=1),
    )

    row = freshness_by_source()["score_computation"]

    assert row.is_fresh is True
    assert row.is_failing is True


def test_list_data_freshness_sla_per_source(db, settings):
    settings.RM6_DATA_FRESHNESS_SLA_HOURS = "usage_ingestion=2"
    DataSourceRun.objects.create(
        source=Source.USAGE_INGESTION,
        origin=BATCH,
        last_success_at=NOW - timedelta(hours=3),
    )
    DataSourceRun.objects.create(
        source=Source.CRM_SYNC, last_success_at=NOW - timedelta(hours=3)
    )

    rows = freshness_by_source()

    assert rows["usage_ingestion"].sla == timedelta(hours=2)
    assert rows["usage_ingestion"].is_stale is True
    assert rows["crm_sync"].sla == DAY
    assert rows["crm_sync"].is_fresh is True


def test_list_data_freshness_row_per_origin(db):
    web = add_segment_source("Web app")
    mobile = add_segment_source("Mobile app")
    DataSourceRun.objects.create(
        source=Source.USAGE_INGESTION,
        origin=BATCH,
        last_success_at=NOW - timedelta(hours=30),
    )
    add_segment_run(web, last_success_at=NOW - timedelta(hours=1))
    add_segment_run(
        mobile,
        last_failure_at=NOW - timedelta(minutes=5),
        last_error="segment batch failed: all 3 message(s) invalid",
    )

    rows = list_data_freshness(now=NOW)

    usage = {row.origin: row for row in rows if row.source == Source.USAGE_INGESTION}
    assert [row.label for row in rows] == [
        "CRM sync",
        "Usage ingestion: event batch API",
        "Usage ingestion: Segment source “Mobile app”",
        "Usage ingestion: Segment source “Web app”",
        "Score computation",
    ]
    assert usage[BATCH].is_stale is True
    assert usage[segment_source_origin(web.pk)].is_fresh is True
    assert usage[segment_source_origin(web.pk)].is_failing is False
    assert usage[segment_source_origin(mobile.pk)].has_data is False
    assert usage[segment_source_origin(mobile.pk)].is_failing is True
    assert usage[segment_source_origin(mobile.pk)].last_error == (
        "segment batch failed: all 3 message(s) invalid"
    )


def test_list_data_freshness_new_source_no_data(db):
    add_segment_source("Web app")

    row = list_data_freshness(now=NOW)[2]

    assert row.label == "Usage ingestion: Segment source “Web app”"
    assert row.has_data is False
    assert row.is_stale is False


def test_list_data_freshness_usage_sla_per_origin(db, settings):
    settings.RM6_DATA_FRESHNESS_SLA_HOURS = "usage_ingestion=2"
    web = add_segment_source("Web app")
    add_segment_run(web, last_success_at=NOW - timedelta(hours=2))

    row = list_data_freshness(now=NOW)[2]

    assert row.sla == timedelta(hours=2)
    assert row.is_stale is True


def test_list_data_freshness_hides_gone_sources(db):
    active = add_segment_source("Web app")
    inactive = add_segment_source("Old app", is_active=False)
    deleted = add_segment_source("Trial app")
    for source in (active, inactive, deleted):
        add_segment_run(source, last_success_at=NOW - timedelta(days=30))
    deleted.delete()

    rows = list_data_freshness(now=NOW)

    origins = [row.origin for row in rows]
    assert segment_source_origin(active.pk) in origins
    assert segment_source_origin(inactive.pk) not in origins
    assert segment_source_origin(deleted.pk) not in origins
    assert len(rows) == 4
    assert DataSourceRun.objects.count() == 3


def test_list_data_freshness_shows_current_name(db):
    web = add_segment_source("Web app")
    add_segment_run(web, last_success_at=NOW)
    SegmentSource.objects.filter(pk=web.pk).update(name="Web portal")

    row = list_data_freshness(now=NOW)[2]

    assert row.label == "Usage ingestion: Segment source “Web portal”"
    assert row.last_success_at == NOW


def test_list_data_freshness_query_count_fixed(db, django_assert_num_queries):
    add_segment_run(add_segment_source("Web app"), last_success_at=NOW)

    # The data source runs and the active Segment sources.
    with django_assert_num_queries(2):
        small = list_data_freshness(now=NOW)
    for index in range(5):
        add_segment_run(add_segment_source(f"App {index}"), last_success_at=NOW)
    with django_assert_num_queries(2):
        large = list_data_freshness(now=NOW)

    assert len(small) == 4
    assert len(large) == 9


@pytest.mark.parametrize(
    ("value", "expected_hours"),
    [
        ("24", {"crm_sync": 24, "usage_ingestion": 24, "score_computation": 24}),
        (6, {"crm_sync": 6, "usage_ingestion": 6, "score_computation": 6}),
        (
            "crm_sync=12, score_computation=1.5",
            {"crm_sync": 12, "usage_ingestion": 24, "score_computation": 1.5},
        ),
        (
            {"usage_ingestion": 2},
            {"crm_sync": 24, "usage_ingestion": 2, "score_computation": 24},
        ),
    ],
    ids=["one-string", "one-number", "pairs", "dict"],
)
def test_parse_sla_hours_valid(value, expected_hours):
    expected = {source: timedelta(hours=h) for source, h in expected_hours.items()}

    assert parse_sla_hours(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "crm=24",
            "RM6_DATA_FRESHNESS_SLA_HOURS names the unknown data source(s) crm; "
            "use crm_sync, usage_ingestion, score_computation.",
        ),
        (
            "day",
            "RM6_DATA_FRESHNESS_SLA_HOURS has the invalid value 'day' for every "
            "source; give a number of hours, such as 24.",
        ),
        (
            "crm_sync=0",
            "RM6_DATA_FRESHNESS_SLA_HOURS gives crm_sync '0' hours; give a "
            "number of hours above 0 and at most 87,600.",
        ),
        (
            "inf",
            "RM6_DATA_FRESHNESS_SLA_HOURS gives every source 'inf' hours; give a "
            "number of hours above 0 and at most 87,600.",
        ),
        (
            "1e12",
            "RM6_DATA_FRESHNESS_SLA_HOURS gives every source '1e12' hours; give "
            "a number of hours above 0 and at most 87,600.",
        ),
        (
            "=5",
            "RM6_DATA_FRESHNESS_SLA_HOURS '=5' has a pair without a source or "
            "names a source twice (empty); write source=hours pairs such as "
            "crm_sync=24,usage_ingestion=2.",
        ),
        (
            "crm_sync=1,crm_sync=2",
            "RM6_DATA_FRESHNESS_SLA_HOURS 'crm_sync=1,crm_sync=2' has a pair "
            "without a source or names a source twice (crm_sync); write "
            "source=hours pairs such as crm_sync=24,usage_ingestion=2.",
        ),
    ],
    ids=[
        "unknown-source",
        "not-a-number",
        "zero",
        "infinite",
        "too-large",
        "empty-source",
        "repeated-source",
    ],
)
def test_parse_sla_hours_invalid(value, message):
    with pytest.raises(ImproperlyConfigured) as caught:
        parse_sla_hours(value)

    assert str(caught.value) == message


def test_check_sla_setting_reports_invalid(settings):
    settings.RM6_DATA_FRESHNESS_SLA_HOURS = "-1"

    errors = check_sla_setting()

    assert [error.id for error in errors] == ["reporting.E001"]


def test_list_data_freshness_invalid_sla_uses_default(db, settings, caplog):
    settings.RM6_DATA_FRESHNESS_SLA_HOURS = "inf"

    rows = freshness_by_source()

    assert rows[Source.CRM_SYNC].sla == DAY
    assert "data freshness uses the default SLA" in caplog.text


def test_check_sla_setting_accepts_default(settings):
    settings.RM6_DATA_FRESHNESS_SLA_HOURS = "24"

    assert check_sla_setting() == []


# The dashboard


def test_dashboard_freshness_no_data(staff_client, db):
    response = staff_client.get(DASHBOARD_URL, WINDOW)

    html = response.content.decode()
    assert response.status_code == 200
    assert '<h2 id="data-freshness-heading">Data freshness</h2>' in html
    assert html.count('<span class="badge">No data</span>') == 3
    assert "Stale data:" not in html


def test_dashboard_freshness_warns_of_stale_source(staff_client, db):
    now = datetime.now(UTC)
    DataSourceRun.objects.create(
        source=Source.CRM_SYNC, last_success_at=now - timedelta(hours=30)
    )
    DataSourceRun.objects.create(
        source=Source.USAGE_INGESTION,
        origin=BATCH,
        last_success_at=now - timedelta(minutes=5),
    )

    response = staff_client.get(DASHBOARD_URL, WINDOW)

    html = response.content.decode()
    assert [row.source for row in response.context["stale_sources"]] == ["crm_sync"]
    assert "Stale data: CRM sync last succeeded 1 day 6 hours ago" in html
    assert "over its SLA of 1 day." in html
    assert html.count('<span class="badge badge--red">Stale</span>') == 1
    assert html.count('<span class="badge badge--green">Fresh</span>') == 1


def test_dashboard_freshness_warns_of_stale_origin(staff_client, db):
    now = datetime.now(UTC)
    web = add_segment_source("Web app")
    mobile = add_segment_source("Mobile app")
    add_segment_run(web, last_success_at=now - timedelta(minutes=5))
    add_segment_run(
        mobile,
        last_success_at=now - timedelta(hours=30),
        last_failure_at=now - timedelta(minutes=5),
        last_error="segment request rejected: invalid_json",
    )

    response = staff_client.get(DASHBOARD_URL, WINDOW)

    html = response.content.decode()
    stale = response.context["stale_sources"]
    assert [row.origin for row in stale] == [segment_source_origin(mobile.pk)]
    assert (
        "Stale data: Usage ingestion: Segment source “Mobile app” last succeeded "
        "1 day 6 hours ago" in html
    )
    assert "segment request rejected: invalid_json" in html
    assert html.count('<span class="badge badge--red">Stale</span>') == 1
    assert html.count('<span class="badge badge--green">Fresh</span>') == 1
    assert html.count('<span class="badge badge--red">Latest run failed</span>') == 1


def test_dashboard_freshness_escapes_source_name(staff_client, db):
    add_segment_source("<b>Web</b> app")

    html = staff_client.get(DASHBOARD_URL, WINDOW).content.decode()

    assert "Segment source “&lt;b&gt;Web&lt;/b&gt; app”" in html
    assert "<b>Web</b>" not in html


def test_dashboard_freshness_times_in_utc_for_any_zone(staff_client, db):
    session = staff_client.session
    session["member_time_zone"] = "Asia/Tokyo"
    session.save()
    success = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    DataSourceRun.objects.create(source=Source.CRM_SYNC, last_success_at=success)

    response = staff_client.get(DASHBOARD_URL, WINDOW)

    assert "2 Mar 2026 12:00 UTC" in response.content.decode()


def test_dashboard_freshness_shows_last_error(staff_client, db):
    DataSourceRun.objects.create(
        source=Source.SCORE_COMPUTATION,
        last_failure_at=datetime.now(UTC),
        last_error="member score refresh failed: OperationalError",
    )

    response = staff_client.get(DASHBOARD_URL, WINDOW)

    html = response.content.decode()
    assert "member score refresh failed: OperationalError" in html
    assert '<span class="badge badge--red">Latest run failed</span>' in html


def test_dashboard_member_sees_no_freshness(member_client):
    response = member_client.get(DASHBOARD_URL, WINDOW)

    assert response.status_code == 403
    assert "Data freshness" not in response.content.decode()


# The KPI API


def test_kpis_api_data_freshness(api_client, staff_user):
    success = datetime.now(UTC) - timedelta(hours=25)
    DataSourceRun.objects.create(source=Source.CRM_SYNC, last_success_at=success)
    api_client.force_authenticate(staff_user)

    response = api_client.get(KPIS_URL, WINDOW)

    rows = {row["source"]: row for row in response.json()["data_freshness"]}
    crm = rows["crm_sync"]
    assert response.status_code == 200
    assert list(rows) == ["crm_sync", "usage_ingestion", "score_computation"]
    assert crm["label"] == "CRM sync"
    assert crm["is_fresh"] is False
    assert crm["sla_seconds"] == 86400
    assert crm["age_seconds"] >= 25 * 3600
    assert datetime.fromisoformat(crm["last_success_at"]) == success
    assert crm["is_failing"] is False


def test_kpis_api_data_freshness_no_data_is_null(api_client, staff_user):
    api_client.force_authenticate(staff_user)

    response = api_client.get(KPIS_URL, WINDOW)

    usage = response.json()["data_freshness"][1]
    assert usage == {
        "source": "usage_ingestion",
        "origin": "event_batch_api",
        "label": "Usage ingestion: event batch API",
        "last_success_at": None,
        "age_seconds": None,
        "sla_seconds": 86400.0,
        "is_fresh": None,
        "last_failure_at": None,
        "last_error": "",
        "is_failing": False,
    }


def test_kpis_api_data_freshness_per_origin(api_client, staff_user):
    web = add_segment_source("Web app")
    add_segment_run(web, last_failure_at=datetime.now(UTC), last_error="broken")
    api_client.force_authenticate(staff_user)

    response = api_client.get(KPIS_URL, WINDOW)

    rows = response.json()["data_freshness"]
    assert [(row["source"], row["origin"]) for row in rows] == [
        ("crm_sync", ""),
        ("usage_ingestion", "event_batch_api"),
        ("usage_ingestion", segment_source_origin(web.pk)),
        ("score_computation", ""),
    ]
    assert rows[2]["label"] == "Usage ingestion: Segment source “Web app”"
    assert rows[2]["is_failing"] is True
    assert rows[2]["last_error"] == "broken"


def test_kpis_api_schema_has_data_freshness(api_client, staff_user):
    api_client.force_authenticate(staff_user)

    response = api_client.get(reverse("api-schema"), {"format": "json"})

    schemas = response.json()["components"]["schemas"]
    assert "data_freshness" in schemas["Kpis"]["properties"]
    assert schemas["DataFreshness"]["properties"]["is_fresh"]["nullable"] is True
    assert "origin" in schemas["DataFreshness"]["required"]


# Admin


def test_data_source_run_admin_read_only(admin_client):
    run = DataSourceRun.objects.create(source=Source.CRM_SYNC, last_success_at=NOW)
    base = "admin:membership_datasourcerun"

    changelist = admin_client.get(reverse(f"{base}_changelist"))
    change = admin_client.get(reverse(f"{base}_change", args=[run.pk]))
    add = admin_client.get(reverse(f"{base}_add"))
    delete = admin_client.post(
        reverse(f"{base}_delete", args=[run.pk]), {"post": "yes"}
    )

    assert changelist.status_code == 200
    assert "CRM sync" in changelist.content.decode()
    assert change.status_code == 200
    assert add.status_code == 403
    assert delete.status_code == 403
    assert DataSourceRun.objects.filter(pk=run.pk).exists()


def test_data_source_run_admin_lists_origin(admin_client):
    DataSourceRun.objects.create(
        source=Source.USAGE_INGESTION, origin=BATCH, last_success_at=NOW
    )

    response = admin_client.get(reverse("admin:membership_datasourcerun_changelist"))

    assert response.status_code == 200
    assert "event_batch_api" in response.content.decode()


def test_dashboard_heading_ids_unique(staff_client, db):
    html = staff_client.get(DASHBOARD_URL, WINDOW).content.decode()

    ids = re.findall(r' id="([^"]+)"', html)
    assert len(ids) == len(set(ids))
