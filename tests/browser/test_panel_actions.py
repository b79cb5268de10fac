"""Operator actions in the browser, checked against the emulator's view of the call."""
from __future__ import annotations

from playwright.sync_api import Page, expect

from .conftest import LIVE_TIMEOUT_MS


def open_live_call(panel: Page, stack, number: str) -> str:
    """A caller rings and the operator opens the call's page; returns its CallSid."""
    sid = stack.ring(number)
    row = panel.locator(f"#live-calls tr[data-sid='{sid}']")
    expect(row).to_contain_text("in-progress", timeout=LIVE_TIMEOUT_MS)
    row.get_by_role("link", name="Open").click()
    expect(panel.locator("#call-status")).to_contain_text("in-progress")
    return sid


def wait_for_emulator(stack, sid: str, predicate, page: Page) -> dict:
    """Poll the emulator (through the page's clock, not sleeps) until `predicate(call)` holds."""
    for _ in range(100):
        call = stack.emulator_call(sid)
        if predicate(call):
            return call
        page.wait_for_timeout(50)
    raise AssertionError(f"the emulator's call never matched: {call}")


def test_hang_up_from_the_live_list_asks_first_and_ends_the_call(panel: Page, stack):
    sid = stack.ring("+15555550121")
    row = panel.locator(f"#live-calls tr[data-sid='{sid}']")
    expect(row).to_contain_text("in-progress", timeout=LIVE_TIMEOUT_MS)

    questions = []
    panel.once("dialog", lambda dialog: (questions.append(dialog.message), dialog.dismiss()))
    row.get_by_role("button", name="Hang up call from +15555550121").click()
    expect(row).to_contain_text("in-progress")
    assert questions == ["Hang up the call from +15555550121?"]
    assert stack.emulator_call(sid)["status"] == "in-progress"

    panel.once("dialog", lambda dialog: dialog.accept())
    panel.locator(f"#live-calls tr[data-sid='{sid}']").get_by_role("button", name="Hang up").click()
    expect(panel.get_by_role("status").first).to_contain_text("Hung up")
    expect(panel.locator(f"#live-calls tr[data-sid='{sid}']")).to_have_count(0)
    assert stack.emulator_call(sid)["status"] == "completed"


def test_hang_up_on_the_call_page_is_recorded(panel: Page, stack):
    sid = open_live_call(panel, stack, "+15555550122")
    panel.once("dialog", lambda dialog: dialog.accept())
    panel.get_by_role("button", name="Hang up").click()
    expect(panel.locator("#call-status")).to_contain_text("completed")
    expect(panel.locator(".actions-log")).to_contain_text("hangup by admin")
    expect(panel.locator(".actions-log")).to_contain_text("Accepted by Twilio")
    assert stack.emulator_call(sid)["status"] == "completed"


def test_cancel_is_offered_only_while_ringing_and_cancels(panel: Page, stack):
    panel.get_by_label("To").fill("+15555550131")
    panel.get_by_role("button", name="Place call").click()
    expect(panel.get_by_role("status").first).to_contain_text("Calling +15555550131")
    expect(panel.locator("#call-status")).to_contain_text("ringing", timeout=LIVE_TIMEOUT_MS)
    sid = panel.url.rsplit("/", 1)[1]
    assert stack.emulator_call(sid)["direction"] == "outbound-api"

    panel.once("dialog", lambda dialog: dialog.accept())
    panel.get_by_role("button", name="Cancel").click()
    expect(panel.locator("#call-status")).to_contain_text("canceled")
    expect(panel.get_by_role("button", name="Cancel")).to_have_count(0)
    assert stack.emulator_call(sid)["status"] == "canceled"


def test_no_cancel_button_for_an_answered_call(panel: Page, stack):
    sid = open_live_call(panel, stack, "+15555550123")
    expect(panel.get_by_role("button", name="Hang up")).to_be_visible()
    expect(panel.get_by_role("button", name="Cancel")).to_have_count(0)
    stack.caller_hangs_up(sid)


