"""Keyboard focus after htmx replaces the item whose button was pressed."""

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from playwright.sync_api import Page, expect

from apps.lifecycle.models import CsmTask, Notification
from tests import factories
from tests.browser.test_post_question import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_mark_as_read_moves_focus_to_heading(live_server, page: Page):
    member = factories.MemberFactory()
    notification = Notification.objects.create(member=member, title="Renewal soon")

    sign_in(page, live_server.url, email=member.user.email)
    page.goto(live_server.url + reverse("delivery:notifications"))
    page.get_by_role("button", name="Mark as read").focus()
    page.keyboard.press("Enter")

    heading_id = f"notification-{notification.pk}-title"
    expect(page.locator(f"#{heading_id}")).not_to_contain_text("Unread")
    expect(page.locator(f"#{heading_id}")).to_be_focused()


def test_mark_done_moves_focus_to_heading(live_server, page: Page):
    staff = get_user_model().objects.create_user(
        "csm@example.com", "csm@example.com", factories.PASSWORD, is_staff=True
    )
    task = CsmTask.objects.create(
        account=factories.AccountFactory(), title="Call", owner=staff
    )

    page.goto(live_server.url + reverse("account_login"))
    page.locator('input[name="login"]').fill(staff.email)
    page.locator('input[name="password"]').fill(factories.PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    page.goto(live_server.url + reverse("delivery:csm_tasks"))
    page.get_by_role("button", name="Mark done").focus()
    page.keyboard.press("Enter")

    heading_id = f"csm-task-{task.pk}-title"
    expect(page.locator(f"#{heading_id}")).to_contain_text("Done")
    expect(page.locator(f"#{heading_id}")).to_be_focused()
