"""What the caller did on the call page (keys, a voicemail's player), placing a call with a
choice of what the callee hears, and the history's filters, in Chromium against the emulator."""
from __future__ import annotations

import re

import pytest
import requests
from playwright.sync_api import Page, expect

from .conftest import LIVE_TIMEOUT_MS
from .test_panel_actions import open_live_call

PHONE_WIDTH = 390


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


def test_a_voicemail_gets_a_player_that_plays_it(panel: Page, quick_calls):
    """Needs the emulator's recording status callback and recording media."""
    stack = quick_calls
    sid = open_live_call(panel, stack, "+15555550192")
    panel.get_by_label("Preset").select_option(label="Voicemail")
    panel.get_by_role("button", name="Send TwiML").click()
    expect(panel.locator(".transcript")).to_contain_text("Recording the caller")
    press(stack, sid, "#")
    results = panel.locator("#call-results")
    audio = results.locator("audio")
    expect(audio).to_have_count(1, timeout=10_000)
    expect(results).not_to_contain_text("Twilio may still be preparing", timeout=10_000)
    sources = audio.locator("source")
    expect(sources.first).to_have_attribute("src", re.compile(r"^/admin/recordings/RE[0-9a-f]{32}\.mp3$"))
    handle = audio.element_handle()
    handle.evaluate("a => { a.preload = 'auto'; a.load(); }")
    panel.wait_for_function("a => a.readyState >= 1 || a.error !== null", arg=handle)
    assert handle.evaluate("a => a.error && a.error.code") is None
    assert handle.evaluate("a => a.duration") > 0
    assert handle.evaluate("a => a.currentSrc").startswith(stack.url + "/admin/recordings/")


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


def test_history_filters_by_name_direction_and_dates(panel: Page, stack):
    ada = stack.ring("+15555550196", caller_name="Ada Lovelace")
    grace = stack.ring("+15555550197", caller_name="Grace Hopper")
    for sid in (ada, grace):
        expect(panel.locator(f"#live-calls tr[data-sid='{sid}']")).to_be_visible(timeout=LIVE_TIMEOUT_MS)
        stack.caller_hangs_up(sid)
    panel.get_by_role("link", name="History").click()
    panel.get_by_label("Caller name").fill("lovelace")
    panel.get_by_label("Direction").select_option(label="Inbound")
    today = panel.evaluate("new Date().toISOString().slice(0, 10)")
    panel.get_by_label("From date").fill(today)
    panel.get_by_label("To date").fill(today)
    panel.get_by_role("button", name="Filter").click()
    rows = panel.locator("table.calls tbody tr")
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text("Ada Lovelace")
    assert "name=lovelace" in panel.url and "direction=inbound" in panel.url
    expect(panel.get_by_label("Caller name")).to_have_value("lovelace")  # kept in the form

    panel.get_by_label("Caller name").fill("")
    panel.get_by_label("Number").fill("0197")
    panel.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text("Grace Hopper")

    panel.goto("/admin/history?from=2026-02-30&direction=sideways")
    expect(panel.get_by_role("alert").first).to_contain_text("Ignored the From date")
    expect(panel.get_by_role("alert").nth(1)).to_contain_text("Ignored the direction")
    expect(panel.get_by_role("heading", name="Call history")).to_be_visible()


def test_the_history_lists_a_transfer_under_its_call(panel: Page, stack):
    sid = open_live_call(panel, stack, "+15555550198")
    panel.get_by_label("Preset").select_option(label="Transfer to a number")
    panel.get_by_role("button", name="Send TwiML").click()
    expect(panel.locator(".legs")).to_contain_text("+15555550142", timeout=LIVE_TIMEOUT_MS)
    stack.caller_hangs_up(sid)
    panel.goto("/admin/history?number=%2B15555550198")
    parent = panel.locator(f"tr[data-sid='{sid}']")
    child = parent.locator("xpath=following-sibling::tr[1]")
    expect(child).to_have_class(re.compile(r"\bdepth-1\b"))
    expect(child).to_contain_text("outbound-dial")


def test_what_this_branch_adds_fits_a_phone(panel: Page, stack):
    """At 390 px nothing new scrolls sideways: the place-call form, the results and earlier
    calls on a call page, the history's filters (its table scrolls inside its own box)."""
    sid = stack.ring("+15555550199", caller_name="Someone With A Very Long Caller Name Indeed")
    expect(panel.locator(f"#live-calls tr[data-sid='{sid}']")).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    stack.caller_hangs_up(sid)
    panel.set_viewport_size({"width": PHONE_WIDTH, "height": 800})
    checks = {
        "/admin": [".place-call", ".choices"],
        f"/admin/calls/{sid}": ["#call-results", ".earlier-calls"],
        "/admin/history": [".history-filters", ".table-scroll"],
    }
    for path, selectors in checks.items():
        panel.goto(path)
        for selector in selectors:
            box = panel.locator(selector).first.bounding_box()
            assert box is not None, (path, selector)
            assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE_WIDTH, (path, selector, box)
            overflow = panel.locator(selector).first.evaluate("e => e.scrollWidth - e.clientWidth")
            assert overflow <= 0 or selector == ".table-scroll", (path, selector, overflow)
