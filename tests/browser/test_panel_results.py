"""What the caller did on the call page, in Chromium against the emulator."""
from __future__ import annotations

import requests
from playwright.sync_api import Page, expect

from .conftest import LIVE_TIMEOUT_MS
from .test_panel_actions import open_live_call


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
