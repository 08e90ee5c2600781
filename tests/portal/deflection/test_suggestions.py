"""The case form's suggestions: visibility, recording, links and buttons."""

import pytest
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse

from apps.community.models import SearchLog, Space
from apps.community.services.access import add_space_member
from apps.lifecycle.models import ActivityEvent
from apps.portal.models import Article, CaseAttempt, Suggestion
from apps.portal.selectors.suggestions import list_case_suggestions
from apps.portal.services.deflection import start_attempt
from tests import factories
from tests.portal.knowledge.factories import make_article, make_solved_question

pytestmark = pytest.mark.django_db
URL = reverse("portal:case_suggestions")


def _titles(answers) -> set[str]:
    return {answer.title for answer in answers}


@pytest.fixture
def attempt(member):
    return start_attempt(member=member, attribution={"campaign_id": "spring"})


def test_suggestions_prefix_matches_last_word(member):
    make_article(title="Export a report to CSV")

    answers = list_case_suggestions(member=member, text="report expo")

    assert _titles(answers) == {"Export a report to CSV"}


def test_suggestions_mix_articles_and_solved_questions(member):
    make_article(title="Export a report to CSV")
    make_solved_question(title="Export stops at 10,000 rows")
    factories.TopicFactory(title="Export button missing")  # not solved

    answers = list_case_suggestions(member=member, text="export")

    assert _titles(answers) == {"Export a report to CSV", "Export stops at 10,000 rows"}
    assert {answer.kind for answer in answers} == {"article", "topic"}


def test_suggestions_match_question_title_not_body(member):
    # Solved questions are matched on their title only (Topic.suggest_vector).
    make_solved_question(title="Export stops at 10,000 rows", body="Invoices fail")
    make_solved_question(title="Login loops", body="Export to CSV fails")

    assert _titles(list_case_suggestions(member=member, text="export")) == {
        "Export stops at 10,000 rows"
    }
    assert list_case_suggestions(member=member, text="invoices") == []


def test_suggestions_follow_question_title_edit(member):
    topic = make_solved_question(title="Login loops")
    topic.title = "Export stops at 10,000 rows"
    topic.save(update_fields=["title"])

    answers = list_case_suggestions(member=member, text="export")

    assert _titles(answers) == {"Export stops at 10,000 rows"}


def test_suggestions_ignore_short_last_word(member):
    make_article(title="Export a report to CSV")

    answers = list_case_suggestions(member=member, text="export r")

    assert _titles(answers) == {"Export a report to CSV"}


def test_suggestions_fall_back_to_any_word(member):
    make_article(title="Export a report to CSV")

    answers = list_case_suggestions(member=member, text="export invoices yesterday")

    assert _titles(answers) == {"Export a report to CSV"}


def test_suggestions_hide_unpublished_article(member):
    make_article(title="Export secrets", is_published=False)

    assert list_case_suggestions(member=member, text="export") == []


def test_suggestions_hide_private_space_topic(member):
    private = factories.SpaceFactory(visibility=Space.Visibility.PRIVATE)
    make_solved_question(title="Export in the private group", space=private)

    assert list_case_suggestions(member=member, text="export") == []


def test_suggestions_show_private_topic_to_group_member(member):
    private = factories.SpaceFactory(visibility=Space.Visibility.PRIVATE)
    make_solved_question(title="Export in the private group", space=private)
    add_space_member(space=private, member=member)

    answers = list_case_suggestions(member=member, text="export")

    assert _titles(answers) == {"Export in the private group"}


def test_suggestions_hide_other_account_topic(member):
    other_space = factories.SpaceFactory(
        visibility=Space.Visibility.ACCOUNT, account=factories.AccountFactory()
    )
    make_solved_question(title="Export for another account", space=other_space)

    assert list_case_suggestions(member=member, text="export") == []


def test_suggestions_hide_hidden_topic(member):
    topic = make_solved_question(title="Export hidden by a moderator")
    topic.is_hidden = True
    topic.save(update_fields=["is_hidden"])

    assert list_case_suggestions(member=member, text="export") == []


def test_suggestions_anonymous_see_public_articles_only():
    make_article(title="Export for members", audience=Article.Audience.MEMBERS)
    make_article(title="Export for everyone", audience=Article.Audience.PUBLIC)

    answers = list_case_suggestions(member=None, text="export")

    assert _titles(answers) == {"Export for everyone"}


def test_suggestions_view_records_each_answer_once(member_client, attempt):
    make_article(title="Export a report to CSV")
    make_solved_question(title="Export stops at 10,000 rows")

    first = member_client.get(URL, {"q": "export", "attempt": attempt.pk})
    second = member_client.get(URL, {"q": "export report", "attempt": attempt.pk})

    assert first.status_code == 200
    assert second.status_code == 200
    assert Suggestion.objects.filter(attempt=attempt).count() == 2
    assert set(Suggestion.objects.values_list("query", flat=True)) == {"export"}
    attempt.refresh_from_db()
    assert attempt.query == "export report"


def test_suggestions_view_links_each_answer(member_client, attempt):
    make_article(title="Export a report to CSV")

    response = member_client.get(URL, {"q": "export", "attempt": attempt.pk})

    suggestion = Suggestion.objects.get(attempt=attempt)
    assert suggestion.rank == 1
    assert reverse("portal:open_suggestion", args=[suggestion.pk]) in response.text
    assert reverse("portal:suggestion_solved", args=[suggestion.pk]) in response.text


