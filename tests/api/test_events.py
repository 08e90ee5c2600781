from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.contenttypes.models import ContentType

from apps.lifecycle.models import ActivityEvent
from apps.membership.models import Account
from tests import factories
from tests.api.helpers import count_queries, result_ids

URL = "/api/v1/events/"
NOON = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)

pytestmark = pytest.mark.django_db


def test_events_list_anonymous_rejected(api_client, member):
    factories.ActivityEventFactory(member=member)

    response = api_client.get(URL)

    assert response.status_code == 401


def test_events_list_staff_sees_all_newest_first(staff_api):
    old = factories.ActivityEventFactory(occurred_at=NOON - timedelta(days=2))
    new = factories.ActivityEventFactory(occurred_at=NOON)
    middle = factories.ActivityEventFactory(occurred_at=NOON - timedelta(days=1))

    response = staff_api.get(URL)

    assert response.status_code == 200
    assert result_ids(response) == [new.pk, middle.pk, old.pk]


def test_events_list_ties_ordered_by_id(staff_api):
    first = factories.ActivityEventFactory(occurred_at=NOON)
    second = factories.ActivityEventFactory(occurred_at=NOON)

    response = staff_api.get(URL)

    assert result_ids(response) == [second.pk, first.pk]


def test_events_list_member_sees_only_own(member_api, member):
    own = factories.ActivityEventFactory(member=member, occurred_at=NOON)
    factories.ActivityEventFactory(
        member=factories.MemberFactory(account=member.account)
    )
    factories.ActivityEventFactory()
    # Signing in records an event of its own, newer than the ones above.
    sign_in = ActivityEvent.objects.get(kind="membership.signed_in")

    response = member_api.get(URL)

    assert result_ids(response) == [sign_in.pk, own.pk]


def test_events_list_account_admin_sees_account(api_client, member, account_admin):
    api_client.force_login(account_admin.user)
    sign_in = ActivityEvent.objects.get(kind="membership.signed_in")
    colleague_event = factories.ActivityEventFactory(member=member, occurred_at=NOON)
    own_event = factories.ActivityEventFactory(
        member=account_admin, occurred_at=NOON + timedelta(hours=1)
    )
    factories.ActivityEventFactory()

    response = api_client.get(URL)

    assert result_ids(response) == [sign_in.pk, own_event.pk, colleague_event.pk]


def test_events_retrieve_fields(staff_api, member):
    reply = factories.ReplyFactory(author=member)
    event = factories.ActivityEventFactory(
        member=member,
        kind="community.reply_posted",
        subject_type=ContentType.objects.get_for_model(reply),
        subject_id=str(reply.pk),
        occurred_at=NOON,
        campaign_id="spring-launch",
        play_id="play-9",
        utm_source="newsletter",
        utm_medium="email",
        utm_campaign="june",
        utm_term="exports",
        utm_content="hero",
        properties={"is_own_topic": False},
        idempotency_key="reply-1",
    )

    response = staff_api.get(f"{URL}{event.pk}/")

    assert response.status_code == 200
    assert response.json() == {
        "id": event.pk,
        "member": member.pk,
        "account": member.account_id,
        "kind": "community.reply_posted",
        "subject_type": "community.reply",
        "subject_id": str(reply.pk),
        "occurred_at": "2025-06-02T12:00:00Z",
        "recorded_at": event.recorded_at.isoformat().replace("+00:00", "Z"),
        "campaign_id": "spring-launch",
        "play_id": "play-9",
        "utm_source": "newsletter",
        "utm_medium": "email",
        "utm_campaign": "june",
        "utm_term": "exports",
        "utm_content": "hero",
        "properties": {"is_own_topic": False},
        "idempotency_key": "reply-1",
    }


def test_events_retrieve_without_subject(staff_api):
    event = factories.ActivityEventFactory()

    response = staff_api.get(f"{URL}{event.pk}/")

    assert response.json()["subject_type"] is None


def test_events_retrieve_own(member_api, member):
    event = factories.ActivityEventFactory(member=member)

    response = member_api.get(f"{URL}{event.pk}/")

    assert response.status_code == 200


def test_events_retrieve_other_account_not_found(member_api):
    event = factories.ActivityEventFactory()

    response = member_api.get(f"{URL}{event.pk}/")

    assert response.status_code == 404


def test_events_filter_member(staff_api, member):
    own = factories.ActivityEventFactory(member=member)
    factories.ActivityEventFactory()

    response = staff_api.get(URL, {"member": member.pk})

    assert result_ids(response) == [own.pk]


