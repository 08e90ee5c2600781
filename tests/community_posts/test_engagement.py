import threading

import pytest
from django.db import connection

from apps.community.models import Kudos, MemberStats, Space, Topic, Vote
from apps.community.services.engagement import (
    give_kudos,
    remove_kudos,
    unvote,
    vote,
)
from apps.lifecycle.models import ActivityEvent
from rm6.errors import DomainError
from tests import factories


@pytest.fixture
def topic(db):
    return factories.TopicFactory(space__visibility=Space.Visibility.MEMBERS)


@pytest.fixture
def voter(db):
    return factories.MemberFactory()


def score(post) -> int:
    post.refresh_from_db()
    return post.vote_score


def test_vote_up_counts_and_records_event(topic, voter):
    vote(member=voter, post=topic, value=1)

    assert score(topic) == 1
    event = ActivityEvent.objects.get(kind="community.voted")
    assert event.properties["value"] == 1
    assert event.subject_id == str(topic.pk)


def test_vote_change_of_mind_moves_score_by_difference(topic, voter):
    vote(member=voter, post=topic, value=1)
    vote(member=voter, post=topic, value=-1)

    assert score(topic) == -1
    assert Vote.objects.get().value == -1


def test_vote_repeated_changes_nothing(topic, voter):
    vote(member=voter, post=topic, value=1)
    vote(member=voter, post=topic, value=1)

    assert score(topic) == 1
    assert ActivityEvent.objects.filter(kind="community.voted").count() == 1


def test_unvote_restores_score(topic, voter):
    vote(member=voter, post=topic, value=-1)

    unvote(member=voter, post=topic)
    unvote(member=voter, post=topic)

    assert score(topic) == 0
    assert not Vote.objects.exists()
    assert ActivityEvent.objects.filter(kind="community.vote_withdrawn").count() == 1


def test_vote_own_post_rejected(topic):
    with pytest.raises(DomainError, match="You cannot vote on your own post"):
        vote(member=topic.author, post=topic, value=1)

    assert score(topic) == 0
    assert not Vote.objects.exists()


def test_vote_invalid_value_rejected(topic, voter):
    with pytest.raises(DomainError, match="A vote is"):
        vote(member=voter, post=topic, value=2)

    assert not Vote.objects.exists()


def test_vote_down_on_idea_rejected(voter):
    idea = factories.TopicFactory(kind=Topic.Kind.IDEA)

    with pytest.raises(DomainError, match="Ideas take only up votes"):
        vote(member=voter, post=idea, value=-1)

    assert score(idea) == 0


def test_vote_in_unreadable_space_rejected(voter):
    private = factories.TopicFactory(
        space__visibility=Space.Visibility.ACCOUNT,
        space__account=factories.AccountFactory(),
    )

    with pytest.raises(DomainError, match="You cannot vote on posts in this space"):
        vote(member=voter, post=private, value=1)

    assert score(private) == 0


def test_vote_on_reply_counts(voter):
    reply = factories.ReplyFactory()

    vote(member=voter, post=reply, value=-1)

    assert score(reply) == -1


def test_kudos_counts_post_and_author(topic, voter):
    give_kudos(member=voter, post=topic)
    give_kudos(member=voter, post=topic)

    topic.refresh_from_db()
    assert topic.kudos_count == 1
    assert MemberStats.objects.get(member=topic.author).kudos_received == 1
    assert ActivityEvent.objects.filter(kind="community.kudos_given").count() == 1


def test_remove_kudos_restores_counts(topic, voter):
    give_kudos(member=voter, post=topic)

    remove_kudos(member=voter, post=topic)
    remove_kudos(member=voter, post=topic)

    topic.refresh_from_db()
    assert topic.kudos_count == 0
    assert MemberStats.objects.get(member=topic.author).kudos_received == 0
    assert not Kudos.objects.exists()


def test_kudos_own_post_rejected(topic):
    with pytest.raises(DomainError, match="your own post"):
        give_kudos(member=topic.author, post=topic)

    topic.refresh_from_db()
    assert topic.kudos_count == 0
    assert not MemberStats.objects.filter(member=topic.author).exists()


def test_kudos_on_hidden_reply_rejected(voter):
    reply = factories.ReplyFactory(is_hidden=True)

    with pytest.raises(DomainError, match="hidden or deleted"):
        give_kudos(member=voter, post=reply)

    assert not Kudos.objects.exists()


def _run_in_threads(*targets) -> list[BaseException]:
    """Start the callables together, each on its own connection; return errors."""
    barrier = threading.Barrier(len(targets))
    errors: list[BaseException] = []

    def run(target):
        try:
            barrier.wait()
            target()
        # Every error is handed to the test, which asserts there were none.
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(t,)) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


@pytest.mark.django_db(transaction=True)
def test_vote_concurrent_members_both_count():
    topic = factories.TopicFactory()
    first, second = factories.MemberFactory(), factories.MemberFactory()

    errors = _run_in_threads(
        lambda: vote(member=first, post=topic, value=1),
        lambda: vote(member=second, post=topic, value=1),
    )

    assert errors == []
    assert score(topic) == 2
    assert Vote.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_vote_concurrent_same_member_counts_once():
    topic = factories.TopicFactory()
    voter = factories.MemberFactory()

    errors = _run_in_threads(
        lambda: vote(member=voter, post=topic, value=1),
        lambda: vote(member=voter, post=topic, value=1),
        lambda: vote(member=voter, post=topic, value=1),
    )

    assert errors == []
    assert score(topic) == 1
    assert Vote.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_kudos_concurrent_same_member_counts_once():
    topic = factories.TopicFactory()
    giver = factories.MemberFactory()

    errors = _run_in_threads(
        lambda: give_kudos(member=giver, post=topic),
        lambda: give_kudos(member=giver, post=topic),
    )

    topic.refresh_from_db()
    assert errors == []
    assert topic.kudos_count == 1
    assert MemberStats.objects.get(member=topic.author).kudos_received == 1
