import os
from pathlib import Path

import pytest
from django.urls import reverse
from playwright.sync_api import Page, expect

from apps.community.models import Space, Topic
from apps.portal.models import OnboardingStep
from tests import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Set to a folder to save screenshots of the pages the tests visit.
SCREENSHOT_DIR = os.environ.get("RM6_SCREENSHOT_DIR", "")


def save_screenshot(page: Page, name: str) -> None:
    if SCREENSHOT_DIR:
        page.screenshot(path=str(Path(SCREENSHOT_DIR) / name), full_page=True)


def sign_in(page: Page, base_url: str, *, email: str) -> None:
    page.goto(base_url + reverse("account_login"))
    page.locator('input[name="login"]').fill(email)
    page.locator('input[name="password"]').fill(factories.PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    expect(page).to_have_url(base_url + reverse("portal:home"))


def test_post_question_listed_in_space(live_server, page: Page):
    member = factories.MemberFactory(display_name="Robin Park")
    space = factories.SpaceFactory(
        name="Questions", slug="questions", visibility=Space.Visibility.MEMBERS
    )
    factories.OnboardingStepFactory(
        title="Ask your first question",
        completion_kind="community.question_posted",
        url=space.get_absolute_url(),
    )
    factories.OnboardingStepFactory(
        title="Export a report", completion_kind="product.report_exported"
    )

    sign_in(page, live_server.url, email=member.user.email)
    page.goto(live_server.url + space.get_absolute_url())
    page.get_by_role("link", name="Ask a question").click()
    page.get_by_label("Title").fill("How do I export invoices?")
    page.get_by_label("Body").fill("I looked under Billing.\n\nWhere else?")
    page.get_by_label("Kind").select_option("question")
    page.get_by_role("button", name="Post", exact=True).click()

    expect(page.get_by_role("heading", level=1)).to_contain_text(
        "How do I export invoices?"
    )
    expect(page.get_by_text("Your question is posted.")).to_be_visible()
    page.goto(live_server.url + space.get_absolute_url())
    expect(page.get_by_role("link", name="How do I export invoices?")).to_be_visible()
    assert Topic.objects.get().author == member
    assert OnboardingStep.objects.count() == 2

    page.goto(live_server.url + reverse("portal:home"))
    expect(page.get_by_text("1 of 2 steps done")).to_be_visible()
    save_screenshot(page, "portal-home.png")


def test_reply_appears_without_reload(live_server, page: Page):
    member = factories.MemberFactory()
    topic = factories.TopicFactory(
        title="Sync stops at night", body="Every night at 2:00 the sync stops."
    )
    factories.ReplyFactory(topic=topic, body="Same here since Tuesday.")

    sign_in(page, live_server.url, email=member.user.email)
    page.goto(live_server.url + topic.get_absolute_url())
    # A full page load would drop this marker; an htmx swap keeps it.
    page.evaluate("window.pageMarker = 'still here'")
    page.get_by_label("Your reply").fill("Check the maintenance window setting.")
    page.get_by_role("button", name="Post reply").click()

    expect(page.locator("#reply-list > li.post")).to_have_count(2)
    expect(page.locator("#reply-list")).to_contain_text(
        "Check the maintenance window setting."
    )
    expect(page.locator("#reply-count")).to_have_text("2 replies")
    assert page.evaluate("window.pageMarker") == "still here"
    expect(page.get_by_label("Your reply")).to_have_value("")
    save_screenshot(page, "topic.png")


def test_demo_member_posts_question_in_demo_space(live_server, page: Page):
    from rm6.demo.services import DEMO_PASSWORD, DEMO_SIGN_INS, seed_demo_data

    seed_demo_data(accounts=2, members=10, days=7)
    member_email = DEMO_SIGN_INS[0][1]
    space = Space.objects.get(slug="demo-questions-answers")

    page.goto(live_server.url + reverse("account_login"))
    page.locator('input[name="login"]').fill(member_email)
    page.locator('input[name="password"]').fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    expect(page).to_have_url(live_server.url + reverse("portal:home"))
    page.goto(live_server.url + space.get_absolute_url())
    page.get_by_role("link", name="Ask a question").click()
    page.get_by_label("Title").fill("Where do I set the fiscal year start?")
    page.get_by_label("Body").fill("The reports start in January for us.")
    page.get_by_label("Kind").select_option("question")
    page.get_by_role("button", name="Post", exact=True).click()
    expect(page.get_by_text("Your question is posted.")).to_be_visible()
    page.goto(live_server.url + space.get_absolute_url())

    expect(
        page.get_by_role("link", name="Where do I set the fiscal year start?")
    ).to_be_visible()
    topic = Topic.objects.get(title="Where do I set the fiscal year start?")
    assert topic.author.user.email == member_email
