"""User IDs that a Segment source ties to a member beside their external ID."""

import pytest

from apps.lifecycle.models import SegmentIdentity
from apps.membership.exports import build_member_export
from apps.membership.services.merge import merge_members
from apps.membership.services.profiles import delete_member_account
from tests import factories
from tests.ingestion.helpers import identify, post_batch

pytestmark = pytest.mark.django_db


@pytest.fixture
def erin(client, segment_source):
    member = factories.MemberFactory(external_id="crm-1", user__email="erin@acme.test")
    post_batch(
        client,
        segment_source.write_key,
        [identify("m-1", user_id="u-9", email="erin@acme.test")],
    )
    return member


def test_merge_moves_identities_to_survivor(erin):
    survivor = factories.MemberFactory(account=erin.account)

    merge_members(survivor=survivor, duplicate=erin, actor=None)

    assert SegmentIdentity.objects.get().member == survivor


def test_deleted_account_loses_identities(erin):
    delete_member_account(member=erin, actor=erin.user)

    assert not SegmentIdentity.objects.exists()


def test_member_export_lists_identities(erin, segment_source):
    export = build_member_export(erin)

    [identity] = export["segment_identities"]["identities"]
    assert identity["source"] == segment_source.name
    assert identity["user_id"] == "u-9"
