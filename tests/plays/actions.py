"""Play actions for tests, registered in the test process and in test workers.

Models are imported inside the handlers because test workers import this
module before Django is set up.
"""

import time
from pathlib import Path

from apps.lifecycle.actions import (
    ActionContext,
    ActionResult,
    ActionSkipped,
    register_action,
)

TEST_CHANNEL = "test"
# Upper bound on how long `block_on_file` waits, so a failed test never
# leaves a worker blocked for good.
MAX_BLOCK_SECONDS = 120


def _notify(context: ActionContext) -> None:
    from apps.lifecycle.models import Notification

    Notification.objects.create(
        member=context.member,
        title=context.step.config.get("title", "Test touch"),
        play=context.play,
        step_run=context.step_run,
    )


def touch_member(context: ActionContext) -> ActionResult:
    """Write a notification for the step run, then sleep `sleep_seconds` if set."""
    _notify(context)
    time.sleep(context.step.config.get("sleep_seconds", 0))
    return ActionResult(outcome="notified")


def block_on_file(context: ActionContext) -> ActionResult:
    """Write a notification, create `started_file`, wait while `block_file` exists."""
    config = context.step.config
    _notify(context)
    Path(config["started_file"]).touch()
    deadline = time.monotonic() + MAX_BLOCK_SECONDS
    while Path(config["block_file"]).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return ActionResult(outcome="unblocked")


def fail_for_members(context: ActionContext) -> ActionResult:
    """Raise for the members listed in `member_ids`; notify the others."""
    if context.member.pk in context.step.config.get("member_ids", []):
        raise RuntimeError(f"test failure for member {context.member.pk}")
    _notify(context)
    return ActionResult(outcome="notified")


def create_account_task(context: ActionContext) -> ActionResult:
    """Write a CSM task for the enrolment's account."""
    from apps.lifecycle.models import CsmTask

    CsmTask.objects.create(
        account=context.account,
        title="Test task",
        play=context.play,
        step_run=context.step_run,
    )
    return ActionResult(outcome="task created")


def touch_with_marker(context: ActionContext) -> ActionResult:
    """Write the step run's touch itself, as the email handler does."""
    from apps.lifecycle.models import Touch

    Touch.objects.get_or_create(
        step_run=context.step_run,
        defaults={
            "member": context.member,
            "channel": TEST_CHANNEL,
            "play": context.play,
            "touched_at": context.step_run.started_at,
        },
    )
    return ActionResult(outcome="marked")


def skip_step(context: ActionContext) -> ActionResult:
    raise ActionSkipped("nothing to send today")


def register_test_actions() -> None:
    register_action(
        "test_touch", touch_member, label="Test touch", channel=TEST_CHANNEL
    )
    register_action("test_block", block_on_file, label="Test block")
    register_action("test_fail", fail_for_members, label="Test failure")
    register_action("test_account_task", create_account_task, label="Test task")
    register_action("test_skip", skip_step, label="Test skip")
    register_action(
        "test_marker", touch_with_marker, label="Test marker", channel=TEST_CHANNEL
    )
