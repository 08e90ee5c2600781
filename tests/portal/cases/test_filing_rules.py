"""Who may file cases, and what the queue and staff page show about SLAs."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from apps.portal.models import Case, CaseAttempt
from apps.portal.services.cases import NO_ACCOUNT_MESSAGE, change_case_status, file_case
from rm6.errors import DomainError
from tests import factories
from tests.portal.cases.factories import SlaPolicyFactory

pytestmark = pytest.mark.django_db
CASE_DATA = {"subject": "Export", "body": "Fails.", "priority": "normal"}


@pytest.fixture
def pending(db):
    """A member whose sign-up waits for review: no customer account yet."""
    return factories.MemberFactory(account=None, display_name="Pending")


def test_service_refuses_member_without_account(pending):
    with pytest.raises(DomainError) as error:
        file_case(member=pending, subject="Export", body="Fails.")

    assert error.value.message == NO_ACCOUNT_MESSAGE
    assert error.value.code == "forbidden"
    assert Case.objects.count() == 0


def test_form_page_explains_instead_of_form(client, pending):
    client.force_login(pending.user)

    response = client.get(reverse("portal:case_new"))

    assert response.status_code == 200
    assert "Support cases open once your company account is confirmed." in (
        response.text
    )
    assert 'name="subject"' not in response.text
    assert CaseAttempt.objects.count() == 0


def test_form_post_refused(client, pending):
    client.force_login(pending.user)

    response = client.post(reverse("portal:case_new"), CASE_DATA)

    assert response.status_code == 403
    assert "company account is confirmed" in response.text
    assert Case.objects.count() == 0


def test_api_refused(pending):
    api = APIClient()
    api.force_login(pending.user)

    response = api.post("/api/v1/portal/cases/", CASE_DATA, format="json")

    assert response.status_code == 403
    assert response.json()["detail"] == NO_ACCOUNT_MESSAGE
    assert Case.objects.count() == 0


def test_api_refuses_user_without_member(db):
    user = factories.UserFactory()
    api = APIClient()
    api.force_login(user)

    response = api.post("/api/v1/portal/cases/", CASE_DATA, format="json")

    assert response.status_code == 403
    assert response.json()["detail"].startswith("Filing a case needs a member")
    assert Case.objects.count() == 0


def test_staff_without_account_may_file(db):
    staff_member = factories.MemberFactory(account=None)
    staff_member.user.is_staff = True
    staff_member.user.save(update_fields=["is_staff"])

    case = file_case(member=staff_member, subject="Export", body="Fails.")

    assert case.account_id is None


def _solved_case(filer, staff, *, breached: bool) -> Case:
    SlaPolicyFactory(
        priority=Case.Priority.NORMAL, first_response_minutes=60, resolution_minutes=600
    )
    case = file_case(member=filer, subject="Export", body="Fails.")
    if breached:
        Case.objects.filter(pk=case.pk).update(
            resolution_breached_at=timezone.now() - timedelta(hours=1)
        )
        case.refresh_from_db()
    change_case_status(case=case, status=Case.Status.SOLVED, actor=staff)
    return case


@pytest.mark.parametrize(("breached", "label"), [(False, "Met"), (True, "Breached")])
def test_queue_solved_met_or_breached(client, filer, staff, breached, label):
    case = _solved_case(filer, staff, breached=breached)
    client.force_login(staff)

    response = client.get(reverse("portal:case_queue"))

    row = response.text.split(f"#{case.pk} ")[1].split("</tr>")[0]
    assert f">{label}</span>" in row
    assert "from now" not in row


def test_queue_keeps_countdown_for_open_case(client, filer, staff):
    SlaPolicyFactory(
        priority=Case.Priority.NORMAL, first_response_minutes=60, resolution_minutes=600
    )
    case = file_case(member=filer, subject="Export", body="Fails.")
    client.force_login(staff)

    response = client.get(reverse("portal:case_queue"))

    row = response.text.split(f"#{case.pk} ")[1].split("</tr>")[0]
    assert "from now" in row
    assert ">Met</span>" not in row


def test_staff_page_shows_met_for_solved(client, filer, staff):
    case = _solved_case(filer, staff, breached=False)
    client.force_login(staff)

    response = client.get(reverse("portal:case_staff", args=[case.pk]))

    resolution = response.text.split("<dt>Resolution</dt>")[1].split("</dd>")[0]
    assert "Met" in resolution
    assert "Due" not in resolution


def test_staff_empty_thread_wording(client, filer, staff):
    case = file_case(member=filer, subject="Export", body="Fails.")
    client.force_login(staff)

    staff_page = client.get(reverse("portal:case_staff", args=[case.pk]))
    client.force_login(filer.user)
    member_page = client.get(reverse("portal:case_detail", args=[case.pk]))

    assert "you get a notification when they do" not in staff_page.text
    assert "the member gets a notification of a public reply" in staff_page.text
    assert "you get a notification when they do" in member_page.text
