import threading

import pytest
from django.db import connection

from apps.lifecycle.models import ActivityEvent
from apps.membership.models import AuditEntry
from apps.portal.models import QuizAttempt, QuizChoice
from apps.portal.services.courses import (
    enrol_member,
    reset_quiz_attempts,
    submit_quiz,
)
from rm6.errors import DomainError
from tests.portal.courses import factories as cf


@pytest.fixture
def quiz(course):
    return cf.QuizFactory(course=course, pass_mark=70)


@pytest.fixture
def questions(quiz):
    return cf.add_questions(quiz, 10)


@pytest.fixture
def enrolled(member, course):
    return enrol_member(member=member, course=course)


@pytest.mark.parametrize(
    ("right", "score", "passed"),
    [(10, 100, True), (7, 70, True), (6, 60, False), (0, 0, False)],
)
def test_submit_quiz_grades_against_pass_mark(
    member, quiz, questions, enrolled, right, score, passed
):
    answers = cf.answers_with_right(questions, right)

    attempt = submit_quiz(member=member, quiz=quiz, answers=answers)

    assert attempt.score == score
    assert attempt.passed is passed


def test_submit_quiz_rounds_score_down(member, quiz, enrolled):
    questions = cf.add_questions(quiz, 3)
    quiz.pass_mark = 67
    quiz.save(update_fields=["pass_mark"])

    attempt = submit_quiz(
        member=member, quiz=quiz, answers=cf.answers_with_right(questions, 2)
    )

    # 2 of 3 is 66.7 %, which rounds down to 66 and stays under 67.
    assert attempt.score == 66
    assert attempt.passed is False


def test_submit_quiz_stores_answers(member, quiz, questions, enrolled):
    answers = cf.answers_with_right(questions, 10)

    attempt = submit_quiz(member=member, quiz=quiz, answers=answers)

    stored = QuizAttempt.objects.get(pk=attempt.pk).answers
    assert stored == {str(q): choices for q, choices in answers.items()}


def test_submit_quiz_multiple_answer_needs_exact_set(member, quiz, enrolled):
    question = cf.add_questions(quiz, 1)[0]
    first, second, third = question.choices.order_by("position")
    second.is_correct = True
    second.save(update_fields=["is_correct"])

    partial = submit_quiz(member=member, quiz=quiz, answers={question.pk: [first.pk]})
    extra = submit_quiz(
        member=member,
        quiz=quiz,
        answers={question.pk: [first.pk, second.pk, third.pk]},
    )
    exact = submit_quiz(
        member=member, quiz=quiz, answers={question.pk: [second.pk, first.pk]}
    )

    assert partial.score == 0
    assert extra.score == 0
    assert exact.score == 100


def test_submit_quiz_ignores_client_supplied_score(member, quiz, questions, enrolled):
    answers = cf.answers_with_right(questions, 0)
    answers["score"] = [100]

    with pytest.raises(DomainError) as error:
        submit_quiz(member=member, quiz=quiz, answers=answers)

    assert error.value.message == (
        f"Invalid question id 'score': use the ids of the questions of {quiz.title!r}."
    )
    assert not QuizAttempt.objects.exists()


def test_submit_quiz_rejects_unanswered_question(member, quiz, questions, enrolled):
    answers = cf.answers_with_right(questions, 10)
    del answers[questions[3].pk]

    with pytest.raises(DomainError) as error:
        submit_quiz(member=member, quiz=quiz, answers=answers)

    assert error.value.message == (
        "Answer every question before submitting: question(s) 4 have no answer."
    )
    assert not QuizAttempt.objects.exists()


def test_submit_quiz_rejects_choice_of_other_question(
    member, quiz, questions, enrolled
):
    answers = cf.answers_with_right(questions, 10)
    foreign = QuizChoice.objects.filter(question=questions[1]).first()
    answers[questions[0].pk] = [foreign.pk]

    with pytest.raises(DomainError) as error:
        submit_quiz(member=member, quiz=quiz, answers=answers)

    assert error.value.message == (
        f"Choice(s) [{foreign.pk}] do not belong to question {questions[0].pk}."
    )


