"""Hand play work to the Celery workers once the current transaction commits.

Messages are sent with `robust=True`: if the broker is unreachable, the
error is logged and the caller's committed work is kept. Beat tasks redo
most of what a lost message would have done: `lifecycle.run_due_enrolments`
runs every due enrolment, and `lifecycle.sweep_event_triggers` evaluates
every event recorded since its previous run. `record_activity` sends no
message at all and relies on that sweep alone.
"""

from datetime import datetime

from django.db import transaction

EVENT_IDS_PER_TASK = 1000
ENROLMENT_IDS_PER_TASK = 20


def _chunks(ids: list[int], size: int) -> list[list[int]]:
    return [ids[start : start + size] for start in range(0, len(ids), size)]


def evaluate_triggers_on_commit(event_ids: list[int]) -> None:
    """Evaluate play triggers for these events after commit, in batched messages."""
    from apps.lifecycle.tasks import evaluate_event_triggers_task

    ids = sorted(set(event_ids))
    if not ids:
        return

    def send() -> None:
        for chunk in _chunks(ids, EVENT_IDS_PER_TASK):
            evaluate_event_triggers_task.delay(event_ids=chunk)

    transaction.on_commit(send, robust=True)


def run_enrolments_on_commit(enrolment_ids: list[int]) -> None:
    """Run these enrolments' first steps after commit, a few per message."""
    from apps.lifecycle.tasks import run_enrolments_task

    ids = sorted(set(enrolment_ids))
    if not ids:
        return

    def send() -> None:
        for chunk in _chunks(ids, ENROLMENT_IDS_PER_TASK):
            run_enrolments_task.delay(enrolment_ids=chunk)

    transaction.on_commit(send, robust=True)


def evaluate_account_band_change_on_commit(
    *, account_id: int, band: str, changed_at: datetime
) -> None:
    """Evaluate account-level band plays for one account after commit.

    NOTE: no beat task redoes this if the message is lost, because account
    band changes leave no event for the sweep to find.
    """
    from apps.lifecycle.tasks import evaluate_account_band_change_task

    def send() -> None:
        evaluate_account_band_change_task.delay(
            account_id=account_id, band=band, changed_at=changed_at.isoformat()
        )

    transaction.on_commit(send, robust=True)
