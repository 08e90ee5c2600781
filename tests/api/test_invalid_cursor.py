"""Hand-edited cursors on every cursor-paginated API list get a 404, not a 500.

DRF only uses a cursor's position (`p`) in the queryset filter, so a position
that does not fit the ordering field (an integer, a date or a timestamp
here) used to fail while the page was read.
"""

import base64

import pytest
from django.urls import get_resolver
from rest_framework import pagination as drf_pagination
from rest_framework.test import APIClient

from apps.membership.models import Member
from rm6.pagination import INVALID_CURSOR_MESSAGE, CursorPagination
from tests import factories

pytestmark = pytest.mark.django_db

BAD_POSITIONS = [
    "zzz",
    "NaN",
    "1e400",
    "",
    "1.5",
    "2026-13-45",
    "a\x00b",
]

# Paths relative to /api/v1/ of lists from several apps, ordered by integer,
# date and timestamp fields. `{account}` and `{member}` are filled in per test.
LIST_PATHS = [
    "portal/onboarding/paths/",
    "portal/onboarding/accounts/{account}/members/{member}/",
    "portal/hubs/",
    "portal/courses/",
    "portal/cases/",
    "portal/articles/",
    "portal/certificates/",
    "community/topics/",
    "community/spaces/",
    "events/",
    "health-scores/",
    "accounts/",
    "accounts/{account}/arr-history/",
    "members/",
]


def encode_cursor(query: str) -> str:
    return base64.b64encode(query.encode()).decode()


@pytest.fixture
def staff_member_client():
    """Return an API client for a staff user who is also an account admin."""
    member = factories.MemberFactory(role=Member.Role.ADMIN)
    member.user.is_staff = True
    member.user.save(update_fields=["is_staff"])
    client = APIClient()
    client.force_authenticate(member.user)
    client.member = member
    return client


def list_url(client, path: str) -> str:
    member = client.member
    return "/api/v1/" + path.format(account=member.account_id, member=member.pk)


@pytest.mark.parametrize("path", LIST_PATHS)
def test_list_without_cursor_succeeds(staff_member_client, path):
    response = staff_member_client.get(list_url(staff_member_client, path))

    assert response.status_code == 200, response.content


@pytest.mark.parametrize("position", BAD_POSITIONS)
@pytest.mark.parametrize("path", LIST_PATHS)
def test_bad_cursor_position_gets_404(staff_member_client, path, position):
    url = list_url(staff_member_client, path)

    response = staff_member_client.get(url, {"cursor": encode_cursor(f"p={position}")})

    assert response.status_code == 404, response.content
    assert response.json()["detail"] == INVALID_CURSOR_MESSAGE


@pytest.mark.parametrize("path", LIST_PATHS)
def test_huge_cursor_position_no_500(staff_member_client, path):
    url = list_url(staff_member_client, path)
    cursor = encode_cursor("p=99999999999999999999999999")

    response = staff_member_client.get(url, {"cursor": cursor})

    # Django matches no row for an integer beyond the column's range, so an
    # integer position gives an empty page and a date or timestamp one a 404.
    assert response.status_code in (200, 404), response.content


@pytest.mark.parametrize("path", ["portal/courses/", "events/", "community/topics/"])
def test_bad_reverse_cursor_position_gets_404(staff_member_client, path):
    url = list_url(staff_member_client, path)

    response = staff_member_client.get(url, {"cursor": encode_cursor("r=1&p=zzz")})

    assert response.status_code == 404, response.content
    assert response.json()["detail"] == INVALID_CURSOR_MESSAGE


def test_undecodable_cursor_gets_same_message(staff_member_client):
    response = staff_member_client.get("/api/v1/accounts/", {"cursor": "abc"})

    assert response.status_code == 404
    assert response.json()["detail"] == INVALID_CURSOR_MESSAGE


def test_valid_cursor_still_pages(staff_member_client):
    for _ in range(3):
        factories.SpaceFactory()
    first = staff_member_client.get(
        "/api/v1/community/spaces/", {"page_size": 2}
    ).json()

    second = staff_member_client.get(first["next"])

    assert second.status_code == 200
    first_slugs = [row["slug"] for row in first["results"]]
    second_slugs = [row["slug"] for row in second.json()["results"]]
    assert len(first_slugs) == 2
    assert len(second_slugs) == 1
    assert not set(first_slugs) & set(second_slugs)


def collect_api_views():
    """Yield (route, view class, action names) for every DRF view in the URLs."""

    def walk(patterns, prefix):
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if hasattr(pattern, "url_patterns"):
                yield from walk(pattern.url_patterns, route)
                continue
            view_class = getattr(pattern.callback, "cls", None)
            if view_class is not None:
                actions = getattr(pattern.callback, "actions", None) or {}
                yield route, view_class, set(actions.values())

    yield from walk(get_resolver().url_patterns, "")


def test_every_cursor_pagination_uses_shared_class():
    for route, view_class, actions in collect_api_views():
        classes = [getattr(view_class, "pagination_class", None)]
        for action in actions:
            handler = getattr(view_class, action, None)
            classes.append(getattr(handler, "kwargs", {}).get("pagination_class"))
        for pagination_class in classes:
            if pagination_class is None:
                continue
            if issubclass(pagination_class, drf_pagination.CursorPagination):
                assert issubclass(pagination_class, CursorPagination), route


def test_drf_cursor_subclasses_only_shared():
    # Loading the URL patterns imports every API module.
    assert get_resolver().url_patterns

    direct_subclasses = drf_pagination.CursorPagination.__subclasses__()

    assert direct_subclasses == [CursorPagination]
