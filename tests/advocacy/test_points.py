import pytest
from django.db import IntegrityError, connection, transaction

from apps.advocacy.models import PointsEntry
from apps.advocacy.selectors import get_points_balance
from apps.advocacy.services import award_points
from apps.lifecycle.services import record_activity
from rm6.errors import DomainError
from tests import factories


def test_award_points_balance_is_sum_of_entries(db):
    member = factories.MemberFactory()

    award_points(member=member, points=25, reason="manual")
    award_points(member=member, points=-5, reason="correction", note="double count")

    assert get_points_balance(member=member) == 20


def test_award_points_once_per_event_and_reason(db):
    member = factories.MemberFactory()
    event = record_activity(member=member, kind="membership.signed_in")

    first = award_points(member=member, points=10, reason="sign_in", event=event)
    second = award_points(member=member, points=10, reason="sign_in", event=event)

    assert first.pk == second.pk
    assert get_points_balance(member=member) == 10


def test_award_points_zero_rejected(db):
    with pytest.raises(DomainError, match="0 points"):
        award_points(member=factories.MemberFactory(), points=0, reason="manual")


def test_points_ledger_rejects_update(db):
    entry = award_points(member=factories.MemberFactory(), points=5, reason="manual")

    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        PointsEntry.objects.filter(pk=entry.pk).update(points=500)


def test_points_ledger_rejects_delete(db):
    entry = award_points(member=factories.MemberFactory(), points=5, reason="manual")

    with (
        pytest.raises(IntegrityError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("DELETE FROM advocacy_pointsentry WHERE id = %s", [entry.pk])

    assert PointsEntry.objects.filter(pk=entry.pk).exists()
