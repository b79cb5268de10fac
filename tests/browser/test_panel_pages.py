"""History, call page, stale calls, hostile input, and the closed login."""
from __future__ import annotations

from datetime import timedelta

from playwright.sync_api import Page, expect

from app import create_app
from call_records import CallUpdate, record_call
from models import Call, db, utcnow
from panel import mark_stale_calls
from support import dispose, serve_app

from .conftest import LIVE_TIMEOUT_MS

HOSTILE = '<img src=x onerror="window.pwned=1">"><script>window.pwned=2</script>'


def assert_inert(page: Page) -> None:
    """The hostile name showed as text: no element was created, no script ran."""
    assert page.evaluate("window.pwned") is None
    assert page.locator("img[src=x]").count() == 0


def test_a_hostile_caller_name_is_inert_on_every_page(panel: Page, stack):
    sid = stack.ring("+15555550151", caller_name=HOSTILE)
    row = panel.locator(f"#live-calls tr[data-sid='{sid}']")
    expect(row).to_contain_text(HOSTILE, timeout=LIVE_TIMEOUT_MS)
    assert_inert(panel)

    panel.goto(f"/admin/calls/{sid}")
    expect(panel.get_by_role("heading", level=1)).to_contain_text(HOSTILE)
    expect(panel.locator(".transcript")).to_contain_text(HOSTILE)  # the emulator's own lines
    assert_inert(panel)

    panel.goto("/admin/history?number=%2B15555550151")
    expect(panel.locator("table.calls")).to_contain_text(HOSTILE)
    assert_inert(panel)
    stack.caller_hangs_up(sid)


def test_history_filters_and_links_to_the_call_page_with_its_timeline(panel: Page, stack):
    sid = stack.ring("+15555550152")
    expect(panel.locator(f"#live-calls tr[data-sid='{sid}']")).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    stack.caller_hangs_up(sid)
    expect(panel.locator(f"#live-calls tr[data-sid='{sid}']")).to_have_count(0, timeout=LIVE_TIMEOUT_MS)

    panel.get_by_role("link", name="History").click()
    panel.get_by_label("Number").fill("+15555550152")
    panel.get_by_label("Status").select_option("completed")
    panel.get_by_role("button", name="Filter").click()
    rows = panel.locator("table.calls tbody tr")
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text("completed")
    panel.get_by_label("Status").select_option("ringing")
    panel.get_by_role("button", name="Filter").click()
    expect(panel.get_by_text("No calls match these filters.")).to_be_visible()

    panel.goto("/admin/history?number=0152")  # part of a number matches too
    panel.get_by_role("link", name=sid).click()
    timeline = panel.locator(".timeline")
    expect(timeline).to_contain_text("answered by /voice")
    expect(timeline).to_contain_text("status callback")
    expect(timeline).to_contain_text("completed")


def test_a_call_nobody_heard_from_is_marked_possibly_stale(panel: Page, stack):
    sid = "CA" + "5" * 32
    with stack.app.app_context():
        record_call(CallUpdate(sid=sid, status="in-progress", from_number="+15555550153",
                               to_number="+15555550100", direction="inbound"))
        db.session.get(Call, sid).updated_at = utcnow() - timedelta(hours=2)
        db.session.commit()
        with stack.app.test_request_context():
            mark_stale_calls(force=True)  # the panel's sweep, due every STALE_SWEEP_SECONDS
    row = panel.locator(f"#live-calls tr[data-sid='{sid}']")
    expect(row).to_contain_text("possibly stale", timeout=LIVE_TIMEOUT_MS)
    # Twilio (the emulator) has never heard of it: Sync says so instead of failing.
    panel.get_by_role("button", name="Sync with Twilio").click()
    expect(panel.get_by_role("alert")).to_contain_text("could not be fetched")
    panel.goto(f"/admin/calls/{sid}")
    expect(panel.locator(".actions-log")).to_contain_text("20404")
    with stack.app.app_context():  # leave the live list clean for other tests
        db.session.get(Call, sid).status = "failed"
        db.session.get(Call, sid).status_rank = 4
        db.session.commit()


def test_login_is_closed_while_admin_password_is_unset(browser, database_url):
    app = create_app({"SECRET_KEY": "closed", "ADMIN_PASSWORD": "",
                      "SQLALCHEMY_DATABASE_URI": database_url})
    server = serve_app(app)
    context = browser.new_context(base_url=server.url)
    try:
        page = context.new_page()
        page.goto("/admin")
        expect(page.get_by_role("alert")).to_contain_text("No operator account exists yet")
        expect(page.get_by_label("Password")).to_be_disabled()
        response = page.request.post("/login", form={"username": "admin", "password": ""})
        assert response.status in (400, 403)
    finally:
        context.close()
        server.stop()
        dispose(app)


def test_security_headers_on_panel_pages(panel: Page, stack):
    response = panel.request.get("/admin")
    assert response.status == 200
    assert response.headers["x-frame-options"] == "DENY"
    assert "script-src 'self'" in response.headers["content-security-policy"]
    cookie = next(c for c in panel.context.cookies() if c["name"] == "session")
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Lax"