def test_events_filter_account(staff_api, member):
    colleague = factories.MemberFactory(account=member.account)
    first = factories.ActivityEventFactory(member=member, occurred_at=NOON)
    second = factories.ActivityEventFactory(
        member=colleague, occurred_at=NOON + timedelta(minutes=1)
    )
    factories.ActivityEventFactory()

    response = staff_api.get(URL, {"account": member.account_id})

    assert result_ids(response) == [second.pk, first.pk]


def test_events_filter_foreign_account_empty(member_api):
    stranger = factories.MemberFactory()
    factories.ActivityEventFactory(member=stranger)

    response = member_api.get(URL, {"account": stranger.account_id})

    assert result_ids(response) == []


def test_events_filter_kind_exact(staff_api):
    exported = factories.ActivityEventFactory(kind="product.report_exported")
    factories.ActivityEventFactory(kind="product.report_exported_twice")

    response = staff_api.get(URL, {"kind": "product.report_exported"})

    assert result_ids(response) == [exported.pk]


def test_events_filter_kind_prefix(staff_api):
    exported = factories.ActivityEventFactory(
        kind="product.report_exported", occurred_at=NOON
    )
    viewed = factories.ActivityEventFactory(
        kind="product.dashboard_viewed", occurred_at=NOON - timedelta(hours=1)
    )
    factories.ActivityEventFactory(kind="membership.signed_in")

    response = staff_api.get(URL, {"kind_prefix": "product."})

    assert result_ids(response) == [exported.pk, viewed.pk]


def test_events_filter_occurred_range_half_open(staff_api):
    factories.ActivityEventFactory(occurred_at=NOON - timedelta(seconds=1))
    at_start = factories.ActivityEventFactory(occurred_at=NOON)
    inside = factories.ActivityEventFactory(occurred_at=NOON + timedelta(minutes=30))
    factories.ActivityEventFactory(occurred_at=NOON + timedelta(hours=1))

    response = staff_api.get(
        URL,
        {
            "occurred_after": "2025-06-02T14:00:00+02:00",
            "occurred_before": "2025-06-02T13:00:00Z",
        },
    )

    assert result_ids(response) == [inside.pk, at_start.pk]


def test_events_filter_invalid_datetime_rejected(staff_api):
    response = staff_api.get(URL, {"occurred_after": "yesterday"})

    assert response.status_code == 400
    assert response.json() == {
        "occurred_after": [
            "Invalid date and time 'yesterday': use ISO 8601, for example "
            "2025-06-02T09:15:00Z."
        ]
    }


def test_events_list_cursor_pages(staff_api, member):
    events = [
        factories.ActivityEventFactory(
            member=member, occurred_at=NOON - timedelta(minutes=index)
        )
        for index in range(51)
    ]

    first_page = staff_api.get(URL).json()
    second_page = staff_api.get(first_page["next"]).json()

    assert [row["id"] for row in first_page["results"]] == [
        event.pk for event in events[:50]
    ]
    assert [row["id"] for row in second_page["results"]] == [events[50].pk]
    assert second_page["next"] is None


def test_events_list_token_auth(staff_token_api):
    event = factories.ActivityEventFactory()

    response = staff_token_api.get(URL)

    assert result_ids(response) == [event.pk]


def test_events_list_query_count_fixed(staff_api, django_assert_num_queries):
    # A subject on every event, so that a lazy load of subject_type would show.
    subject_type = ContentType.objects.get_for_model(Account)
    factories.ActivityEventFactory.create_batch(3, subject_type=subject_type)
    queries_for_3 = count_queries(staff_api, URL)
    factories.ActivityEventFactory.create_batch(27, subject_type=subject_type)

    with django_assert_num_queries(queries_for_3):
        response = staff_api.get(URL)

    assert len(response.json()["results"]) == 30


def test_events_admin_query_count_fixed(
    api_client, account_admin, django_assert_num_queries
):
    # Signing in records the first of the 3 events.
    api_client.force_login(account_admin.user)
    factories.ActivityEventFactory.create_batch(2, member=account_admin)
    queries_for_3 = count_queries(api_client, URL)
    factories.ActivityEventFactory.create_batch(27, member=account_admin)

    with django_assert_num_queries(queries_for_3):
        response = api_client.get(URL)

    assert len(response.json()["results"]) == 30
