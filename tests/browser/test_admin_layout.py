"""Admin change pages of plays and scorecards at a narrow window width."""

import os
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from playwright.sync_api import Page, expect

from apps.lifecycle.models import Play, Scorecard, ScorecardMeasure, WebhookEndpoint
from tests import factories
from tests.plays.factories import PlayFactory, PlayStepFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Between Django admin's responsive breakpoints at 767 and 1024 px. Long
# selects ran past the right edge of their rows at this width.
WINDOW_WIDTH = 800
WINDOW_HEIGHT = 900
SCREENSHOT_DIR = os.environ.get("RM6_SCREENSHOT_DIR", "")


def sign_in_as_superuser(page: Page, base_url: str) -> None:
    user = get_user_model().objects.create_superuser(
        "admin", "admin@vendor.test", factories.PASSWORD
    )
    page.goto(base_url + reverse("admin:login"))
    page.locator('input[name="username"]').fill(user.username)
    page.locator('input[name="password"]').fill(factories.PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(base_url + reverse("admin:index"))


# For each visible select: its name, its right edge and the right edge of
# its form row, which hides whatever runs past it.
SELECT_EDGES_SCRIPT = """
() => [...document.querySelectorAll("select")]
    .filter((select) => select.getClientRects().length > 0)
    .map((select) => [
        select.name,
        select.getBoundingClientRect().right,
        select.closest(".form-row").getBoundingClientRect().right,
    ])
"""


def list_cut_off_selects(page: Page) -> list[str]:
    """Return a line for each visible select that ends past its row or the window."""
    cut_off = []
    for name, right, row_right in page.evaluate(SELECT_EDGES_SCRIPT):
        if right > WINDOW_WIDTH or right > row_right:
            cut_off.append(f"{name} ends at {right:.0f} px, its row at {row_right:.0f}")
    return cut_off


def count_visible_selects(page: Page) -> int:
    return len(page.evaluate(SELECT_EDGES_SCRIPT))


def save_screenshot(page: Page, name: str) -> None:
    if SCREENSHOT_DIR:
        page.screenshot(path=str(Path(SCREENSHOT_DIR) / name), full_page=True)


def test_play_step_selects_fit_800px_window(live_server, page: Page):
    endpoint = WebhookEndpoint.objects.create(
        name="CRM", url="https://crm.example.com/hooks", secret="whsec_test"
    )
    play = PlayFactory(name="Welcome", status=Play.Status.DRAFT, activated_at=None)
    PlayStepFactory(play=play, position=1, action="wait", wait_hours=24)
    PlayStepFactory(
        play=play, position=2, action="webhook", config={"endpoint_id": endpoint.pk}
    )
    page.set_viewport_size({"width": WINDOW_WIDTH, "height": WINDOW_HEIGHT})

    sign_in_as_superuser(page, live_server.url)
    page.goto(live_server.url + reverse("admin:lifecycle_play_change", args=[play.pk]))
    save_screenshot(page, "play-800.png")

    assert count_visible_selects(page) == 5
    assert list_cut_off_selects(page) == []

    # A step added in the page gets a heading and the layout of the others.
    page.get_by_role("button", name="Add another Play step").click()
    expect(page.locator("#steps-3 .inline_label")).to_have_text("#4")
    assert count_visible_selects(page) == 6
    assert list_cut_off_selects(page) == []


def test_scorecard_measure_selects_fit_800px_window(live_server, page: Page):
    scorecard = Scorecard.objects.create(
        name="Account health", level=Scorecard.Level.ACCOUNT
    )
    ScorecardMeasure.objects.create(
        scorecard=scorecard,
        kind=ScorecardMeasure.Kind.PRODUCT_USAGE,
        zero_at=0,
        full_at=50,
    )
    page.set_viewport_size({"width": WINDOW_WIDTH, "height": WINDOW_HEIGHT})

    sign_in_as_superuser(page, live_server.url)
    change_url = reverse("admin:lifecycle_scorecard_change", args=[scorecard.pk])
    page.goto(live_server.url + change_url)
    save_screenshot(page, "scorecard-800.png")

    assert count_visible_selects(page) == 3
    assert list_cut_off_selects(page) == []
