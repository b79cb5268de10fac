"""The call page: controls that match the call's state (live), the transcript's folds, and
no page wider than a phone."""
from __future__ import annotations

from playwright.sync_api import Page, expect

from call_records import CallUpdate, record_call
from models import db
from support import basic_auth, new_call_sid

from .conftest import ADMIN_PASSWORD, LIVE_TIMEOUT_MS, OUR_NUMBER
from .test_panel_actions import open_live_call

PHONE = {"width": 390, "height": 844}


def record(stack, sid: str, status: str, to: str = "+15555550161") -> None:
    """The app learns the call's status, as from a status callback."""
    with stack.app.app_context():
        record_call(CallUpdate(sid=sid, status=status, from_number=OUR_NUMBER, to_number=to,
                               direction="outbound-api"))
        db.session.commit()


def test_controls_follow_the_calls_state_without_a_reload(panel: Page, stack):
    sid = new_call_sid()
    record(stack, sid, "ringing")
    panel.goto(f"/admin/calls/{sid}")
    bar = panel.locator("#call-bar")
    # Ringing: only what Twilio accepts before an answer, each saying what it sends.
    expect(bar.get_by_role("button", name="Cancel")).to_be_visible()
    expect(bar.get_by_role("button", name="Hang up")).to_be_visible()
    expect(bar).to_contain_text("Status=canceled")
    expect(bar).to_contain_text("Status=completed")
    expect(panel.get_by_label("Redirect URL")).to_be_hidden()
    expect(panel.get_by_label("TwiML", exact=True)).to_be_hidden()

    record(stack, sid, "in-progress")  # answered: new TwiML is accepted, Cancel is not
    expect(panel.get_by_label("Redirect URL")).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    expect(panel.get_by_label("TwiML", exact=True)).to_be_visible()
    expect(bar.get_by_role("button", name="Cancel")).to_have_count(0)
    expect(bar).to_contain_text("Url")
    panel.get_by_label("Redirect URL").fill("https://example.com/typed")

    record(stack, sid, "completed")  # ended: nothing is offered any more
    expect(panel.locator("#ended-note")).to_contain_text("completed", timeout=LIVE_TIMEOUT_MS)
    expect(panel.get_by_label("Redirect URL")).to_be_hidden()
    expect(panel.get_by_label("TwiML", exact=True)).to_be_hidden()
    expect(bar.get_by_role("button")).to_have_count(0)


def test_typing_survives_the_polls_of_a_live_call(panel: Page, stack):
    sid = open_live_call(panel, stack, "+15555550162")
    panel.get_by_label("Redirect URL").fill("https://example.com/half-typed")
    panel.get_by_label("Redirect URL").focus()
    # The hold loop keeps changing the transcript: wait for a few swaps of the polled region.
    with panel.expect_response(lambda r: r.url.endswith(f"/admin/calls/{sid}/live")
                               and r.status == 200, timeout=LIVE_TIMEOUT_MS * 2):
        pass
    expect(panel.get_by_label("Redirect URL")).to_have_value("https://example.com/half-typed")
    expect(panel.get_by_label("Redirect URL")).to_be_focused()
    stack.caller_hangs_up(sid)


def test_twilio_refusing_new_twiml_for_a_ringing_call_is_explained(panel: Page, stack):
    # The panel offers no Redirect while ringing; the API still asks Twilio, who says 21220.
    panel.get_by_label("To").fill("+15555550163")
    panel.get_by_role("button", name="Place call").click()
    expect(panel.locator("#call-status")).to_contain_text("ringing", timeout=LIVE_TIMEOUT_MS)
    sid = panel.url.rsplit("/", 1)[1]
    expect(panel.locator("#not-answered")).to_be_visible()
    answer = panel.request.post(f"/api/calls/{sid}/redirect", data={"url": "/voice/hold"},
                                headers=basic_auth("admin", ADMIN_PASSWORD))
    assert answer.status == 409
    body = answer.json()
    assert body["twilio_code"] == 21220
    assert "The call is ringing: nobody has answered it yet" in body["message"]
    assert "caller probably hung up" not in body["message"]  # no story that contradicts the status
    panel.once("dialog", lambda dialog: dialog.accept())
    panel.locator("#call-bar").get_by_role("button", name="Cancel").click()
    expect(panel.locator("#call-status")).to_contain_text("canceled")
    assert stack.emulator_call(sid)["status"] == "canceled"


def test_hold_laps_fold_into_one_line_that_stays_open(panel: Page, stack):
    sid = open_live_call(panel, stack, "+15555550164")
    fold = panel.locator(".transcript .fold summary")
    expect(fold).to_contain_text("hold music", timeout=LIVE_TIMEOUT_MS * 3)
    expect(fold).to_contain_text("laps")
    fold.click()
    laps = fold.inner_text()
    expect(fold).not_to_have_text(laps, timeout=LIVE_TIMEOUT_MS * 2)  # another lap: a swap
    expect(panel.locator(".transcript .fold details[open]")).to_have_count(1)
    stack.caller_hangs_up(sid)


