import threading
import time

import pytest
from django.db import connection, transaction

from apps.lifecycle.models import Enrolment
from apps.lifecycle.plays.services import Candidate, enrol_subjects
from tests import factories
from tests.plays.factories import PlayFactory


def _candidate(member, occurrence_key="42") -> Candidate:
    return Candidate(
        occurrence_key=occurrence_key, member_id=member.pk, account_id=member.account_id
    )


@pytest.mark.django_db
def test_enrol_subjects_twice_enrols_once():
    play = PlayFactory()
    member = factories.MemberFactory()

    first = enrol_subjects(play=play, candidates=[_candidate(member)])
    second = enrol_subjects(play=play, candidates=[_candidate(member)])

    assert len(first) == 1
    assert second == []
    assert Enrolment.objects.filter(play=play).count() == 1


@pytest.mark.django_db
def test_enrol_subjects_new_occurrence_enrols_again():
    play = PlayFactory()
    member = factories.MemberFactory()

    enrol_subjects(play=play, candidates=[_candidate(member, "2026-04-08")])
    enrol_subjects(play=play, candidates=[_candidate(member, "2027-04-08")])

    assert Enrolment.objects.filter(play=play).count() == 2


@pytest.mark.django_db
def test_enrol_subjects_repeated_candidate_in_batch_enrols_once():
    play = PlayFactory()
    member = factories.MemberFactory()

    created = enrol_subjects(play=play, candidates=[_candidate(member)] * 3)

    assert len(created) == 1


@pytest.mark.django_db(transaction=True)
def test_enrol_subjects_concurrent_transactions_enrol_once(broker_prefix):
    # The committed enrolment queues a run; the prefix keeps that message out
    # of the queues other test runs read.
    play = PlayFactory()
    member = factories.MemberFactory()
    first_inserted = threading.Event()
    results: dict[str, list[int]] = {}

    def first() -> None:
        try:
            with transaction.atomic():
                results["first"] = enrol_subjects(
                    play=play, candidates=[_candidate(member)]
                )
                first_inserted.set()
                # Keep the row uncommitted while the second insert arrives.
                time.sleep(0.5)
        finally:
            connection.close()

    def second() -> None:
        try:
            first_inserted.wait(timeout=10)
            results["second"] = enrol_subjects(
                play=play, candidates=[_candidate(member)]
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(results["first"]) == 1
    assert results["second"] == []
    assert Enrolment.objects.filter(play=play).count() == 1
