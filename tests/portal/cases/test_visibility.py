"""Who sees a case: its filer, the account's admin and staff; nobody else.

Each check runs on the pages and the API. A case someone may not see
returns 404, exactly like a case that does not exist.
"""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from apps.portal.models import Case
from apps.portal.selectors.cases import visible_cases
from apps.portal.services.cases import file_case, reply_to_case
from tests.portal.cases.conftest import png

VIEWERS = ["filer", "colleague", "account_admin", "outsider", "staff"]
SEES_CASE = {
    "filer": True,
    "colleague": False,
    "account_admin": True,
    "outsider": False,
    "staff": True,
}


@pytest.fixture
def case(filer):
    return file_case(
        member=filer,
        subject="Invoice export broken",
        body="The invoice export stops.",
        uploads=[png()],
    )


@pytest.fixture
def viewer(request, filer, colleague, account_admin, outsider, staff):
    people = {
        "filer": filer.user,
        "colleague": colleague.user,
        "account_admin": account_admin.user,
        "outsider": outsider.user,
        "staff": staff,
    }
    return people[request.param]


def page_client(client, user):
    client.force_login(user)
    return client


def api_client_for(user) -> APIClient:
    api = APIClient()
    api.force_authenticate(user)
    return api


@pytest.mark.parametrize("viewer", VIEWERS, indirect=True)
def test_visible_cases_rule(viewer, case, request):
    name = request.node.callspec.params["viewer"]

    found = visible_cases(viewer).filter(pk=case.pk).exists()

    assert found is SEES_CASE[name]


@pytest.mark.parametrize("viewer", VIEWERS, indirect=True)
def test_case_page_visibility(client, viewer, case, request):
    name = request.node.callspec.params["viewer"]
    url = reverse("portal:case_detail", kwargs={"pk": case.pk})

    response = page_client(client, viewer).get(url, follow=True)

    expected = 200 if SEES_CASE[name] else 404
    assert response.status_code == expected
    if SEES_CASE[name]:
        assert "Invoice export broken" in response.content.decode()


@pytest.mark.parametrize("viewer", VIEWERS, indirect=True)
def test_attachment_download_visibility(client, viewer, case, request):
    name = request.node.callspec.params["viewer"]
    attachment = case.attachments.get()
    url = reverse(
        "portal:case_attachment",
        kwargs={"pk": case.pk, "attachment_pk": attachment.pk},
    )

    response = page_client(client, viewer).get(url)

    assert response.status_code == (200 if SEES_CASE[name] else 404)


@pytest.mark.parametrize("viewer", VIEWERS, indirect=True)
def test_reply_page_visibility(client, viewer, case, request):
    name = request.node.callspec.params["viewer"]
    url = reverse("portal:case_reply", kwargs={"pk": case.pk})

    response = page_client(client, viewer).post(url, {"body": "Any news?"})

    if SEES_CASE[name] and name != "staff":
        assert response.status_code == 302
        assert case.messages.count() == 1
    elif name == "staff":
        # Staff reply from the staff page; the member form is theirs too.
        assert response.status_code == 302
    else:
        assert response.status_code == 404
        assert case.messages.count() == 0


@pytest.mark.parametrize("viewer", VIEWERS, indirect=True)
def test_api_retrieve_visibility(viewer, case, request):
    name = request.node.callspec.params["viewer"]

    response = api_client_for(viewer).get(f"/api/v1/portal/cases/{case.pk}/")

    assert response.status_code == (200 if SEES_CASE[name] else 404)


@pytest.mark.parametrize("viewer", VIEWERS, indirect=True)
def test_api_list_visibility(viewer, case, request):
    name = request.node.callspec.params["viewer"]

    response = api_client_for(viewer).get("/api/v1/portal/cases/")

    ids = [row["id"] for row in response.json()["results"]]
    assert response.status_code == 200
    assert ids == ([case.pk] if SEES_CASE[name] else [])


