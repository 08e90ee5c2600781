from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from apps.lifecycle.models import AccountHealthScore, HealthScore
from apps.membership.models import DataSourceRun
from tests import factories

pytestmark = pytest.mark.django_db


def rescore(*args: str) -> str:
    out = StringIO()
    call_command("rescore_health", *args, stdout=out)
    return out.getvalue()


def test_rescore_health_scores_every_level():
    members = factories.MemberFactory.create_batch(3)

    output = rescore()

    member_ids = {member.pk for member in members}
    account_ids = {member.account_id for member in members}
    assert set(HealthScore.objects.values_list("member_id", flat=True)) == member_ids
    assert (
        set(AccountHealthScore.objects.values_list("account_id", flat=True))
        == account_ids
    )
    assert output.splitlines() == [
        "Scored 3 member(s) in 1 batch(es) with the scorecard "
        "“Default member scorecard”.",
        f"Scored {len(account_ids)} account(s) in 1 batch(es) with the scorecard "
        "“Default account scorecard”.",
    ]


def test_rescore_health_one_level():
    factories.MemberFactory()

    output = rescore("--level", "member")

    assert HealthScore.objects.count() == 1
    assert not AccountHealthScore.objects.exists()
    assert output.startswith("Scored 1 member(s) in 1 batch(es)")


def test_rescore_health_rejects_unknown_level():
    with pytest.raises(CommandError) as error:
        rescore("--level", "team")

    assert "invalid choice: 'team' (choose from 'member', 'account', 'all')" in str(
        error.value
    )


def test_rescore_health_records_score_computation(django_capture_on_commit_callbacks):
    factories.MemberFactory()

    with django_capture_on_commit_callbacks(execute=True):
        rescore("--level", "member")

    run = DataSourceRun.objects.get(source=DataSourceRun.Source.SCORE_COMPUTATION)
    assert run.last_success_at is not None
