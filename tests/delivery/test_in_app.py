import pytest

from apps.lifecycle.actions import ActionSkipped, get_action
from apps.lifecycle.delivery.notifications import create_play_notification
from apps.lifecycle.models import Notification
from rm6.errors import DomainError

CONFIG = {
    "title": "Welcome, {{ member_name }}",
    "body": "Your team at {{ account_name }} is set up.",
    "url": "/community/?space=start",
}


@pytest.mark.parametrize(
    ("name", "channel"),
    [("in_app", "in_app"), ("email", "email"), ("csm_task", None), ("webhook", None)],
)
def test_delivery_actions_registered(name, channel):
    action = get_action(name)

    assert action is not None
    assert action.channel == channel


def test_in_app_creates_notification(make_context, enrolled_member, play):
    ctx = make_context("in_app", CONFIG)

    result = create_play_notification(ctx)

    notification = Notification.objects.get()
    assert result.outcome == "notification created"
    assert result.details == {"notification_id": notification.pk}
    assert notification.member == enrolled_member
    assert notification.title == "Welcome, Robin"
    assert notification.body == "Your team at Acme Corp is set up."
    assert notification.play == play
    assert notification.step_run == ctx.step_run
    assert notification.read_at is None


def test_in_app_link_carries_play_id(make_context):
    ctx = make_context("in_app", CONFIG)

    create_play_notification(ctx)

    notification = Notification.objects.get()
    assert notification.url == (
        "/community/?space=start&play_id=welcome-2025&campaign_id=q3-onboarding"
    )


def test_in_app_title_rendering_empty_creates_nothing(make_context):
    config = {**CONFIG, "title": "{% if account_name == 'Other' %}Hi{% endif %}"}
    ctx = make_context("in_app", config)

    with pytest.raises(DomainError) as error:
        create_play_notification(ctx)

    assert "'title' text of the in_app step" in error.value.message
    assert not Notification.objects.exists()


def test_in_app_twice_creates_one(make_context):
    ctx = make_context("in_app", CONFIG)

    first = create_play_notification(ctx)
    second = create_play_notification(ctx)

    assert Notification.objects.count() == 1
    assert second.outcome == "notification already created"
    assert second.details == first.details


def test_in_app_skipped_when_turned_off(make_context, enrolled_member):
    enrolled_member.in_app_notifications = False
    enrolled_member.save(update_fields=["in_app_notifications"])
    ctx = make_context("in_app", CONFIG)

    with pytest.raises(ActionSkipped) as skipped:
        create_play_notification(ctx)

    assert str(skipped.value) == "member turned in-app notifications off"
    assert Notification.objects.count() == 0


def test_in_app_skipped_for_account_subject(make_context, enrolled_member):
    ctx = make_context("in_app", CONFIG, member=None, account=enrolled_member.account)

    with pytest.raises(ActionSkipped) as skipped:
        create_play_notification(ctx)

    assert str(skipped.value) == "in-app notifications need a member, not an account"


def test_in_app_without_url_has_no_link(make_context):
    ctx = make_context("in_app", {"title": "Thanks"})

    create_play_notification(ctx)

    assert Notification.objects.get().url == ""


def test_in_app_too_long_url_raises(make_context):
    ctx = make_context("in_app", {"title": "Hi", "url": "/" + "a" * 480})

    with pytest.raises(DomainError) as error:
        create_play_notification(ctx)

    assert error.value.code == "invalid_step_config"
    assert Notification.objects.count() == 0
