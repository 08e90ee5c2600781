import pytest

from apps.lifecycle.models import ActivityEvent
from apps.membership.models import Member
from apps.portal.models import OnboardingProgress, PathCompletion
from apps.portal.services.onboarding import (
    PATH_COMPLETED_KIND,
    STEP_DONE_KIND,
    STEP_UNDONE_KIND,
    mark_step_done,
    mark_step_undone,
)
from rm6.errors import DomainError
from tests import factories
from tests.portal.onboarding.factories import (
    EventStepFactory,
    ManualStepFactory,
    PathFactory,
)

pytestmark = pytest.mark.django_db


def kinds(member) -> list[str]:
    return list(
        ActivityEvent.objects.filter(member=member)
        .order_by("id")
        .values_list("kind", flat=True)
    )


def test_mark_step_done_records_progress_and_event():
    step = ManualStepFactory()
    member = factories.MemberFactory()

    progress = mark_step_done(member=member, step=step)

    assert progress.how == "manual"
    assert kinds(member) == [STEP_DONE_KIND, PATH_COMPLETED_KIND]


def test_mark_step_done_twice_changes_nothing():
    path = PathFactory()
    step = ManualStepFactory(path=path)
    ManualStepFactory(path=path)
    member = factories.MemberFactory()

    first = mark_step_done(member=member, step=step)
    second = mark_step_done(member=member, step=step)

    assert first.pk == second.pk
    assert kinds(member) == [STEP_DONE_KIND]


def test_mark_last_manual_step_completes_path():
    path = PathFactory()
    first, last = ManualStepFactory(path=path), ManualStepFactory(path=path)
    member = factories.MemberFactory()

    mark_step_done(member=member, step=first)
    assert not PathCompletion.objects.filter(member=member).exists()
    mark_step_done(member=member, step=last)

    assert PathCompletion.objects.filter(member=member, path=path).count() == 1


def test_mark_step_undone_deletes_progress_keeps_completion():
    step = ManualStepFactory()
    member = factories.MemberFactory()
    mark_step_done(member=member, step=step)

    was_done = mark_step_undone(member=member, step=step)

    assert was_done is True
    assert not OnboardingProgress.objects.filter(member=member).exists()
    assert PathCompletion.objects.filter(member=member).count() == 1
    assert kinds(member)[-1] == STEP_UNDONE_KIND


def test_mark_step_undone_when_not_done_returns_false():
    step = ManualStepFactory()
    member = factories.MemberFactory()

    assert mark_step_undone(member=member, step=step) is False
    assert kinds(member) == []


def test_mark_event_step_rejected():
    step = EventStepFactory(title="Ask a question")
    member = factories.MemberFactory()

    with pytest.raises(DomainError) as error:
        mark_step_done(member=member, step=step)

    assert error.value.code == "not_manual"
    assert error.value.message == (
        "The step 'Ask a question' completes by itself (done when an event "
        "arrives); only steps done by hand can be marked."
    )
    assert not OnboardingProgress.objects.exists()


def test_mark_step_of_unassigned_path_rejected():
    step = ManualStepFactory(path=PathFactory(roles=[Member.Role.ADMIN]))
    member = factories.MemberFactory(role=Member.Role.MEMBER)

    with pytest.raises(DomainError) as error:
        mark_step_done(member=member, step=step)

    assert error.value.code == "not_assigned"
    assert not OnboardingProgress.objects.exists()


def test_mark_unpublished_step_rejected():
    step = ManualStepFactory(is_published=False)
    member = factories.MemberFactory()

    with pytest.raises(DomainError) as error:
        mark_step_done(member=member, step=step)

    assert error.value.code == "not_published"