@pytest.mark.parametrize("viewer", VIEWERS, indirect=True)
def test_api_attachment_visibility(viewer, case, request):
    name = request.node.callspec.params["viewer"]
    attachment = case.attachments.get()
    url = f"/api/v1/portal/cases/{case.pk}/attachments/{attachment.pk}/"

    response = api_client_for(viewer).get(url)

    assert response.status_code == (200 if SEES_CASE[name] else 404)


@pytest.mark.parametrize("viewer", VIEWERS, indirect=True)
def test_api_reply_visibility(viewer, case, request):
    name = request.node.callspec.params["viewer"]
    url = f"/api/v1/portal/cases/{case.pk}/messages/"

    response = api_client_for(viewer).post(url, {"body": "Any news?"}, format="json")

    assert response.status_code == (201 if SEES_CASE[name] else 404)
    assert case.messages.count() == (1 if SEES_CASE[name] else 0)


@pytest.mark.parametrize("viewer", VIEWERS, indirect=True)
def test_search_visibility(client, viewer, case, request):
    name = request.node.callspec.params["viewer"]
    url = reverse("portal:case_queue" if name == "staff" else "portal:case_list")

    response = page_client(client, viewer).get(url, {"q": "invoice"})

    html = response.content.decode()
    assert response.status_code == 200
    shows = "Invoice export broken" in html
    # The filer's own list and staff's queue show it; the account admin sees
    # it in the account list, below, not in their own.
    assert shows is (name in ("filer", "staff"))


def test_account_list_shows_account_cases_to_admin(client, account_admin, case):
    url = reverse("portal:account_case_list")

    response = page_client(client, account_admin.user).get(url, {"q": "invoice"})

    assert response.status_code == 200
    assert "Invoice export broken" in response.content.decode()


@pytest.mark.parametrize("name", ["colleague", "outsider"])
def test_account_list_not_found_for_non_admins(client, name, colleague, outsider):
    user = {"colleague": colleague.user, "outsider": outsider.user}[name]

    response = page_client(client, user).get(reverse("portal:account_case_list"))

    # The outsider administers another account, whose list is theirs; a
    # plain member has none.
    assert response.status_code == (404 if name == "colleague" else 200)


def test_outsider_account_list_leaves_out_other_accounts(client, outsider, case):
    response = page_client(client, outsider.user).get(
        reverse("portal:account_case_list")
    )

    assert "Invoice export broken" not in response.content.decode()


def test_staff_queue_not_found_for_members(client, filer, case):
    response = page_client(client, filer.user).get(reverse("portal:case_queue"))

    assert response.status_code == 404


def test_staff_case_page_not_found_for_members(client, filer, case):
    url = reverse("portal:case_staff", kwargs={"pk": case.pk})

    response = page_client(client, filer.user).get(url)

    assert response.status_code == 404


def test_anonymous_redirected_to_sign_in(client, case):
    url = reverse("portal:case_detail", kwargs={"pk": case.pk})

    response = client.get(url)

    assert response.status_code == 302
    assert response.url.startswith(reverse("account_login"))


def test_api_anonymous_rejected(case):
    response = APIClient().get("/api/v1/portal/cases/")

    assert response.status_code == 401


def test_moved_member_keeps_seeing_own_case(filer, case):
    from tests import factories

    filer.account = factories.AccountFactory()
    filer.save(update_fields=["account"])

    assert visible_cases(filer.user).filter(pk=case.pk).exists()


def test_deactivated_filer_sees_nothing(filer, case):
    from django.utils import timezone

    filer.deactivated_at = timezone.now()
    filer.save(update_fields=["deactivated_at"])

    assert not visible_cases(filer.user).exists()


def test_unknown_case_is_404_like_hidden_one(client, filer, case):
    missing = Case.objects.order_by("-pk").first().pk + 100
    url = reverse("portal:case_detail", kwargs={"pk": missing})

    response = page_client(client, filer.user).get(url)

    assert response.status_code == 404


def test_staff_reply_visible_to_account_admin(client, account_admin, case, staff):
    reply_to_case(case=case, author=staff, body="We found the cause.")
    url = reverse("portal:case_detail", kwargs={"pk": case.pk})

    response = page_client(client, account_admin.user).get(url)

    assert "We found the cause." in response.content.decode()
