from dataclasses import dataclass

from apps.lifecycle.models import ActivityEvent
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


# Per member: the share (%) of published onboarding steps whose completion
# kind the member has an event of, at any time. NULL when nothing is
# published, so that a portal without steps scores 0 on this measure.
_MEMBER_ONBOARDING_SHARE_SQL = f"""
    SELECT m.id AS member_id, m.account_id,
           100.0 * coalesce(done.steps, 0) / nullif(published.steps, 0) AS value
    FROM {Member._meta.db_table} m
    CROSS JOIN (
        SELECT count(*) AS steps FROM {OnboardingStep._meta.db_table}
        WHERE is_published
    ) published
    LEFT JOIN (
        SELECT e.member_id, count(DISTINCT s.id) AS steps
        FROM {OnboardingStep._meta.db_table} s
        JOIN {ActivityEvent._meta.db_table} e ON e.kind = s.completion_kind
        WHERE s.is_published AND e.member_id IN (SELECT id FROM scope)
        GROUP BY e.member_id
    ) done ON done.member_id = m.id
    WHERE m.id IN (SELECT id FROM scope)
"""


def build_onboarding_share_sql(level: str) -> str:
    """Return the onboarding share measure's SQL for a scorecard level.

    An account's value is the mean share of its members, deactivated ones
    excluded. The measure ignores the window: onboarding done once stays done.
    """
    if level == "member":
        return f"""
            WITH scope AS (
                SELECT id FROM {Member._meta.db_table}
                WHERE id = ANY(%(subject_ids)s::bigint[])
            ),
            shares AS ({_MEMBER_ONBOARDING_SHARE_SQL})
            SELECT member_id AS subject_id, value FROM shares
        """
    return f"""
        WITH scope AS (
            SELECT id FROM {Member._meta.db_table}
            WHERE account_id = ANY(%(subject_ids)s::bigint[])
              AND deactivated_at IS NULL
        ),
        shares AS ({_MEMBER_ONBOARDING_SHARE_SQL})
        SELECT account_id AS subject_id, avg(value) AS value
        FROM shares
        GROUP BY account_id
    """
