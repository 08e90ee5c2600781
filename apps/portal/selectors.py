from dataclasses import dataclass

from apps.lifecycle.selectors import list_kinds_recorded
from apps.membership.models import Member
from apps.portal.models import OnboardingStep


@dataclass(frozen=True)
class ChecklistItem:
    step: OnboardingStep
    is_done: bool


def get_onboarding_checklist(*, member: Member) -> list[ChecklistItem]:
    """Return the published onboarding steps with whether the member did each.

    Two queries whatever the number of steps or events.
    """
    steps = list(OnboardingStep.objects.filter(is_published=True))
    done = list_kinds_recorded(member=member, kinds=[s.completion_kind for s in steps])
    return [ChecklistItem(step=s, is_done=s.completion_kind in done) for s in steps]
