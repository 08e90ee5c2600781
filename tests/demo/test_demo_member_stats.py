"""Community counters and trust levels of the demo members."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db.models import Q, Sum

from apps.community.models import Kudos, MemberStats, Reply, Topic
from apps.community.services.abuse import compute_trust_level
from apps.community.services.moderation import recount_member_stats
from apps.membership.models import Member
from rm6.demo import services
from rm6.demo.member_stats import write_member_stats
from tests import factories

SMALL = {"accounts": 3, "members": 20, "days": 30}
FIXED_NOW = datetime(2026, 12, 28, 10, tzinfo=UTC)


@pytest.fixture
def seeded(db):
    return services.seed_demo_data(**SMALL, seed=2026, now=FIXED_NOW)


def demo_members():
    return Member.objects.filter(external_id__startswith=services.DEMO_ID_PREFIX)


def replayed_trust_level(member: Member) -> int:
    """Return the highest level update_trust_level reaches over the member's posts.

    Replays each post in time order, with the counters, solutions and kudos
    the member had at that moment.
    """
    topics = list(Topic.objects.filter(author=member).values_list("created_at"))
    replies = list(Reply.objects.filter(author=member).values_list("created_at"))
    post_times = sorted(at for (at,) in topics + replies)
    solved_times = list(
        Topic.objects.filter(accepted_reply__author=member).values_list(
            "solved_at", flat=True
        )
    )
    kudos_times = list(
        Kudos.objects.filter(
            Q(topic__author=member) | Q(reply__author=member)
        ).values_list("created_at", flat=True)
    )
    level = 0
    for count, posted in enumerate(post_times, start=1):
        stats = MemberStats(
            topic_count=count,
            reply_count=0,
            solution_count=sum(1 for at in solved_times if at <= posted),
            kudos_received=sum(1 for at in kudos_times if at <= posted),
        )
        days = (posted - post_times[0]).days
        level = max(level, compute_trust_level(stats=stats, days_since_first_post=days))
    return level


def test_seed_demo_member_stats_match_recount(seeded):
    members = list(demo_members())

    assert MemberStats.objects.filter(member__in=members).count() == len(members)
    for member in members:
        assert recount_member_stats(member) == {}, member.external_id


def test_seed_demo_member_stats_totals(seeded):
    totals = MemberStats.objects.filter(member__in=demo_members()).aggregate(
        topics=Sum("topic_count"),
        replies=Sum("reply_count"),
        solutions=Sum("solution_count"),
    )
    member_topics = Topic.objects.filter(author__in=demo_members())

    assert totals["topics"] == member_topics.count()
    assert totals["replies"] == Reply.objects.filter(author__in=demo_members()).count()
    assert totals["solutions"] == seeded.solutions
    assert totals["topics"] > 0
    assert totals["replies"] > 0


def test_seed_demo_trust_levels_follow_rule(seeded):
    levels = {}
    for member in demo_members():
        stored = MemberStats.objects.get(member=member).trust_level
        assert stored == replayed_trust_level(member), member.external_id
        levels[member.pk] = stored

    # Some members earn a level, so the check above compares more than zeros.
    assert any(level > 0 for level in levels.values())


def test_seed_demo_second_run_keeps_member_stats(seeded):
    before = list(MemberStats.objects.order_by("pk").values())

    assert services.seed_demo_data(**SMALL, seed=2026, now=FIXED_NOW) is None

    assert list(MemberStats.objects.order_by("pk").values()) == before


def test_write_member_stats_skips_hidden_posts(db):
    member = factories.MemberFactory()
    other = factories.MemberFactory()
    hidden_topic = factories.TopicFactory(author=other, is_hidden=True)
    question = factories.TopicFactory(author=other, kind=Topic.Kind.QUESTION)
    factories.TopicFactory.create_batch(2, author=member)
    factories.TopicFactory(author=member, is_hidden=True)
    factories.TopicFactory(author=member, deleted_at=FIXED_NOW)
    answer = factories.ReplyFactory(topic=question, author=member)
    factories.ReplyFactory(topic=question, author=member)
    factories.ReplyFactory(topic=question, author=member, is_hidden=True)
    factories.ReplyFactory(topic=hidden_topic, author=member)
    Topic.objects.filter(pk=question.pk).update(
        accepted_reply=answer, solved_at=answer.created_at
    )
    Kudos.objects.create(member=other, reply=answer)

    write_member_stats([member.pk])

    stats = MemberStats.objects.get(member=member)
    assert recount_member_stats(member) == {}
    assert stats.topic_count == 2
    assert stats.reply_count == 2
    assert stats.solution_count == 1
    assert stats.kudos_received == 1


def _post_twenty_topics(member: Member, *, start: datetime) -> datetime:
    """Post 20 topics a day apart from `start`; return the last post time."""
    for day in range(20):
        factories.TopicFactory(author=member, created_at=start + timedelta(days=day))
    return start + timedelta(days=19)


def _accept_reply_and_thank(member: Member, *, at: datetime) -> None:
    """Accept a reply by `member` and give it three kudos, all at `at`."""
    question = factories.TopicFactory(kind=Topic.Kind.QUESTION, created_at=at)
    answer = factories.ReplyFactory(topic=question, author=member, created_at=at)
    Topic.objects.filter(pk=question.pk).update(accepted_reply=answer, solved_at=at)
    for _ in range(3):
        Kudos.objects.create(member=factories.MemberFactory(), reply=answer)
    Kudos.objects.filter(reply=answer).update(created_at=at)


def test_write_member_stats_level_at_last_post(db):
    start = FIXED_NOW - timedelta(days=60)
    member = factories.MemberFactory()
    last = _post_twenty_topics(member, start=start)
    _accept_reply_and_thank(member, at=last - timedelta(days=1))

    write_member_stats([member.pk])

    # 21 posts over 19 days, a solution and 3 kudos before the last post.
    assert MemberStats.objects.get(member=member).trust_level == 2


def test_write_member_stats_ignores_later_kudos(db):
    start = FIXED_NOW - timedelta(days=60)
    member = factories.MemberFactory()
    last = _post_twenty_topics(member, start=start)
    _accept_reply_and_thank(member, at=start)
    Kudos.objects.filter(reply__author=member).update(
        created_at=last + timedelta(days=1)
    )

    write_member_stats([member.pk])

    # The kudos came after the last post, and no post re-evaluated the level.
    stats = MemberStats.objects.get(member=member)
    assert stats.kudos_received == 3
    assert stats.trust_level == 1


def test_write_member_stats_keeps_higher_level(db):
    member = factories.MemberFactory()
    factories.TopicFactory(author=member)
    MemberStats.objects.create(member=member, trust_level=4)

    write_member_stats([member.pk])

    stats = MemberStats.objects.get(member=member)
    assert stats.topic_count == 1
    assert stats.trust_level == 4
