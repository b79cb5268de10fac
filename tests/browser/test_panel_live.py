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