def test_redirect_makes_the_emulator_fetch_the_new_twiml(panel: Page, stack):
    sid = open_live_call(panel, stack, "+15555550124")
    panel.get_by_label("Redirect URL").fill("/voice/gathered")
    panel.get_by_label("Method").select_option("POST")
    panel.get_by_role("button", name="Redirect").click()
    expect(panel.get_by_role("status").first).to_contain_text("Redirected")
    # /voice/gathered without digits says goodbye and hangs up: the caller hears it.
    expect(panel.locator(".transcript")).to_contain_text("We did not get your answer")
    expect(panel.locator("#call-status")).to_contain_text("completed", timeout=LIVE_TIMEOUT_MS * 2)
    assert "We did not get your answer" in stack.transcript_text(sid)


def test_send_twiml_preset_is_heard_by_the_caller(panel: Page, stack):
    sid = open_live_call(panel, stack, "+15555550125")
    panel.get_by_label("Preset").select_option(label="Say a message")
    expect(panel.get_by_label("TwiML", exact=True)).to_have_value(
        __import__("re").compile("An operator will be with you shortly"))
    panel.get_by_role("button", name="Send TwiML").click()
    expect(panel.get_by_role("status").first).to_contain_text("TwiML sent")
    expect(panel.locator(".transcript")).to_contain_text("An operator will be with you shortly")
    # The preset's relative <Redirect> was made absolute: the call goes back to hold, no 15004.
    call = wait_for_emulator(stack, sid, lambda c: any(
        "/voice/hold" in line["text"] and line["kind"] == "webhook"
        for line in c["transcript"][_said_at(c, "An operator will be with you shortly"):]), panel)
    assert not any(line.get("code") == 15004 for line in call["transcript"])
    stack.caller_hangs_up(sid)


def _said_at(call: dict, text: str) -> int:
    return next(i for i, line in enumerate(call["transcript"]) if text in line["text"])


def test_malformed_twiml_is_refused_before_the_emulator_sees_it(panel: Page, stack):
    sid = open_live_call(panel, stack, "+15555550126")
    panel.get_by_label("TwiML", exact=True).fill("<Response><Say>Unclosed</Response>")
    panel.get_by_role("button", name="Send TwiML").click()
    expect(panel.get_by_role("alert")).to_contain_text("not well-formed XML")
    # What the operator typed is kept for fixing.
    expect(panel.get_by_label("TwiML", exact=True)).to_have_value("<Response><Say>Unclosed</Response>")
    expect(panel.locator(".actions-log")).to_contain_text("Refused before sending to Twilio")

    panel.get_by_label("TwiML", exact=True).fill("<Response><Dance/></Response>")
    panel.get_by_role("button", name="Send TwiML").click()
    expect(panel.get_by_role("alert")).to_contain_text("<Dance> is not a TwiML verb")

    call = stack.emulator_call(sid)
    assert not any(line["text"].startswith("Call redirected") for line in call["transcript"])
    assert "Unclosed" not in stack.transcript_text(sid)
    assert call["status"] == "in-progress"
    stack.caller_hangs_up(sid)


def test_invalid_number_refused_by_twilio_is_shown(panel: Page, stack):
    panel.get_by_label("To").fill("+15005550001")  # Twilio's magic "invalid number"
    panel.get_by_role("button", name="Place call").click()
    expect(panel.get_by_role("alert")).to_contain_text("21217")
    expect(panel.get_by_role("heading", name="Live calls")).to_be_visible()


def test_a_form_without_the_csrf_token_is_refused(panel: Page, stack):
    sid = stack.ring("+15555550127")
    row = panel.locator(f"#live-calls tr[data-sid='{sid}']")
    expect(row).to_contain_text("in-progress", timeout=LIVE_TIMEOUT_MS)
    row.get_by_role("button", name="Hang up").evaluate(
        "b => b.form.querySelector('[name=csrf_token]').value = 'forged'")
    panel.once("dialog", lambda dialog: dialog.accept())
    with panel.expect_response(lambda r: r.request.method == "POST") as answer:
        row.get_by_role("button", name="Hang up").click()
    assert answer.value.status == 400
    expect(panel.get_by_text("The CSRF token is invalid")).to_be_visible()
    assert stack.emulator_call(sid)["status"] == "in-progress"
    stack.caller_hangs_up(sid)
