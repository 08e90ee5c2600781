import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from apps.community.models import MemberStats, Topic
from apps.community.services import post_reply, post_topic
from apps.community.services.abuse import (
    POSTING_LIMITS,
    compute_trust_level,
    update_trust_level,
)
from rm6.errors import DomainError
from tests import factories


@pytest.fixture
def space(db):
    return factories.SpaceFactory(visibility="members")


def _post(member, space, number):
    return post_topic(
        author=member, space=space, title=f"Question {number}", body=f"Body {number}"
    )


@pytest.mark.django_db
def test_post_topic_rate_limit_for_new_member(member, space):
    for number in range(POSTING_LIMITS[0].topics):
        _post(member, space, number)

    with pytest.raises(DomainError) as raised:
        _post(member, space, 99)

    assert raised.value.code == "rate_limited"
    assert Topic.objects.filter(author=member).count() == POSTING_LIMITS[0].topics


@pytest.mark.django_db
def test_post_topic_no_limit_for_regular(member, space):
    MemberStats.objects.create(member=member, trust_level=3)

    for number in range(POSTING_LIMITS[0].topics + 2):
        _post(member, space, number)

    assert Topic.objects.filter(author=member).count() == POSTING_LIMITS[0].topics + 2


@pytest.mark.django_db
def test_post_reply_rate_limit_for_new_member(member, space):
    topic = factories.TopicFactory(space=space)
    for number in range(POSTING_LIMITS[0].replies):
        post_reply(author=member, topic=topic, body=f"Reply {number}")

    with pytest.raises(DomainError) as raised:
        post_reply(author=member, topic=topic, body="One more")

    assert raised.value.code == "rate_limited"


@pytest.mark.django_db(transaction=True)
def test_post_topic_two_threads_at_limit(space):
    member = factories.MemberFactory()
    limit = POSTING_LIMITS[0].topics
    for number in range(limit - 1):
        _post(member, space, number)
    barrier = threading.Barrier(2)
    outcomes = []

    def post_in_thread(number):
        try:
            barrier.wait()
            _post(member, space, 100 + number)
            outcomes.append("posted")
        except DomainError as error:
            outcomes.append(error.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=post_in_thread, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["posted", "rate_limited"]
    assert Topic.objects.filter(author=member).count() == limit


@pytest.mark.django_db
def test_post_reply_duplicate_body_rejected(member, space):
    first = factories.TopicFactory(space=space)
    second = factories.TopicFactory(space=space)
    post_reply(author=member, topic=first, body="Try   turning it OFF and on.")

    with pytest.raises(DomainError) as raised:
        post_reply(author=member, topic=second, body="try turning it off\nand on.")

    assert raised.value.message == (
        "You posted the same text in the last 24 hours. Link to your earlier "
        "post instead of posting it again."
    )
    assert second.replies.count() == 0


@pytest.mark.django_db
def test_post_topic_duplicate_of_reply_rejected(member, space):
    post_reply(author=member, topic=factories.TopicFactory(space=space), body="Same")

    with pytest.raises(DomainError):
        post_topic(author=member, space=space, title="New", body="same")


@pytest.mark.django_db
def test_post_reply_duplicate_after_a_day_allowed(member, space):
    factories.ReplyFactory(
        author=member,
        body="Same text",
        created_at=timezone.now() - timedelta(hours=25),
    )

    reply = post_reply(
        author=member, topic=factories.TopicFactory(space=space), body="Same text"
    )

    assert reply.pk is not None


@pytest.mark.django_db
def test_post_reply_same_body_other_member_allowed(member, space):
    topic = factories.TopicFactory(space=space)
    post_reply(author=factories.MemberFactory(), topic=topic, body="+1, same here")

    reply = post_reply(author=member, topic=topic, body="+1, same here")

    assert reply.pk is not None


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("posts", "solutions", "kudos", "days", "level"),
    [
        (2, 0, 0, 5, 0),
        (3, 0, 0, 1, 1),
        (3, 0, 0, 0, 0),
        (20, 1, 3, 14, 2),
        (20, 0, 3, 14, 1),
        (100, 5, 20, 60, 3),
    ],
)
def test_compute_trust_level_rules(member, posts, solutions, kudos, days, level):
    stats = MemberStats(
        member=member,
        topic_count=posts,
        solution_count=solutions,
        kudos_received=kudos,
    )

    assert compute_trust_level(stats=stats, days_since_first_post=days) == level


@pytest.mark.django_db
def test_update_trust_level_never_lowers(member):
    MemberStats.objects.create(member=member, trust_level=4)
    factories.TopicFactory(author=member)

    assert update_trust_level(member=member) == 4


@pytest.mark.django_db
def test_update_trust_level_raises_after_post(member, space):
    factories.TopicFactory(
        author=member, space=space, created_at=timezone.now() - timedelta(days=3)
    )
    MemberStats.objects.create(member=member, topic_count=3)

    _post(member, space, 1)

    assert MemberStats.objects.get(member=member).trust_level == 1
