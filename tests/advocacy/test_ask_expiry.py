from datetime import timedelta

import pytest
from django.utils import timezone

from apps.advocacy.models import AdvocacyAsk
from apps.advocacy.services import (
    create_advocacy_ask,
    expire_overdue_asks,
    respond_to_ask,
)
from apps.advocacy.tasks import expire_overdue_asks_task
from rm6.errors import DomainError
from tests import factories

pytestmark = pytest.mark.django_db


def _ask(member, **fields) -> AdvocacyAsk:
    ask, _ = create_advocacy_ask(
        member=member, kind="review", message="Would you review us?", **fields
    )
    return ask


def test_expire_overdue_asks_only_open_past_due():
    member = factories.MemberFactory()
    today = timezone.localdate()
    overdue = _ask(member, due_on=today - timedelta(days=1))
    due_today = _ask(member, due_on=today)
    undated = _ask(member)
    answered = _ask(member, due_on=today - timedelta(days=3))
    AdvocacyAsk.objects.filter(pk=answered.pk).update(
        status=AdvocacyAsk.Status.DECLINED
    )

    assert expire_overdue_asks() == 1
    assert expire_overdue_asks() == 0

    statuses = dict(AdvocacyAsk.objects.values_list("pk", "status"))
    assert statuses[overdue.pk] == AdvocacyAsk.Status.EXPIRED
    assert statuses[due_today.pk] == AdvocacyAsk.Status.OPEN
    assert statuses[undated.pk] == AdvocacyAsk.Status.OPEN
    assert statuses[answered.pk] == AdvocacyAsk.Status.DECLINED


def test_expire_task_expires_overdue_ask():
    member = factories.MemberFactory()
    ask = _ask(member, due_on=timezone.localdate() - timedelta(days=2))

    assert expire_overdue_asks_task.apply().get() == 1

    ask.refresh_from_db()
    assert ask.status == AdvocacyAsk.Status.EXPIRED


def test_respond_to_overdue_ask_rejected():
    member = factories.MemberFactory()
    due_on = timezone.localdate() - timedelta(days=1)
    ask = _ask(member, due_on=due_on)

    with pytest.raises(DomainError, match=f"expired after {due_on.isoformat()}"):
        respond_to_ask(ask=ask, member=member, accept=True)

    ask.refresh_from_db()
    assert ask.status == AdvocacyAsk.Status.OPEN


def test_member_export_has_badges_and_asks():
    from apps.advocacy.models import Badge
    from apps.advocacy.services import award_badge
    from apps.membership.exports import build_member_export

    member = factories.MemberFactory()
    badge = Badge.objects.create(slug="helper", name="Helper", description="-")
    award_badge(member=member, badge=badge, reason="first reply")
    due_on = timezone.localdate()
    _ask(member, due_on=due_on)

    export = build_member_export(member)["advocacy"]

    assert [b["slug"] for b in export["badges"]] == ["helper"]
    assert export["badges"][0]["reason"] == "first reply"
    assert len(export["asks"]) == 1
    assert export["asks"][0]["kind"] == "review"
    assert export["asks"][0]["status"] == AdvocacyAsk.Status.OPEN
    assert export["asks"][0]["due_on"] == due_on
