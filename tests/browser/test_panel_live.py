"""The live list: calls appear and leave without a reload."""
from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from .conftest import LIVE_TIMEOUT_MS


def row(page: Page, sid: str):
    return page.locator(f"#live-calls tr[data-sid='{sid}']")


def test_simulated_call_appears_live_and_leaves_when_the_caller_hangs_up(panel: Page, stack):
    panel.get_by_label("Caller number").fill("+15555550111")
    panel.get_by_role("button", name="Simulate incoming call").click()
    expect(panel.get_by_role("status")).to_contain_text("Simulated a call from +15555550111")
    live_row = panel.locator("#live-calls tr", has_text="+15555550111")
    expect(live_row).to_contain_text("in-progress", timeout=LIVE_TIMEOUT_MS)
    expect(live_row).to_contain_text("inbound")
    sid = live_row.get_attribute("data-sid")

    stack.caller_hangs_up(sid)

    expect(row(panel, sid)).to_have_count(0, timeout=LIVE_TIMEOUT_MS)


def test_a_call_rung_elsewhere_appears_without_a_reload(panel: Page, stack):
    url_before = panel.url
    sid = stack.ring("+15555550112")
    expect(row(panel, sid)).to_contain_text("+15555550112", timeout=LIVE_TIMEOUT_MS)
    assert panel.url == url_before
    stack.caller_hangs_up(sid)
    expect(row(panel, sid)).to_have_count(0, timeout=LIVE_TIMEOUT_MS)


def test_panel_pages_need_a_session(page: Page, stack):
    for path in ("/admin", "/admin/history", "/admin/live"):
        page.goto(path)
        expect(page).to_have_url(re.compile(r"/login\?next="))
        expect(page.get_by_role("heading", name="Operator login")).to_be_visible()


def test_wrong_password_is_refused_and_logout_ends_the_session(page: Page, stack):
    page.goto("/login")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("Wrong username or password")

    from .conftest import log_in
    log_in(page)
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Operator login")).to_be_visible()
    page.goto("/admin")
    expect(page).to_have_url(re.compile(r"/login"))


def test_a_transferred_call_shows_its_child_leg_under_it(panel: Page, stack):
    sid = stack.ring("+15555550113")
    expect(row(panel, sid)).to_contain_text("in-progress", timeout=LIVE_TIMEOUT_MS)
    panel.goto(f"/admin/calls/{sid}")
    panel.get_by_label("Preset").select_option(label="Transfer to a number")
    panel.get_by_role("button", name="Send TwiML").click()
    expect(panel.get_by_role("status").first).to_contain_text("TwiML sent")
    expect(panel.locator(".legs")).to_contain_text("+15555550142", timeout=LIVE_TIMEOUT_MS)

    panel.get_by_role("link", name="Live calls").first.click()
    parent = row(panel, sid)
    child = parent.locator("xpath=following-sibling::tr[1]")
    expect(child).to_contain_text("outbound-dial")
    expect(child).to_contain_text("+15555550142")
    expect(child).to_have_class(re.compile(r"\bdepth-1\b"))

    stack.caller_hangs_up(sid)
    expect(row(panel, sid)).to_have_count(0, timeout=LIVE_TIMEOUT_MS)
    expect(panel.locator("#live-calls tr", has_text="outbound-dial")).to_have_count(0,
                                                                                 timeout=LIVE_TIMEOUT_MS)
