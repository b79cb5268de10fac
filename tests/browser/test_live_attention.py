"""The live list draws attention to what changed: highlight, tab title, announcements, held
rows under the pointer, and keyboard shortcuts."""
from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from .conftest import LIVE_TIMEOUT_MS


def row(page: Page, sid: str):
    return page.locator(f"#live-calls tr[data-sid='{sid}']")


def test_a_new_call_is_highlighted_announced_and_counted_in_the_title(panel: Page, stack):
    sid = stack.ring("+15555550171", caller_name="Mary Jackson")
    expect(row(panel, sid)).to_have_class(re.compile(r"\bis-new\b"), timeout=LIVE_TIMEOUT_MS)
    expect(panel.locator("#live-announcer")).to_have_text(
        "New call from Mary Jackson +15555550171.")
    live = panel.locator("#live-calls tr[data-sid]").count()
    expect(panel).to_have_title(f"{live} live · Switchboard")

    panel.get_by_label("To").fill("+15555550172")  # an outbound call rings for a while
    panel.get_by_role("button", name="Place call").click()
    expect(panel.locator("#call-status")).to_contain_text("ringing", timeout=LIVE_TIMEOUT_MS)
    placed = panel.url.rsplit("/", 1)[1]
    panel.get_by_role("link", name="Live calls").first.click()
    expect(panel).to_have_title(f"(1 ringing) {live + 1} live · Switchboard")

    stack.caller_hangs_up(sid)
    expect(panel.locator("#live-announcer")).to_have_text(
        "Call from Mary Jackson +15555550171 ended (completed).", timeout=LIVE_TIMEOUT_MS)
    expect(panel).to_have_title(f"(1 ringing) {live} live · Switchboard")
    panel.once("dialog", lambda dialog: dialog.accept())
    row(panel, placed).get_by_role("button", name="Cancel").click()
    expect(row(panel, placed)).to_have_count(0)


def test_a_new_call_waits_while_the_pointer_is_over_the_list(panel: Page, stack, monkeypatch):
    # A hold longer than the test, so what it sees cannot depend on how fast the browser runs.
    monkeypatch.setitem(stack.app.config, "PANEL_HOLD_MS", 600_000)
    panel.reload()
    first = stack.ring("+15555550173")
    expect(row(panel, first)).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    under_pointer = row(panel, first).locator("td.handler")
    under_pointer.hover()
    where = under_pointer.bounding_box()
    second = stack.ring("+15555550174")
    expect(panel.locator("#held-notice")).to_have_text(re.compile(r"^1 new call: "),
                                                       timeout=LIVE_TIMEOUT_MS)
    expect(row(panel, second)).to_have_count(0)
    assert under_pointer.bounding_box() == where, "the notice moved the row under the pointer"
    panel.mouse.move(5, 5)
    expect(row(panel, second)).to_be_visible()
    expect(panel.locator("#held-notice")).to_be_hidden()
    for sid in (first, second):
        stack.caller_hangs_up(sid)


def test_a_pointer_resting_on_the_list_holds_a_new_call_a_few_seconds_at_most(panel: Page, stack):
    first = stack.ring("+15555550177")
    expect(row(panel, first)).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    row(panel, first).locator("td.handler").hover()
    third = stack.ring("+15555550176")
    expect(row(panel, third)).to_be_visible(timeout=LIVE_TIMEOUT_MS + 3_000)
    for sid in (first, third):
        stack.caller_hangs_up(sid)


def test_keyboard_shortcuts_move_open_claim_and_hang_up(panel: Page, stack):
    sid = stack.ring("+15555550175", caller_name="Dorothy Vaughan")
    expect(row(panel, sid)).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    panel.locator("body").click(position={"x": 5, "y": 200})
    panel.keyboard.press("j")
    expect(panel.locator("#live-calls tr[data-sid]").first).to_be_focused()
    for _ in range(20):
        if row(panel, sid).evaluate("r => r === document.activeElement"):
            break
        panel.keyboard.press("j")

    panel.keyboard.press("c")
    expect(row(panel, sid).locator(".handler")).to_have_text("You")

    questions = []
    panel.once("dialog", lambda dialog: (questions.append(dialog.message), dialog.dismiss()))
    row(panel, sid).focus()
    panel.keyboard.press("h")
    expect(row(panel, sid)).to_contain_text("in-progress")
    assert questions == ["Hang up the call from Dorothy Vaughan +15555550175?"]

    panel.keyboard.press("/")
    expect(panel.get_by_label("Filter live calls")).to_be_focused()
    panel.keyboard.type("Dorothy")  # typing in a field is never a shortcut
    expect(panel.get_by_label("Filter live calls")).to_have_value("Dorothy")
    expect(panel.locator("#live-calls tr[data-sid]:visible")).to_have_count(1)
    panel.keyboard.press("Escape")

    panel.keyboard.press("?")
    expect(panel.get_by_role("dialog", name="Keyboard shortcuts")).to_be_visible()
    panel.keyboard.press("Escape")
    expect(panel.get_by_role("dialog", name="Keyboard shortcuts")).to_be_hidden()

    row(panel, sid).focus()
    panel.keyboard.press("Enter")
    expect(panel).to_have_url(re.compile(f"/admin/calls/{sid}$"))
    stack.caller_hangs_up(sid)


def test_the_alert_toggle_is_remembered(panel: Page, stack):
    # Until the page's script runs, the toggle could not remember a click: it is disabled.
    waiting: list = []
    panel.route("**/live.js*", lambda route: waiting.append(route))
    panel.reload(wait_until="commit")
    toggle = panel.get_by_label("Sound and notification for new calls")
    expect(toggle).to_be_disabled()
    waiting[0].continue_()
    panel.unroute("**/live.js*")
    expect(toggle).to_be_enabled()
    expect(toggle).not_to_be_checked()
    toggle.check()
    panel.reload()
    expect(panel.get_by_label("Sound and notification for new calls")).to_be_checked()
