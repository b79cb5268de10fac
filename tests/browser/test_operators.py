"""Two operators in two browsers: a claim both see, a refused action, a takeover, and who
else has the call open."""
from __future__ import annotations

import itertools

import pytest
from playwright.sync_api import Page, expect

from support import add_operator

from .conftest import LIVE_TIMEOUT_MS

_accounts = itertools.count(1)


def logged_in(browser, stack, username: str, password: str) -> Page:
    """A browser context of its own, logged in as this operator."""
    context = browser.new_context(base_url=stack.url)
    page = context.new_page()
    page.goto("/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Live calls")).to_be_visible()
    return page


@pytest.fixture
def two_operators(browser, stack):
    """Alice and Bob (fresh accounts), each logged in in a browser of their own."""
    number = next(_accounts)
    alice, bob = (f"alice{number}", "Alice Liddell"), (f"bob{number}", "Bob Dylan")
    for username, name in (alice, bob):
        add_operator(stack.app, username, f"{username}-password", name=name)
    pages = [logged_in(browser, stack, username, f"{username}-password")
             for username, _ in (alice, bob)]
    yield pages
    for page in pages:
        page.context.close()


def test_claim_refusal_takeover_and_viewers(two_operators, stack):
    alice, bob = two_operators
    sid = stack.ring("+15555550161", caller_name="Grace Hopper")
    for page in (alice, bob):
        expect(page.locator(f"#live-calls tr[data-sid='{sid}']")).to_contain_text(
            "in-progress", timeout=LIVE_TIMEOUT_MS)

    # Alice claims it from the live list; Bob's list shows her as the handler.
    alice.locator(f"#live-calls tr[data-sid='{sid}']").get_by_role(
        "button", name="Claim call from Grace Hopper +15555550161").click()
    expect(alice.get_by_role("status").first).to_contain_text("You are handling this call")
    expect(alice.locator(f"#live-calls tr[data-sid='{sid}'] .handler")).to_have_text("You")
    bob_row = bob.locator(f"#live-calls tr[data-sid='{sid}']")
    expect(bob_row.locator(".handler")).to_have_text("Alice Liddell", timeout=LIVE_TIMEOUT_MS)
    expect(bob_row.get_by_role("button", name="Claim")).to_have_count(0)

    # Both open the call: each sees the other among its viewers.
    alice.goto(f"/admin/calls/{sid}")
    bob.goto(f"/admin/calls/{sid}")
    expect(bob.locator("#call-viewers")).to_contain_text("Alice Liddell")
    expect(alice.locator("#call-viewers")).to_contain_text("Bob Dylan", timeout=LIVE_TIMEOUT_MS)
    expect(bob.locator("#handler-notice")).to_contain_text("Alice Liddell is handling this call")

    # Bob's hang up is refused, and nothing reaches Twilio.
    bob.once("dialog", lambda dialog: dialog.accept())
    bob.locator("#hangup-button").click()
    expect(bob.get_by_role("alert").first).to_contain_text("Alice Liddell is handling this call")
    assert stack.emulator_call(sid)["status"] == "in-progress"

    # Bob takes it over (after a confirmation), and Alice's page follows.
    questions = []
    bob.once("dialog", lambda dialog: (questions.append(dialog.message), dialog.accept()))
    bob.get_by_role("button", name="Take over").click()
    expect(bob.get_by_role("status").first).to_contain_text("You took this call over from Alice Liddell")
    assert questions == ["Alice Liddell is handling the call from Grace Hopper +15555550161. Take it over?"]
    expect(bob.locator("#call-handler")).to_have_text("you")
    expect(alice.locator("#call-handler")).to_have_text("Bob Dylan", timeout=LIVE_TIMEOUT_MS)
    expect(alice.locator("#handler-notice")).to_contain_text("Bob Dylan is handling this call")

    # Now Bob's hang up goes through, and the action log says who did what.
    bob.once("dialog", lambda dialog: dialog.accept())
    bob.locator("#hangup-button").click()
    expect(bob.locator("#call-status")).to_contain_text("completed")
    log = bob.locator(".actions-log")
    for line in ("claim by alice", "hangup by bob", "takeover by bob"):
        expect(log).to_contain_text(line)
    assert stack.emulator_call(sid)["status"] == "completed"
