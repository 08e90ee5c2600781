"""The certificate list offers "Recertify" only where the reminder email goes.

A certificate is superseded once the member has an unrevoked certificate
of the same certification that expires later. The reminder query skips it,
and so does the list page.
"""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from apps.portal.models import MemberCertificate
from apps.portal.services.certificates import send_certificate_reminders
from tests.portal.courses import factories as cf
from tests.portal.courses.helpers import make_certificate

REMIND_DAYS_BEFORE = 30
RECERTIFY_LINK = b">Recertify</a>"


@pytest.fixture
def certification(db):
    return cf.CertificationFactory(remind_days_before=REMIND_DAYS_BEFORE)


@pytest.fixture
def now():
    return timezone.now()


def add_certificate(member, certification, now, *, days_left: int, **fields):
    return make_certificate(
        expires_at=now + timedelta(days=days_left),
        member=member,
        certification=certification,
        **fields,
    )


def due_on_page(client) -> dict[int, bool]:
    """Return the list page's "Recertify" flag by certificate id."""
    response = client.get(reverse("portal:certificate_list"))
    assert response.status_code == 200
    return {
        row["certificate"].pk: row["is_recertification_due"]
        for row in response.context["rows"]
    }


def reminded_ids(now) -> set[int]:
    """Send the reminders due at `now` and return the ids of reminded certificates."""
    send_certificate_reminders(now=now)
    return set(
        MemberCertificate.objects.filter(reminder_sent_at__isnull=False).values_list(
            "pk", flat=True
        )
    )


def test_superseded_certificate_in_window_not_due(
    member, member_client, certification, now
):
    older = add_certificate(member, certification, now, days_left=10)
    newer = add_certificate(member, certification, now, days_left=375)

    due = due_on_page(member_client)

    assert due[older.pk] is False
    assert due[newer.pk] is False
    assert reminded_ids(now) == set()


def test_expired_certificate_with_newer_valid_not_due(
    member, member_client, certification, now
):
    expired = add_certificate(member, certification, now, days_left=-5)
    newer = add_certificate(member, certification, now, days_left=360)

    response = member_client.get(reverse("portal:certificate_list"))

    assert RECERTIFY_LINK not in response.content
    due = due_on_page(member_client)
    assert due[expired.pk] is False
    assert due[newer.pk] is False


def test_newest_certificate_in_window_due(member, member_client, certification, now):
    expired = add_certificate(member, certification, now, days_left=-300)
    newest = add_certificate(member, certification, now, days_left=10)

    response = member_client.get(reverse("portal:certificate_list"))

    assert response.content.count(RECERTIFY_LINK) == 1
    due = due_on_page(member_client)
    assert due[expired.pk] is False
    assert due[newest.pk] is True
    assert reminded_ids(now) == {newest.pk}


def test_revoked_newer_certificate_supersedes_nothing(
    member, member_client, certification, now
):
    older = add_certificate(member, certification, now, days_left=10)
    revoked = add_certificate(member, certification, now, days_left=375, revoked_at=now)

    due = due_on_page(member_client)

    assert due[older.pk] is True
    assert due[revoked.pk] is False
    assert reminded_ids(now) == {older.pk}


def test_equal_expiry_supersedes_nothing(member, member_client, certification, now):
    first = add_certificate(member, certification, now, days_left=10)
    second = add_certificate(member, certification, now, days_left=10)

    due = due_on_page(member_client)

    assert due[first.pk] is True
    assert due[second.pk] is True
    assert reminded_ids(now) == {first.pk, second.pk}


def test_other_certification_supersedes_nothing(
    member, member_client, certification, now
):
    older = add_certificate(member, certification, now, days_left=10)
    other = add_certificate(
        member,
        cf.CertificationFactory(remind_days_before=REMIND_DAYS_BEFORE),
        now,
        days_left=375,
    )

    due = due_on_page(member_client)

    assert due[older.pk] is True
    assert due[other.pk] is False
    assert reminded_ids(now) == {older.pk}


def test_other_member_certificate_supersedes_nothing(
    member, member_client, certification, now
):
    older = add_certificate(member, certification, now, days_left=10)
    add_certificate(cf.MemberFactory(), certification, now, days_left=375)

    due = due_on_page(member_client)

    assert due[older.pk] is True
    assert reminded_ids(now) == {older.pk}


def test_superseded_list_query_count_fixed(
    member, member_client, certification, now, django_assert_num_queries
):
    add_certificate(member, certification, now, days_left=10)
    with CaptureQueriesContext(connection) as one:
        member_client.get(reverse("portal:certificate_list"))
    add_certificate(member, certification, now, days_left=-200)
    add_certificate(member, certification, now, days_left=200)
    add_certificate(member, certification, now, days_left=400, revoked_at=now)
    add_certificate(member, cf.CertificationFactory(), now, days_left=5)

    with django_assert_num_queries(len(one)):
        response = member_client.get(reverse("portal:certificate_list"))

    assert len(response.context["rows"]) == 5
