"""Cursor pagination of the onboarding path lists in the portal API."""

import pytest
from rest_framework.test import APIClient

from apps.portal.models import OnboardingPath
from apps.portal.services.onboarding import mark_step_done
from tests import factories
from tests.portal.onboarding.factories import (
    EventStepFactory,
    ManualStepFactory,
    PathFactory,
)

pytestmark = pytest.mark.django_db

API = "/api/v1/portal"


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def make_paths(count: int, *, member=None) -> list[OnboardingPath]:
    """Create `count` paths of two steps each, the manual one done by `member`."""
    paths = []
    for position in range(count):
        path = PathFactory(position=position)
        EventStepFactory(path=path, completion_kind="community.question_posted")
        manual = ManualStepFactory(path=path)
        if member is not None:
            mark_step_done(member=member, step=manual)
        paths.append(path)
    return paths


def test_paths_api_pages_in_path_order():
    member = factories.MemberFactory()
    paths = make_paths(3)
    client = client_for(member.user)

    first = client.get(f"{API}/onboarding/paths/", {"page_size": 2}).json()
    second = client.get(first["next"]).json()

    assert [p["slug"] for p in first["results"]] == [paths[0].slug, paths[1].slug]
    assert [p["slug"] for p in second["results"]] == [paths[2].slug]
    assert first["previous"] is None
    assert second["next"] is None


def test_paths_api_page_skips_paths_without_published_steps():
    member = factories.MemberFactory()
    PathFactory(position=0, title="No steps yet")
    unpublished = PathFactory(position=1, title="Draft steps")
    ManualStepFactory(path=unpublished, is_published=False)
    paths = make_paths(2)

    response = client_for(member.user).get(f"{API}/onboarding/paths/", {"page_size": 2})

    data = response.json()
    assert [p["slug"] for p in data["results"]] == [p.slug for p in paths]
    assert data["next"] is None


def test_paths_api_page_size_above_max_accepted():
    member = factories.MemberFactory()
    make_paths(1)

    response = client_for(member.user).get(
        f"{API}/onboarding/paths/", {"page_size": 500}
    )

    assert response.status_code == 200
    assert len(response.json()["results"]) == 1


@pytest.mark.parametrize("path_count", [2, 12])
def test_paths_api_query_count_fixed(path_count, django_assert_num_queries):
    member = factories.MemberFactory()
    make_paths(path_count, member=member)
    client = client_for(member.user)

    # The sync's two statements inside a savepoint, the page of paths, then
    # steps, progress and completions. The member comes from the user's cache.
    with django_assert_num_queries(8):
        response = client.get(f"{API}/onboarding/paths/")

    results = response.json()["results"]
    assert len(results) == path_count
    assert {p["done"] for p in results} == {1}


@pytest.mark.parametrize("path_count", [2, 12])
def test_account_member_paths_api_query_count_fixed(
    path_count, django_assert_num_queries
):
    csm = factories.StaffFactory()
    account = factories.AccountFactory(owner=csm)
    member = factories.MemberFactory(account=account)
    make_paths(path_count, member=member)
    client = client_for(csm)
    url = f"{API}/onboarding/accounts/{account.pk}/members/{member.pk}/"

    # The account, the member, the member's account for the path filters,
    # the page of paths, then steps, progress and completions.
    with django_assert_num_queries(7):
        response = client.get(url)

    results = response.json()["results"]
    assert len(results) == path_count
    assert {p["percent"] for p in results} == {50}


def test_account_member_paths_api_pages():
    csm = factories.StaffFactory()
    account = factories.AccountFactory(owner=csm)
    member = factories.MemberFactory(account=account)
    paths = make_paths(3)
    client = client_for(csm)
    url = f"{API}/onboarding/accounts/{account.pk}/members/{member.pk}/"

    first = client.get(url, {"page_size": 2}).json()
    second = client.get(first["next"]).json()

    assert [p["slug"] for p in first["results"]] == [paths[0].slug, paths[1].slug]
    assert [p["slug"] for p in second["results"]] == [paths[2].slug]


def test_schema_documents_paginated_path_lists(staff_client):
    schema = staff_client.get("/api/schema/?format=json").json()

    for url in (
        "/api/v1/portal/onboarding/paths/",
        "/api/v1/portal/onboarding/accounts/{id}/members/{member_id}/",
    ):
        operation = schema["paths"][url]["get"]
        content = operation["responses"]["200"]["content"]["application/json"]
        parameters = {parameter["name"] for parameter in operation["parameters"]}
        assert content["schema"]["$ref"].endswith("/PaginatedPathProgressList")
        assert {"cursor", "page_size"} <= parameters
