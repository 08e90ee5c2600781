"""The page_size parameter of the cursor-paginated API lists."""

import pytest

from apps.community.models import Space
from tests import factories

pytestmark = pytest.mark.django_db

TOPICS_URL = "/api/v1/community/topics/"


@pytest.fixture
def three_topics():
    space = factories.SpaceFactory(visibility=Space.Visibility.PUBLIC)
    return [factories.TopicFactory(space=space) for _ in range(3)]


@pytest.mark.parametrize("page_size", ["abc", "0", "-1", "1.5", "²"])
def test_page_size_invalid_rejected(member_api, three_topics, page_size):
    response = member_api.get(TOPICS_URL, {"page_size": page_size})

    assert response.status_code == 400
    assert response.json() == {
        "page_size": [
            f"Invalid page_size {page_size!r}: use a whole number from 1 to 100."
        ]
    }


def test_page_size_valid_sets_page_length(member_api, three_topics):
    response = member_api.get(TOPICS_URL, {"page_size": "2"})

    assert response.status_code == 200
    assert len(response.json()["results"]) == 2


def test_page_size_above_maximum_capped(member_api, three_topics):
    response = member_api.get(TOPICS_URL, {"page_size": "1000"})

    assert response.status_code == 200
    assert len(response.json()["results"]) == 3


def test_page_size_empty_uses_default(member_api, three_topics):
    response = member_api.get(TOPICS_URL, {"page_size": ""})

    assert response.status_code == 200
    assert len(response.json()["results"]) == 3
