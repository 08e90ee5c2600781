import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.admin.rows import ADMIN_MODELS, change_url, changelist_url, make_admin_rows

MODEL_IDS = [model.__name__ for model in ADMIN_MODELS]


def count_queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


@pytest.mark.parametrize("model", ADMIN_MODELS, ids=MODEL_IDS)
def test_changelist_returns_200(admin_client, model):
    make_admin_rows(2)

    response = admin_client.get(changelist_url(model))

    assert response.status_code == 200
    assert response.context["cl"].result_count == model.objects.count()


@pytest.mark.parametrize("model", ADMIN_MODELS, ids=MODEL_IDS)
def test_change_page_returns_200(admin_client, model):
    make_admin_rows(1)

    response = admin_client.get(change_url(model.objects.first()))

    assert response.status_code == 200


@pytest.mark.parametrize("model", ADMIN_MODELS, ids=MODEL_IDS)
def test_changelist_query_count_fixed(admin_client, model):
    make_admin_rows(2)
    url = changelist_url(model)
    admin_client.get(url)
    few = count_queries(admin_client, url)

    make_admin_rows(8)
    many = count_queries(admin_client, url)

    assert model.objects.count() >= 10
    assert many == few


@pytest.mark.parametrize("model", ADMIN_MODELS, ids=MODEL_IDS)
def test_changelist_search_returns_200(admin_client, model):
    make_admin_rows(2)

    response = admin_client.get(changelist_url(model), {"q": "acme"})

    assert response.status_code == 200


def test_changelist_query_count_bounded(admin_client, django_assert_max_num_queries):
    make_admin_rows(10)

    for model in ADMIN_MODELS:
        with django_assert_max_num_queries(12):
            admin_client.get(changelist_url(model))