def test_suggestions_view_rejects_other_member_attempt(member_client):
    make_article(title="Export a report to CSV")
    other = start_attempt(member=factories.MemberFactory(), attribution={})

    response = member_client.get(URL, {"q": "export", "attempt": other.pk})

    assert response.status_code == 403
    assert Suggestion.objects.count() == 0
    other.refresh_from_db()
    assert other.query == ""


def test_suggestions_view_rejects_bad_attempt_id(member_client):
    response = member_client.get(URL, {"q": "export", "attempt": "abc"})

    assert response.status_code == 403


@pytest.mark.parametrize("params", [{"q": "export"}, {"q": "export", "attempt": " "}])
def test_suggestions_view_missing_attempt(member_client, params):
    response = member_client.get(URL, params)

    assert response.status_code == 400
    assert "The attempt parameter is missing" in response.content.decode()


def test_suggestions_view_requires_sign_in(client, attempt):
    response = client.get(URL, {"q": "export", "attempt": attempt.pk})

    assert response.status_code == 302
    assert Suggestion.objects.count() == 0


def test_suggestions_view_logs_no_result(member_client, member, attempt):
    response = member_client.get(URL, {"q": "quantum teleport", "attempt": attempt.pk})

    assert response.status_code == 200
    log = SearchLog.objects.get()
    assert log.query == "quantum teleport"
    assert log.member == member
    assert log.result_count == 0


def _count_queries(client, attempt, text, django_assert_num_queries, expected):
    with django_assert_num_queries(expected):
        response = client.get(URL, {"q": text, "attempt": attempt.pk})
    assert response.status_code == 200


def test_suggestions_view_query_count_fixed(
    member_client, attempt, django_assert_num_queries
):
    make_article(title="Export report one")
    make_solved_question(title="Export report two")
    # Session, user, attempt with its member, the viewer's space grants (for
    # the cache key), two searches, and one statement that records the query
    # and the answers shown.
    _count_queries(member_client, attempt, "export rep", django_assert_num_queries, 7)

    for number in range(8):
        make_article(title=f"Export report article {number}")
        make_solved_question(title=f"Export report question {number}")
    _count_queries(member_client, attempt, "export repo", django_assert_num_queries, 7)


def test_open_suggestion_stamps_and_redirects(member_client, member, attempt):
    article = make_article(title="Export a report to CSV")
    member_client.get(URL, {"q": "export", "attempt": attempt.pk})
    suggestion = Suggestion.objects.get()

    response = member_client.get(
        reverse("portal:open_suggestion", args=[suggestion.pk])
    )
    member_client.get(reverse("portal:open_suggestion", args=[suggestion.pk]))

    assert response.status_code == 302
    assert response.url == reverse("portal:article", args=[article.slug])
    suggestion.refresh_from_db()
    assert suggestion.opened_at is not None
    events = ActivityEvent.objects.filter(kind="portal.suggestion_opened")
    assert events.count() == 1
    event = events.get()
    assert event.member == member
    assert event.subject_type == ContentType.objects.get_for_model(Article)
    assert event.subject_id == str(article.pk)
    assert event.campaign_id == "spring"


def test_open_suggestion_redirects_to_topic(member_client, attempt):
    topic = make_solved_question(title="Export stops at 10,000 rows")
    member_client.get(URL, {"q": "export", "attempt": attempt.pk})
    suggestion = Suggestion.objects.get()

    response = member_client.get(
        reverse("portal:open_suggestion", args=[suggestion.pk])
    )

    assert response.url == topic.get_absolute_url()


def test_open_suggestion_rejects_other_member(client, attempt):
    make_article(title="Export a report to CSV")
    suggestion = Suggestion.objects.create(
        attempt=attempt, article=Article.objects.get(), shown_at=attempt.started_at
    )
    client.force_login(factories.MemberFactory().user)

    response = client.get(reverse("portal:open_suggestion", args=[suggestion.pk]))

    assert response.status_code == 403
    suggestion.refresh_from_db()
    assert suggestion.opened_at is None


def test_solved_button_deflects_attempt(member_client, attempt):
    make_article(title="Export a report to CSV")
    member_client.get(URL, {"q": "export", "attempt": attempt.pk})
    suggestion = Suggestion.objects.get()

    response = member_client.post(
        reverse("portal:suggestion_solved", args=[suggestion.pk]),
        HTTP_HX_REQUEST="true",
    )

    assert response.status_code == 200
    assert "do not need to file a case" in response.text
    attempt.refresh_from_db()
    assert attempt.outcome == CaseAttempt.Outcome.DEFLECTED
    assert ActivityEvent.objects.filter(kind="portal.suggestion_solved").count() == 1


def test_solved_button_rejects_other_member(client, attempt):
    make_article(title="Export a report to CSV")
    suggestion = Suggestion.objects.create(
        attempt=attempt, article=Article.objects.get(), shown_at=attempt.started_at
    )
    client.force_login(factories.MemberFactory().user)

    response = client.post(reverse("portal:suggestion_solved", args=[suggestion.pk]))

    assert response.status_code == 403
    attempt.refresh_from_db()
    assert attempt.outcome == CaseAttempt.Outcome.PENDING
    assert attempt.solved_by_suggestion_at is None
