"""Case pages and the API list run the same number of queries at any size."""

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from apps.portal.services.cases import file_case, reply_to_case
from tests import factories
from tests.portal.cases.conftest import png
from tests.portal.cases.factories import CaseTopicFactory


def count_queries(client, url: str, **params) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, params)
    assert response.status_code == 200
    return len(queries)


def count_api_queries(user, url: str) -> int:
    """Count one API request by a freshly loaded user, so that no permission
    cache from an earlier request on the same user object hides queries."""
    api = APIClient()
    api.force_authenticate(get_user_model().objects.get(pk=user.pk))
    return count_queries(api, url)


def add_cases(account, count: int, *, staff) -> list:
    """File `count` cases by new members of the account, each assigned, with a
    topic, a file and a staff reply."""
    cases = []
    for _ in range(count):
        member = factories.MemberFactory(account=account)
        case = file_case(
            member=member,
            subject="Export fails",
            body="Stops",
            topic=CaseTopicFactory(),
            uploads=[png()],
        )
        case.assignee = factories.StaffFactory()
        case.save(update_fields=["assignee"])
        reply_to_case(case=case, author=staff, body="On it")
        cases.append(case)
    return cases


@pytest.mark.parametrize(
    ("url_name", "who"),
    [
        ("portal:case_list", "filer"),
        ("portal:account_case_list", "account_admin"),
        ("portal:case_queue", "staff"),
    ],
)
def test_case_lists_fixed_queries(client, url_name, who, filer, account_admin, staff):
    user = {"filer": filer.user, "account_admin": account_admin.user, "staff": staff}
    client.force_login(user[who])
    url = reverse(url_name)
    file_case(member=filer, subject="Mine", body="B")
    add_cases(filer.account, 2, staff=staff)
    count_queries(client, url)
    few = count_queries(client, url, status="open")

    add_cases(filer.account, 8, staff=staff)
    for _ in range(3):
        file_case(member=filer, subject="Mine", body="B")
    many = count_queries(client, url, status="open")

    assert many == few


def test_case_detail_fixed_queries(client, filer, staff):
    case = file_case(member=filer, subject="S", body="B", uploads=[png()])
    client.force_login(filer.user)
    url = reverse("portal:case_detail", kwargs={"pk": case.pk})
    reply_to_case(case=case, author=staff, body="One", uploads=[png()])
    few = count_queries(client, url)

    for _ in range(6):
        reply_to_case(case=case, author=staff, body="More", uploads=[png()])
        reply_to_case(case=case, author=filer.user, body="Mine", uploads=[png()])
        reply_to_case(case=case, author=staff, body="Note", is_internal=True)
    many = count_queries(client, url)

    assert many == few


def test_staff_case_page_fixed_queries(client, filer, staff):
    case = file_case(member=filer, subject="S", body="B", uploads=[png()])
    client.force_login(staff)
    url = reverse("portal:case_staff", kwargs={"pk": case.pk})
    reply_to_case(case=case, author=staff, body="One", uploads=[png()])
    few = count_queries(client, url)

    for _ in range(6):
        reply_to_case(case=case, author=factories.StaffFactory(), body="More")
        reply_to_case(case=case, author=staff, body="Note", is_internal=True)
        reply_to_case(case=case, author=filer.user, body="Mine", uploads=[png()])
    many = count_queries(client, url)

    assert many == few


def test_api_list_fixed_queries(account_admin, staff):
    url = "/api/v1/portal/cases/"
    add_cases(account_admin.account, 2, staff=staff)
    few = count_api_queries(account_admin.user, url)

    add_cases(account_admin.account, 8, staff=staff)
    many = count_api_queries(account_admin.user, url)

    assert many == few


def test_api_thread_fixed_queries(filer, staff):
    case = file_case(member=filer, subject="S", body="B")
    url = f"/api/v1/portal/cases/{case.pk}/messages/"
    reply_to_case(case=case, author=staff, body="One", uploads=[png()])
    few = count_api_queries(filer.user, url)

    for _ in range(5):
        author = factories.StaffFactory()
        reply_to_case(case=case, author=author, body="x", uploads=[png()])
    many = count_api_queries(filer.user, url)

    assert many == few
