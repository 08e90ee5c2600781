import pytest
from rest_framework.test import APIClient

from apps.community.models import Space
from apps.membership.models import Member
from apps.membership.services.roles import sync_role_groups
from apps.portal.models import OnboardingProgress
from apps.portal.services.onboarding import sync_all_progress
from tests import factories
from tests.portal.onboarding.factories import (
    ArticleFactory,
    EventStepFactory,
    HubFactory,
    ManualStepFactory,
    PathFactory,
    add_hub_item,
)

pytestmark = pytest.mark.django_db

API = "/api/v1/portal"


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_paths_api_lists_assigned_paths_with_progress():
    path = PathFactory(title="First week")
    asked = EventStepFactory(path=path, completion_kind="community.question_posted")
    ManualStepFactory(path=path, title="Invite your team")
    PathFactory(roles=[Member.Role.ADMIN])
    member = factories.MemberFactory()
    factories.ActivityEventFactory(member=member, kind="community.question_posted")

    response = client_for(member.user).get(f"{API}/onboarding/paths/")

    [data] = response.json()["results"]
    assert response.status_code == 200
    assert data["slug"] == path.slug
    assert (data["total"], data["done"], data["percent"]) == (2, 1, 50)
    assert data["completed_at"] is None
    assert [s["is_done"] for s in data["steps"]] == [True, False]
    assert data["steps"][0]["id"] == asked.pk
    assert data["steps"][0]["how"] == "event"


def test_paths_api_anonymous_rejected(api_client):
    response = api_client.get(f"{API}/onboarding/paths/")

    assert response.status_code == 401


def test_paths_api_user_without_member_forbidden():
    response = client_for(factories.StaffFactory()).get(f"{API}/onboarding/paths/")

    assert response.status_code == 403


def test_path_detail_api_unassigned_is_404():
    path = PathFactory(roles=[Member.Role.ADMIN])
    EventStepFactory(path=path)
    member = factories.MemberFactory()

    response = client_for(member.user).get(f"{API}/onboarding/paths/{path.slug}/")

    assert response.status_code == 404


def test_step_done_api_marks_and_unmarks():
    step = ManualStepFactory()
    member = factories.MemberFactory()
    client = client_for(member.user)
    url = f"{API}/onboarding/steps/{step.pk}/done/"

    done = client.put(url)
    again = client.put(url)
    assert done.status_code == 200
    assert done.json()["is_done"] is True
    assert again.json()["is_done"] is True
    assert done.json()["path"]["completed_at"] is not None
    assert OnboardingProgress.objects.filter(member=member).count() == 1

    undone = client.delete(url)
    assert undone.status_code == 200
    assert undone.json()["is_done"] is False
    assert not OnboardingProgress.objects.filter(member=member).exists()


def test_step_done_api_event_step_is_400_and_changes_nothing():
    step = EventStepFactory(title="Ask a question")
    member = factories.MemberFactory()

    response = client_for(member.user).put(f"{API}/onboarding/steps/{step.pk}/done/")

    assert response.status_code == 400
    assert response.json()["code"] == "not_manual"
    assert not OnboardingProgress.objects.exists()


def test_step_done_api_other_role_step_is_404():
    step = ManualStepFactory(path=PathFactory(roles=[Member.Role.ADMIN]))
    member = factories.MemberFactory()

    response = client_for(member.user).put(f"{API}/onboarding/steps/{step.pk}/done/")

    assert response.status_code == 404
    assert not OnboardingProgress.objects.exists()


@pytest.fixture
def account():
    csm = factories.StaffFactory()
    account = factories.AccountFactory(owner=csm)
    path = PathFactory()
    EventStepFactory(path=path, completion_kind="community.question_posted")
    done = factories.MemberFactory(account=account)
    factories.MemberFactory(account=account)
    factories.ActivityEventFactory(member=done, kind="community.question_posted")
    sync_all_progress()
    return account


def test_account_progress_api_for_csm(account):
    response = client_for(account.owner).get(f"{API}/onboarding/accounts/{account.pk}/")

    data = response.json()
    assert response.status_code == 200
    assert data["member_count"] == 2
    assert data["paths"][0]["assigned"] == 2
    assert data["paths"][0]["completed"] == 1
    assert sorted(m["paths"][0]["done"] for m in data["members"]) == [0, 1]


def test_account_progress_api_for_account_admin(account):
    admin = factories.MemberFactory(account=account, role=Member.Role.ADMIN)
    sync_role_groups(admin)

    response = client_for(admin.user).get(f"{API}/onboarding/accounts/{account.pk}/")

    assert response.status_code == 200


@pytest.mark.parametrize("who", ["member_of_account", "admin_of_other_account"])
def test_account_progress_api_refused(account, who):
    if who == "member_of_account":
        user = account.members.first().user
    else:
        other_admin = factories.MemberFactory(role=Member.Role.ADMIN)
        sync_role_groups(other_admin)
        user = other_admin.user
    client = client_for(user)
    member_id = account.members.first().pk

    progress = client.get(f"{API}/onboarding/accounts/{account.pk}/")
    member_paths = client.get(
        f"{API}/onboarding/accounts/{account.pk}/members/{member_id}/"
    )

    assert progress.status_code == 404
    assert member_paths.status_code == 404


def test_account_member_paths_api_for_staff(account):
    member = account.members.order_by("pk").first()

    response = client_for(factories.StaffFactory()).get(
        f"{API}/onboarding/accounts/{account.pk}/members/{member.pk}/"
    )

    assert response.status_code == 200
    assert response.json()["results"][0]["done"] == 1


def test_hubs_api_lists_published_hubs():
    HubFactory(title="Reporting")
    HubFactory(title="Draft", is_published=False)
    member = factories.MemberFactory()

    response = client_for(member.user).get(f"{API}/hubs/")

    assert [hub["title"] for hub in response.json()["results"]] == ["Reporting"]


def test_hub_detail_api_hides_private_items():
    hub = HubFactory()
    add_hub_item(hub, ArticleFactory(title="Export guide"))
    private = factories.SpaceFactory(visibility=Space.Visibility.PRIVATE)
    add_hub_item(hub, factories.TopicFactory(title="Secret", space=private))
    member = factories.MemberFactory()

    response = client_for(member.user).get(f"{API}/hubs/{hub.slug}/")

    assert response.status_code == 200
    assert [item["title"] for item in response.json()["items"]] == ["Export guide"]


def test_hub_detail_api_draft_is_404_for_members():
    hub = HubFactory(is_published=False)
    member = factories.MemberFactory()

    response = client_for(member.user).get(f"{API}/hubs/{hub.slug}/")

    assert response.status_code == 404


def test_hubs_api_is_read_only():
    hub = HubFactory()
    member = factories.MemberFactory()

    response = client_for(member.user).post(f"{API}/hubs/{hub.slug}/", {})

    assert response.status_code == 405


def test_schema_documents_onboarding_endpoints(staff_client):
    response = staff_client.get("/api/schema/")

    schema = response.content.decode()
    assert response.status_code == 200
    assert "/api/v1/portal/onboarding/paths/" in schema
    assert "/api/v1/portal/hubs/{slug}/" in schema
