"""The suggestion cache: shared by viewers who see the same content, never
by viewers who do not, and never showing what changed since it was filled.
Also the one-statement record of what was shown."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.community.models import Space, SpaceMembership
from apps.community.selectors.access import topic_visibility_key
from apps.community.services.access import add_space_member, remove_space_member
from apps.portal.models import Article
from apps.portal.selectors.suggestions import list_case_suggestions
from apps.portal.services.deflection import record_suggestions_shown, start_attempt
from tests import factories
from tests.portal.knowledge.factories import make_article, make_solved_question

pytestmark = pytest.mark.django_db


def _titles(answers) -> set[str]:
    return {answer.title for answer in answers}


def _queries(function) -> tuple[object, int]:
    with CaptureQueriesContext(connection) as context:
        result = function()
    return result, len(context.captured_queries)


def test_cache_hit_skips_search(member):
    make_article(title="Export a report to CSV")
    make_solved_question(title="Export stops at 10,000 rows")

    first, first_count = _queries(
        lambda: list_case_suggestions(member=member, text="export")
    )
    second, second_count = _queries(
        lambda: list_case_suggestions(member=member, text="  Export ")
    )

    assert (
        _titles(second)
        == _titles(first)
        == {
            "Export a report to CSV",
            "Export stops at 10,000 rows",
        }
    )
    assert [answer.key for answer in second] == [answer.key for answer in first]
    # Miss: visibility key and two searches. Hit: key and two reads by id.
    assert first_count == 3
    assert second_count == 3
    with CaptureQueriesContext(connection) as context:
        list_case_suggestions(member=member, text="export")
    assert not any("ts_rank" in query["sql"] for query in context.captured_queries)


def test_visibility_key_shared_across_accounts():
    first, second = factories.MemberFactory(), factories.MemberFactory()

    assert first.account_id != second.account_id
    assert topic_visibility_key(first) == topic_visibility_key(second)


def test_cache_private_topic_stays_private():
    account = factories.AccountFactory()
    insider = factories.MemberFactory(account=account)
    outsider = factories.MemberFactory(account=account)
    private = factories.SpaceFactory(visibility=Space.Visibility.PRIVATE)
    add_space_member(space=private, member=insider)
    make_solved_question(title="Export in the private group", space=private)

    assert _titles(list_case_suggestions(member=insider, text="export")) == {
        "Export in the private group"
    }
    assert list_case_suggestions(member=outsider, text="export") == []
    assert topic_visibility_key(insider) != topic_visibility_key(outsider)


def test_cache_account_topic_stays_in_account():
    mine = factories.MemberFactory()
    theirs = factories.MemberFactory()
    space = factories.SpaceFactory(
        visibility=Space.Visibility.ACCOUNT, account=mine.account
    )
    make_solved_question(title="Export for my account", space=space)

    assert _titles(list_case_suggestions(member=mine, text="export")) == {
        "Export for my account"
    }
    assert list_case_suggestions(member=theirs, text="export") == []


def test_cache_hidden_topic_moderator_only():
    moderator, reader = factories.MemberFactory(), factories.MemberFactory()
    private = factories.SpaceFactory(visibility=Space.Visibility.PRIVATE)
    add_space_member(
        space=private, member=moderator, role=SpaceMembership.Role.MODERATOR
    )
    add_space_member(space=private, member=reader)
    topic = make_solved_question(title="Export hidden in the group", space=private)
    topic.is_hidden = True
    topic.save(update_fields=["is_hidden"])

    assert _titles(list_case_suggestions(member=moderator, text="export")) == {
        "Export hidden in the group"
    }
    assert list_case_suggestions(member=reader, text="export") == []


def test_cache_members_article_members_only():
    member = factories.MemberFactory()
    deactivated = factories.MemberFactory(deactivated_at=timezone.now())
    make_article(title="Export for members", audience=Article.Audience.MEMBERS)

    assert _titles(list_case_suggestions(member=member, text="export")) == {
        "Export for members"
    }
    assert list_case_suggestions(member=None, text="export") == []
    assert list_case_suggestions(member=deactivated, text="export") == []


def test_cache_drops_hidden_and_unpublished(member):
    article = make_article(title="Export a report to CSV")
    topic = make_solved_question(title="Export stops at 10,000 rows")
    assert len(list_case_suggestions(member=member, text="export")) == 2

    Article.objects.filter(pk=article.pk).update(is_published=False)
    topic.is_hidden = True
    topic.save(update_fields=["is_hidden"])

    assert list_case_suggestions(member=member, text="export") == []


def test_cache_shows_current_titles(member):
    article = make_article(title="Export a report to CSV")
    list_case_suggestions(member=member, text="export")

    Article.objects.filter(pk=article.pk).update(title="Export a report as CSV")

    assert _titles(list_case_suggestions(member=member, text="export")) == {
        "Export a report as CSV"
    }


def test_cache_removed_group_member_loses_topic():
    member = factories.MemberFactory()
    private = factories.SpaceFactory(visibility=Space.Visibility.PRIVATE)
    add_space_member(space=private, member=member)
    make_solved_question(title="Export in the private group", space=private)
    assert len(list_case_suggestions(member=member, text="export")) == 1

    remove_space_member(space=private, member=member)

    assert list_case_suggestions(member=member, text="export") == []


def test_cache_outsider_gets_own_best():
    account = factories.AccountFactory()
    insider = factories.MemberFactory(account=account)
    outsider = factories.MemberFactory(account=account)
    private = factories.SpaceFactory(visibility=Space.Visibility.PRIVATE)
    add_space_member(space=private, member=insider)
    make_solved_question(title="Export export export", space=private)
    make_solved_question(title="Export once, among other words")

    insider_best = list_case_suggestions(member=insider, text="export", limit=1)
    outsider_best = list_case_suggestions(member=outsider, text="export", limit=1)

    assert _titles(insider_best) == {"Export export export"}
    # A cache shared across visibility would give the insider's list, and the
    # outsider would see nothing once the private topic is filtered out.
    assert _titles(outsider_best) == {"Export once, among other words"}


def test_record_shown_keeps_first_row(member):
    attempt = start_attempt(member=member, attribution={})
    make_article(title="Export a report to CSV")
    make_solved_question(title="Export stops at 10,000 rows")
    answers = list_case_suggestions(member=member, text="export")
    first = record_suggestions_shown(attempt=attempt, query="exp", answers=answers[:1])

    second, count = _queries(
        lambda: record_suggestions_shown(
            attempt=attempt, query="export", answers=list(reversed(answers))
        )
    )

    assert count == 1
    assert [answer.key for answer, _ in second] == [
        answer.key for answer in reversed(answers)
    ]
    first_row = {answer.key: row for answer, row in second}[answers[0].key]
    assert first_row.pk == first[0][1].pk
    assert first_row.query == "exp"
    assert first_row.rank == 1
    attempt.refresh_from_db()
    assert attempt.query == "export"