def test_no_page_scrolls_sideways_on_a_phone(panel: Page, stack):
    sid = open_live_call(panel, stack, "+15555550165")
    long_path = "/voice/hold?" + "&".join(f"segment{n}=" + "x" * 40 for n in range(12))
    panel.get_by_label("Redirect URL").fill(long_path)
    panel.get_by_label("Method").select_option("GET")
    panel.get_by_role("button", name="Redirect", exact=True).click()
    expect(panel.locator(".transcript")).to_contain_text("segment11", timeout=LIVE_TIMEOUT_MS)
    dead = "http://127.0.0.1:9/" + "unreachable-" * 40
    panel.get_by_label("Redirect URL").fill(dead)
    panel.get_by_label("Method").select_option("POST")
    panel.get_by_role("button", name="Redirect", exact=True).click()
    expect(panel.locator(".transcript")).to_contain_text("11205", timeout=LIVE_TIMEOUT_MS * 4)

    panel.set_viewport_size(PHONE)
    for path in (f"/admin/calls/{sid}", "/admin", "/admin/history", "/admin/operators",
                 "/admin/audit"):
        panel.goto(path)
        width = panel.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{path} is {width} px wide at {PHONE['width']} px"
    expect(panel.get_by_role("button", name="Log out")).to_be_visible()

    stack.caller_hangs_up(sid)
    sid = stack.ring("+15555550168")
    panel.goto("/admin")  # one card per call, each control at least 44 px and on top
    controls = panel.locator(f"#live-calls tr[data-sid='{sid}'] .row-actions").locator("a, button")
    expect(controls.first).to_be_visible()
    for index in range(controls.count()):
        control = controls.nth(index)
        box = control.bounding_box()
        assert box["height"] >= 44 and box["width"] >= 44, (control.inner_text(), box)
        hit = panel.evaluate("([x, y]) => document.elementFromPoint(x, y).closest('a, button')"
                             "?.getAttribute('aria-label')",
                             [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2])
        assert hit == control.get_attribute("aria-label")
    stack.caller_hangs_up(sid)


def test_in_demo_mode_the_operator_can_act_as_the_caller(panel: Page, stack):
    sid = open_live_call(panel, stack, "+15555550166")
    panel.get_by_label("Preset").select_option(label="Feedback survey")
    panel.get_by_role("button", name="Send TwiML").click()
    expect(panel.locator(".transcript")).to_contain_text("How did we do today")
    panel.get_by_label("Keys to press").fill("4")
    panel.get_by_role("button", name="Press keys").click()
    expect(panel.get_by_role("status").first).to_contain_text("The caller pressed 4.")
    expect(panel.locator(".transcript")).to_contain_text("You pressed 4", timeout=LIVE_TIMEOUT_MS)
    # The survey hangs up after thanking the caller: the caller's controls go with the call.
    expect(panel.locator("#ended-note")).to_be_visible(timeout=LIVE_TIMEOUT_MS * 2)
    expect(panel.get_by_label("Keys to press")).to_be_hidden()
    assert "4" in [line["text"] for line in stack.emulator_call(sid)["transcript"]
                   if line["kind"] == "digits"][0]


def test_the_caller_hangs_up_from_the_call_page(panel: Page, stack):
    sid = open_live_call(panel, stack, "+15555550167")
    panel.get_by_label("Keys to press").fill("12x")  # not keys: refused before the emulator
    panel.get_by_label("Keys to press").evaluate("el => el.removeAttribute('pattern')")
    panel.get_by_role("button", name="Press keys").click()
    expect(panel.get_by_role("alert")).to_contain_text("Keys must be one to 64 of 0–9, * and #")
    panel.get_by_role("button", name="Stay on the line").click()
    expect(panel.get_by_role("status").first).to_contain_text("The caller will stay on the line")
    panel.get_by_role("button", name="The caller hangs up").click()
    expect(panel.locator("#call-status")).to_contain_text("completed", timeout=LIVE_TIMEOUT_MS)
    assert stack.emulator_call(sid)["status"] == "completed"


def test_the_journey_explains_a_redirect_to_a_dead_url(panel: Page, stack):
    sid = open_live_call(panel, stack, "+15555550169")
    dead = f"{stack.url}/no-twiml-here"  # it answers 404: Twilio's 11200
    panel.get_by_label("Redirect URL").fill(dead)
    panel.get_by_role("button", name="Redirect", exact=True).click()
    journey = panel.locator(".journey")
    failed = journey.locator(".step.failed", has_text="11200")
    expect(failed.first).to_be_visible(timeout=LIVE_TIMEOUT_MS * 2)
    explanation = failed.first.locator(".explain")
    expect(explanation).to_contain_text("HTTP retrieval failure")
    expect(explanation).to_contain_text("Fix:")
    expect(explanation.get_by_role("link", name="Twilio's page for error 11200")).to_have_attribute(
        "href", "https://www.twilio.com/docs/api/errors/11200")
    # Twilio's Debugger webhook tells the app too: a red Debugger entry with the code.
    expect(journey.locator(".step-debugger.failed", has_text="11200")).to_be_visible()
    # And Twilio's Call Events show the request our webhooks never saw, and its 404.
    expect(journey.locator(".step-webhook.failed", has_text=f"Twilio requested POST {dead} → 404")
           ).to_be_visible()
    action = journey.locator(".step-action", has_text="redirect by admin")
    action.locator("summary").click()
    expect(action.locator("pre").first).to_contain_text(
        f'client.calls("{sid}").update(url="{dead}", method="POST")')
    expect(action).to_contain_text('-u "$TWILIO_ACCOUNT_SID:$TWILIO_AUTH_TOKEN"')
    webhook = journey.locator(".step-webhook", has_text="/voice →").first
    webhook.locator("summary").click()
    expect(webhook.locator("pre.code").last).to_contain_text("<Say>")
