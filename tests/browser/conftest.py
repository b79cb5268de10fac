"""Browser tests: the app and the Twilio emulator on loopback, driven by Debian's Chromium.

One app, one emulator and one browser per session; a fresh, logged-in page per test. Tests
wait on conditions with Playwright's auto-waiting `expect`, never with sleeps.
"""
from __future__ import annotations

import pytest
import requests
from playwright.sync_api import Page, expect, sync_playwright

from app import create_app
from support import dispose, wire

ACCOUNT_SID = "AC" + "b" * 32
AUTH_TOKEN = "browser-test-token-0123456789abc"
OUR_NUMBER = "+15555550100"
ADMIN_PASSWORD = "correct horse battery staple"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
# Live updates must show within 2 s of a callback (the issue); leave room for a slow CI box.
LIVE_TIMEOUT_MS = 2_500

expect.set_options(timeout=5_000)


class Stack:
    """The running app and emulator, and helpers to act as the caller."""

    def __init__(self, app, app_url: str, emulator_app, emulator_url: str):
        self.app, self.url = app, app_url
        self.emulator_app, self.emulator_url = emulator_app, emulator_url
        self.auth = (ACCOUNT_SID, AUTH_TOKEN)

    def ring(self, from_: str = "+15555550123", caller_name: str | None = None) -> str:
        """A caller rings our number (through the emulator); returns the CallSid."""
        body = {"from": from_, "hangup_after": 0}
        if caller_name:
            body["caller_name"] = caller_name
        response = requests.post(f"{self.emulator_url}/emulator/incoming", json=body,
                                 auth=self.auth, timeout=5)
        assert response.status_code == 201, response.text
        return response.json()["call_sid"]

    def caller_hangs_up(self, sid: str) -> None:
        """The caller puts the phone down."""
        response = requests.post(f"{self.emulator_url}/emulator/calls/{sid}/hangup",
                                 auth=self.auth, timeout=5)
        assert response.status_code in (200, 202), response.text

    def emulator_call(self, sid: str) -> dict:
        """The call as the emulator sees it, with its caller's-eye transcript."""
        response = requests.get(f"{self.emulator_url}/emulator/calls/{sid}/transcript",
                                auth=self.auth, timeout=5)
        assert response.status_code == 200, response.text
        return response.json()

    def transcript_text(self, sid: str) -> str:
        return "\n".join(line["text"] for line in self.emulator_call(sid)["transcript"])


@pytest.fixture(scope="session")
def stack(engine_name, tmp_path_factory, request):
    """The app (on each engine in turn) and the emulator, each on loopback, wired together."""
    if engine_name == "postgresql":
        database_url = request.getfixturevalue("postgres_server").new_database()
    else:
        database_url = f"sqlite:///{tmp_path_factory.mktemp('panel') / 'switchboard.db'}"
    app = create_app({
        "SECRET_KEY": "browser-test-secret",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_PHONE_NUMBER": OUR_NUMBER,
        "TWILIO_VALIDATE_SIGNATURES": True,
        "ADMIN_USERNAME": "admin",
        "ADMIN_PASSWORD": ADMIN_PASSWORD,
        "HOLD_MUSIC_URL": "http://127.0.0.1:9/hold.mp3",
        "TWILIO_TIMEOUT_SECONDS": 5,
    })
    wired = wire(
        app,
        EMULATOR_SAY_SECONDS="0.3",
        EMULATOR_PLAY_SECONDS="1",
        EMULATOR_RING_SECONDS="30",  # outbound calls ring long enough to cancel them
        EMULATOR_WEBHOOK_TIMEOUT="5",
    )
    yield Stack(app, wired.app_url, wired.emulator_app, wired.emulator_url)
    wired.stop()
    dispose(app)


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the whole session."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, stack) -> Page:
    """A fresh page (own cookies) that has not logged in; fails the test on a console CSP error."""
    context = browser.new_context(base_url=stack.url)
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text)
            if msg.type == "error" and "Content Security Policy" in msg.text else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    yield page
    context.close()
    assert problems == [], f"the page reported errors: {problems}"


def log_in(page: Page) -> None:
    """Log in through the login form."""
    page.goto("/login")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Live calls")).to_be_visible()


@pytest.fixture
def panel(page: Page) -> Page:
    """A page logged in to the panel, showing the live list."""
    log_in(page)
    return page
