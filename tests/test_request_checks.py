import datetime

import pytest
from django.urls import reverse

from apps.membership.timezones import SESSION_KEY
from apps.portal.models import Case
from tests import factories


@pytest.mark.parametrize(
    "url", ["/articles/?q=a%00b", "/community/search/?q=%00", "/articles/?%00=x"]
)
def test_nul_in_query_string_rejected(client, db, url):
    response = client.get(url)

    assert response.status_code == 400
    assert "NUL character" in response.content.decode()


def test_nul_in_api_query_string_rejected_as_json(client, db):
    response = client.get("/api/v1/portal/articles/?q=%00")

    assert response.status_code == 400
    assert "NUL character" in response.json()["detail"]


def test_query_string_without_nul_passes(client, db):
    response = client.get("/articles/?q=export")

    assert response.status_code == 200


def _filed_case(member) -> Case:
    return Case.objects.create(
        member=member,
        account=member.account,
        subject="Export stops",
        body="At 50 percent.",
        created_at=datetime.datetime(2026, 12, 4, 19, 58, tzinfo=datetime.UTC),
    )


def test_case_page_shows_member_local_time(client, db):
    member = factories.MemberFactory(time_zone="America/Vancouver")
    case = _filed_case(member)
    client.force_login(member.user)

    html = client.get(reverse("portal:case_detail", args=[case.pk])).content.decode()

    assert client.session[SESSION_KEY] == "America/Vancouver"
    assert "4 December 2026, 11:58" in html


def test_profile_time_zone_change_applies_at_once(client, db):
    member = factories.MemberFactory(time_zone="UTC")
    client.force_login(member.user)
    session = client.session
    session[SESSION_KEY] = "Asia/Tokyo"
    session.save()
    case = _filed_case(member)

    html = client.get(reverse("portal:case_detail", args=[case.pk])).content.decode()

    assert "5 December 2026, 04:58" in html


def test_unknown_session_time_zone_falls_back_to_utc(client, db):
    member = factories.MemberFactory(time_zone="UTC")
    client.force_login(member.user)
    session = client.session
    session[SESSION_KEY] = "Mars/Olympus"
    session.save()
    case = _filed_case(member)

    html = client.get(reverse("portal:case_detail", args=[case.pk])).content.decode()

    assert "4 December 2026, 19:58" in html
