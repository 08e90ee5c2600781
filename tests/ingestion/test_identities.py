"""User IDs that a Segment source ties to a member beside their external ID."""

import pytest

from apps.lifecycle.ingestion.sources import create_segment_source
from apps.lifecycle.models import ActivityEvent, SegmentIdentity
from apps.membership.exports import build_member_export
from apps.membership.services.merge import merge_members
from apps.membership.services.profiles import delete_member_account
from tests import factories
from tests.ingestion.helpers import identify, post_batch, track

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


def test_source_identity_wins_over_later_external_id(client, segment_source, erin):
    # Another source makes u-9 the external ID of someone else afterwards.
    marcela = factories.MemberFactory(external_id="", user__email="marcela@acme.test")
    _, other_key = create_segment_source(name="Mobile", links_identities=True)
    post_batch(
        client, other_key, [identify("m-2", user_id="u-9", email="marcela@acme.test")]
    )

    post_batch(client, segment_source.write_key, [track("m-3", user_id="u-9")])
    post_batch(client, other_key, [track("m-4", user_id="u-9")])

    marcela.refresh_from_db()
    assert marcela.external_id == "u-9"
    assert ActivityEvent.objects.get(idempotency_key__endswith=":m-3").member == erin
    assert ActivityEvent.objects.get(idempotency_key__endswith=":m-4").member == marcela


def test_other_members_email_not_tied(client, segment_source):
    factories.MemberFactory(external_id="crm-1", user__email="erin@acme.test")
    maite = factories.MemberFactory(user__email="maite@acme.test")

    response = post_batch(
        client,
        segment_source.write_key,
        [
            identify("m-1", user_id="maite@acme.test", email="erin@acme.test"),
            track("m-2", user_id="maite@acme.test"),
        ],
    )

    assert response.json()["not_linked"] == 1
    assert not SegmentIdentity.objects.exists()
    assert ActivityEvent.objects.get().member == maite


def test_long_user_id_tied_as_identity(client, segment_source):
    ana = factories.MemberFactory(external_id="", user__email="ana@acme.test")
    long_id = "u" * 150

    response = post_batch(
        client,
        segment_source.write_key,
        [
            identify("m-1", user_id=long_id, email="ana@acme.test"),
            track("m-2", user_id=long_id),
        ],
    )

    ana.refresh_from_db()
    assert response.json()["not_linked"] == 0
    assert ana.external_id == ""
    assert SegmentIdentity.objects.get().member == ana
    assert ActivityEvent.objects.get().member == ana


def test_identify_user_id_of_other_member_ties_nothing(client, segment_source):
    erin = factories.MemberFactory(external_id="crm-1", user__email="erin@acme.test")
    factories.MemberFactory(external_id="u-9")

    response = post_batch(
        client,
        segment_source.write_key,
        [identify("m-1", user_id="u-9", email="erin@acme.test")],
    )

    # The userId names the other member, so the message identifies them.
    assert response.json()["identified"] == 1
    assert not SegmentIdentity.objects.filter(member=erin).exists()
