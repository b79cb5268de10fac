"""What the caller did on the call page, and placing a call with a choice of what the callee
hears, in Chromium against the emulator."""
from __future__ import annotations

import pytest
import requests
from playwright.sync_api import Page, expect

from .conftest import LIVE_TIMEOUT_MS
from .test_panel_actions import open_live_call


@pytest.fixture
def quick_calls(stack):
    """Placed calls answered at once and callers who speak briefly (the session's emulator
    rings 30 s so that other tests can cancel; these need answered calls)."""
    settings = stack.emulator_app.extensions["emulator"].settings
    saved = settings.ring_seconds, settings.record_seconds
    settings.ring_seconds, settings.record_seconds = 0.2, 1
    yield stack
    settings.ring_seconds, settings.record_seconds = saved


def press(stack, sid: str, digits: str) -> None:
    """The caller presses keys now."""
    response = requests.post(f"{stack.emulator_url}/emulator/calls/{sid}/digits",
                             data={"digits": digits}, auth=stack.auth, timeout=5)
    assert response.status_code == 202, response.text


def test_keys_the_caller_presses_show_on_the_call_page(panel: Page, stack):
    sid = open_live_call(panel, stack, "+15555550191")
    results = panel.locator("#call-results")
    expect(results).to_contain_text("No keys pressed, words said or recordings yet")
    panel.get_by_label("Preset").select_option(label="Feedback survey")
    panel.get_by_role("button", name="Send TwiML").click()
    expect(panel.get_by_role("status").first).to_contain_text("TwiML sent")
    expect(panel.locator(".transcript")).to_contain_text("How did we do today?")
    press(stack, sid, "4")
    expect(results.locator("kbd.digits")).to_have_text("4", timeout=LIVE_TIMEOUT_MS * 2)
    expect(results).to_contain_text("Pressed 4")


@pytest.mark.usefixtures("quick_calls")
def test_placing_a_call_offers_what_the_callee_hears(panel: Page):
    message, url = panel.get_by_label("Message", exact=True), panel.get_by_label("URL", exact=True)
    expect(panel.get_by_role("radio", name="Hold music")).to_be_checked()
    expect(message).to_be_hidden()  # only the chosen answer's fields show
    expect(url).to_be_hidden()

    panel.get_by_label("To", exact=True).fill("+15555550193")
    panel.get_by_role("radio", name="Say a message, then hang up").check()
    expect(message).to_be_visible()
    message.fill("Your order <#42> is ready & waiting.")
    panel.get_by_role("button", name="Place call").click()
    expect(panel.get_by_role("status").first).to_contain_text("Calling +15555550193")
    expect(panel.locator(".transcript")).to_contain_text("Your order <#42> is ready & waiting.",
                                                         timeout=LIVE_TIMEOUT_MS * 2)
    expect(panel.locator("#call-status")).to_contain_text("completed", timeout=LIVE_TIMEOUT_MS * 2)
    expect(panel.locator(".actions-log")).to_contain_text("say")

    panel.get_by_role("link", name="Live calls").first.click()
    panel.get_by_label("To", exact=True).fill("+15555550194")
    panel.get_by_role("radio", name="TwiML at a URL").check()
    url.fill("/voice/gathered")
    panel.get_by_role("button", name="Place call").click()
    expect(panel.locator(".transcript")).to_contain_text("We did not get your answer",
                                                         timeout=LIVE_TIMEOUT_MS * 2)

    panel.get_by_role("link", name="Live calls").first.click()
    panel.get_by_label("To", exact=True).fill("+15555550195")
    panel.get_by_role("radio", name="TwiML at a URL").check()
    url.fill("not a url")
    panel.get_by_role("button", name="Place call").click()
    expect(panel.get_by_role("alert")).to_contain_text("must not contain spaces")
    # What was typed is still there to fix.
    expect(panel.get_by_label("To", exact=True)).to_have_value("+15555550195")
    expect(panel.get_by_role("radio", name="TwiML at a URL")).to_be_checked()
    expect(url).to_have_value("not a url")
