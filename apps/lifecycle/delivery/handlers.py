"""The delivery actions that play steps can name, registered at start-up.

Each handler runs inside the play runner's transaction and is safe to call
twice for one step run: the second call finds the row the first wrote,
which is unique on the step run, and changes nothing. Handlers raise
ActionSkipped when the member should not be reached, such as a member
without consent, and DomainError when the step's config is invalid.
"""

from apps.lifecycle.actions import register_action
from apps.lifecycle.delivery import step_config
from apps.lifecycle.delivery.csm_tasks import create_play_csm_task
from apps.lifecycle.delivery.email import send_play_email
from apps.lifecycle.delivery.notifications import create_play_notification
from apps.lifecycle.delivery.webhooks import send_play_webhook


def register_delivery_actions() -> None:
    """Register the in-app, email, CSM task and webhook actions."""
    register_action(
        "in_app",
        create_play_notification,
        label="In-app notification",
        channel="in_app",
        check_config=step_config.check_in_app_config,
        needs_member=True,
    )
    register_action(
        "email",
        send_play_email,
        label="Email",
        channel="email",
        check_config=step_config.check_email_config,
        needs_member=True,
    )
    register_action(
        "csm_task",
        create_play_csm_task,
        label="CSM task",
        check_config=step_config.check_csm_task_config,
    )
    register_action(
        "webhook",
        send_play_webhook,
        label="Webhook",
        check_config=step_config.check_webhook_config,
    )
