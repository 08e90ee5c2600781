import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from apps.lifecycle.delivery.context_processors import unread_notifications
from apps.lifecycle.models import Notification
from tests import factories

LIST_URL = reverse("delivery:notifications")
READ_ALL_URL = reverse("delivery:notifications_read_all")


def notify(member, title: str = "Hello", url: str = "", read: bool = False):
    return Notification.objects.create(
        member=member,
        title=title,
        url=url,
        read_at=timezone.now() if read else None,
    )


def open_url(notification) -> str:
    return reverse("delivery:notification_open", args=[notification.pk])


def read_url(notification) -> str:
    return reverse("delivery:notification_read", args=[notification.pk])


@pytest.fixture
def other_member(db):
    return factories.MemberFactory()


def test_notification_list_shows_only_own(member_client, member, other_member):
    notify(member, title="Mine")
    notify(other_member, title="Theirs")

    response = member_client.get(LIST_URL)

    assert response.status_code == 200
    titles = [n.title for n in response.context["page_obj"].object_list]
    assert titles == ["Mine"]
    assert b"Theirs" not in response.content


def test_notification_list_newest_first(member_client, member):
    older = notify(member, title="Older")
    newer = notify(member, title="Newer")
    Notification.objects.filter(pk=older.pk).update(
        created_at=newer.created_at - timezone.timedelta(hours=1)
    )

    response = member_client.get(LIST_URL)

    titles = [n.title for n in response.context["page_obj"].object_list]
    assert titles == ["Newer", "Older"]


def test_notification_list_anonymous_redirects(client):
    response = client.get(LIST_URL)

    assert response.status_code == 302
    assert response.url.startswith(reverse("account_login"))


def test_notification_list_staff_without_member(staff_client):
    response = staff_client.get(LIST_URL)

    assert response.status_code == 200
    assert b"staff account without a member profile" in response.content


def test_notification_list_query_count_fixed(member_client, member):
    for _ in range(3):
        notify(member)
    member_client.get(LIST_URL)
    with CaptureQueriesContext(connection) as few:
        member_client.get(LIST_URL)

    for _ in range(15):
        notify(member)
    with CaptureQueriesContext(connection) as many:
        member_client.get(LIST_URL)

    assert len(many) == len(few)


def test_notification_list_paginates(member_client, member):
    for index in range(25):
        notify(member, title=f"N{index}")

    response = member_client.get(LIST_URL, {"page": 2})

    assert len(response.context["page_obj"].object_list) == 5


def test_nav_badge_shows_unread_count(member_client, member):
    notify(member)
    notify(member)
    notify(member, read=True)

    response = member_client.get(LIST_URL)

    assert (
        b'<span class="badge badge--count">2<span class="visually-hidden"> unread'
        in (response.content)
    )


def test_unread_count_one_query(member, django_assert_num_queries):
    notify(member)
    request = RequestFactory().get("/")
    request.user = member.user

    with django_assert_num_queries(1):
        count = unread_notifications(request)["unread_notification_count"]
        assert count == 1
        assert str(count) == "1"


def test_unread_count_no_query_for_anonymous(db, django_assert_num_queries):
    request = RequestFactory().get("/")
    request.user = AnonymousUser()

    with django_assert_num_queries(0):
        context = unread_notifications(request)

    assert context["unread_notification_count"] == 0


def test_unread_count_no_query_when_unused(member, django_assert_num_queries):
    request = RequestFactory().get("/")
    request.user = member.user

    with django_assert_num_queries(0):
        unread_notifications(request)


def test_notification_open_marks_read_and_redirects(member_client, member):
    notification = notify(member, url="/community/?play_id=welcome-2025")

    response = member_client.get(open_url(notification))

    assert response.status_code == 302
    assert response.url == "/community/?play_id=welcome-2025"
    notification.refresh_from_db()
    assert notification.read_at is not None


def test_notification_open_keeps_first_read_time(member_client, member):
    notification = notify(member, url="/community/", read=True)
    first_read_at = notification.read_at

    member_client.get(open_url(notification))

    notification.refresh_from_db()
    assert notification.read_at == first_read_at


def test_notification_open_unsafe_scheme(member_client, member):
    notification = notify(member, url="javascript:alert(1)")

    response = member_client.get(open_url(notification))

    assert response.status_code == 302
    assert response.url == LIST_URL


def test_notification_open_others_404(member_client, other_member):
    notification = notify(other_member, url="/community/")

    response = member_client.get(open_url(notification))

    assert response.status_code == 404
    notification.refresh_from_db()
    assert notification.read_at is None


def test_notification_read_marks_read(member_client, member):
    notification = notify(member)

    response = member_client.post(read_url(notification))

    assert response.status_code == 302
    notification.refresh_from_db()
    assert notification.read_at is not None


def test_notification_read_htmx_partial(member_client, member):
    notification = notify(member)
    notify(member)

    response = member_client.post(read_url(notification), HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    content = response.content.decode()
    assert f'id="notification-{notification.pk}"' in content
    assert "notification--unread" not in content
    assert 'id="unread-notifications" hx-swap-oob="true"' in content
    assert ">1<" in content


def test_notification_read_others_404(member_client, other_member):
    notification = notify(other_member)

    response = member_client.post(read_url(notification))

    assert response.status_code == 404
    notification.refresh_from_db()
    assert notification.read_at is None


def test_notification_read_rejects_get(member_client, member):
    notification = notify(member)

    response = member_client.get(read_url(notification))

    assert response.status_code == 405
    notification.refresh_from_db()
    assert notification.read_at is None


def test_read_all_marks_only_own(member_client, member, other_member):
    notify(member)
    notify(member)
    theirs = notify(other_member)

    response = member_client.post(READ_ALL_URL)

    assert response.status_code == 302
    assert Notification.objects.filter(member=member, read_at__isnull=True).count() == 0
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_read_all_htmx_partial(member_client, member):
    notify(member)

    response = member_client.post(READ_ALL_URL, HTTP_HX_REQUEST="true")

    content = response.content.decode()
    assert response.status_code == 200
    assert 'id="notification-list"' in content
    assert "Mark all as read" not in content
    assert 'id="unread-notifications" hx-swap-oob="true"></span>' in content


def test_read_all_staff_without_member_403(staff_client):
    response = staff_client.post(READ_ALL_URL)

    assert response.status_code == 403


def test_read_all_anonymous_changes_nothing(client, member):
    notification = notify(member)

    response = client.post(READ_ALL_URL)

    assert response.status_code == 302
    notification.refresh_from_db()
    assert notification.read_at is None