def test_submit_quiz_needs_enrolment(member, quiz, questions):
    with pytest.raises(DomainError) as error:
        submit_quiz(
            member=member, quiz=quiz, answers=cf.answers_with_right(questions, 10)
        )

    assert error.value.code == "not_enrolled"


def test_submit_quiz_records_pass_and_fail_events(member, quiz, questions, enrolled):
    submit_quiz(member=member, quiz=quiz, answers=cf.answers_with_right(questions, 1))
    submit_quiz(member=member, quiz=quiz, answers=cf.answers_with_right(questions, 9))

    events = ActivityEvent.objects.filter(member=member, kind__startswith="portal.quiz")
    assert sorted(events.values_list("kind", flat=True)) == [
        "portal.quiz_failed",
        "portal.quiz_passed",
    ]
    passed = events.get(kind="portal.quiz_passed")
    assert passed.properties["score"] == 90


def test_submit_quiz_max_attempts_enforced(member, quiz, questions, enrolled):
    quiz.max_attempts = 2
    quiz.save(update_fields=["max_attempts"])
    wrong = cf.answers_with_right(questions, 0)
    right = cf.answers_with_right(questions, 10)
    submit_quiz(member=member, quiz=quiz, answers=wrong)
    submit_quiz(member=member, quiz=quiz, answers=wrong)

    with pytest.raises(DomainError) as error:
        submit_quiz(member=member, quiz=quiz, answers=right)

    assert error.value.code == "max_attempts"
    assert error.value.message == (
        f"You have used all 2 attempts at {quiz.title!r}. Ask the course team "
        "to reset your attempts."
    )
    assert QuizAttempt.objects.count() == 2


def test_submit_quiz_retake_after_pass_without_certification_rejected(
    member, quiz, questions, enrolled
):
    submit_quiz(member=member, quiz=quiz, answers=cf.answers_with_right(questions, 10))

    with pytest.raises(DomainError) as error:
        submit_quiz(
            member=member, quiz=quiz, answers=cf.answers_with_right(questions, 10)
        )

    assert error.value.code == "already_passed"


def test_submit_quiz_attempts_numbered(member, quiz, questions, enrolled):
    for _ in range(3):
        submit_quiz(
            member=member, quiz=quiz, answers=cf.answers_with_right(questions, 0)
        )

    numbers = QuizAttempt.objects.order_by("number").values_list("number", flat=True)
    assert list(numbers) == [1, 2, 3]


@pytest.mark.django_db(transaction=True)
def test_submit_quiz_max_attempts_hold_under_concurrency():
    member = cf.MemberFactory()
    course = cf.CourseFactory()
    quiz = cf.QuizFactory(course=course, max_attempts=1)
    questions = cf.add_questions(quiz, 2)
    enrol_member(member=member, course=course)
    answers = cf.answers_with_right(questions, 0)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def take_quiz() -> None:
        try:
            barrier.wait()
            submit_quiz(member=member, quiz=quiz, answers=answers)
            outcomes.append("graded")
        except DomainError as error:
            outcomes.append(error.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=take_quiz) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["graded", "max_attempts"]
    assert QuizAttempt.objects.filter(quiz=quiz).count() == 1


def test_reset_quiz_attempts_gives_new_attempts(
    member, quiz, questions, enrolled, staff_user
):
    quiz.max_attempts = 1
    quiz.save(update_fields=["max_attempts"])
    wrong = cf.answers_with_right(questions, 0)
    submit_quiz(member=member, quiz=quiz, answers=wrong)

    reset_quiz_attempts(enrolment=enrolled, reset_by=staff_user)
    attempt = submit_quiz(member=member, quiz=quiz, answers=wrong)

    assert attempt.number == 2
    entry = AuditEntry.objects.get(action="portal.quiz_attempts_reset")
    assert entry.actor == staff_user
    assert entry.details["enrolment_id"] == enrolled.pk


def test_reset_quiz_attempts_by_member_rejected(member, quiz, enrolled):
    with pytest.raises(DomainError):
        reset_quiz_attempts(enrolment=enrolled, reset_by=member.user)

    enrolled.refresh_from_db()
    assert enrolled.quiz_attempts_reset_at is None
