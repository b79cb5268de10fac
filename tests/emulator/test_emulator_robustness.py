"""No slow app stalls the others, no input stops the emulator, and the manual clock is exact.

"Hanging" URLs are served by the real loopback receiver: their handler blocks on an Event the test
releases at the end. `advance(..., stalled=[sid])` steps time without waiting for that call's
TwiML lane (`stalled_callbacks=[sid]`: its status-callback lane).
"""

from __future__ import annotations

import threading

import pytest
import requests
from twilio.base.exceptions import TwilioRestException

from emulator import interpreter, verbs
from emulator_testkit import ACCOUNT_SID, AUTH_TOKEN, CALLER, NUMBER, make_emulator, twiml, wait_for

ALL_EVENTS = ["initiated", "ringing", "answered", "completed"]
CALLS = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json"
AUTH = (ACCOUNT_SID, AUTH_TOKEN)


def create(emu, receiver, path="/voice", callback="/status", **kwargs):
    args = {"to": "+15555550111", "from_": NUMBER, "url": receiver.url + path, "status_callback": receiver.url + callback,
            "status_callback_event": ALL_EVENTS}
    args.update(kwargs)
    return emu.client.calls.create(**args)


def status(emu, sid):
    return emu.engine.get(sid).status


def codes(emu, sid, kind):
    return [line.get("code") for line in emu.transcript(sid) if line["kind"] == kind]


class Hang:
    """A receiver handler that blocks until released (at the latest when the test ends)."""

    def __init__(self, body: str = "<Response/>"):
        self.body = body
        self.release = threading.Event()
        self.entered = 0
        self.lock = threading.Lock()

    def __call__(self, hit):
        with self.lock:
            self.entered += 1
        self.release.wait(60)
        return self.body


@pytest.fixture
def slow_emu(receiver):
    """The emulator with a webhook timeout longer than any hang, so only the test ends a hang."""
    emu, handle = make_emulator(receiver, EMULATOR_WEBHOOK_TIMEOUT="90")
    yield emu
    handle.stop()
    emu.engine.stop()


# --------------------------------------------------------------------------- the manual clock


def test_nothing_happens_until_advance_not_even_zero_delay_tasks(emu, receiver):
    receiver.answer("/voice", twiml("<Pause length='30'/>"))
    placed = create(emu, receiver)
    rung = emu.engine.incoming(from_=CALLER).sid
    assert (status(emu, placed.sid), status(emu, rung)) == ("queued", "ringing")
    assert receiver.hits == []
    emu.advance(0)
    assert status(emu, placed.sid) == "ringing"
    assert status(emu, rung) == "in-progress"
    assert sorted(receiver.paths()) == ["/status", "/status", "/voice"]  # two calls: no order between them
    emu.advance(1)
    emu.client.calls(placed.sid).update(url=receiver.url + "/other")
    assert receiver.on("/other") == []
    emu.advance(0)
    assert len(receiver.on("/other")) == 1


# --------------------------------------------------------------------------- slow apps


def test_a_hanging_app_url_delays_only_its_own_call(slow_emu, receiver):
    emu = slow_emu
    hang = Hang(twiml("<Say>Late but heard</Say>"))
    receiver.answer("/hang", hang)
    receiver.answer("/voice", twiml("<Say>Hello</Say>"))
    stuck = create(emu, receiver, path="/hang")
    others = [create(emu, receiver, to=f"+1555555013{i}") for i in range(5)]
    try:
        emu.advance(1, stalled=[stuck.sid])
        wait_for(lambda: hang.entered == 1, "the app to receive the stuck call's webhook", timeout=30)
        emu.advance(1, stalled=[stuck.sid])
        for call in others:
            assert emu.said(call.sid) == ["Hello"]
            assert status(emu, call.sid) == "completed"
            assert receiver.statuses(call.sid) == [(0, "initiated"), (1, "ringing"), (2, "in-progress"), (3, "completed")]
        assert not hang.release.is_set() and hang.entered == 1  # still hanging all along
        assert emu.said(stuck.sid) == [] and status(emu, stuck.sid) == "in-progress"
    finally:
        hang.release.set()
    emu.advance(0)
    assert emu.said(stuck.sid) == ["Late but heard"]
    emu.advance(1)
    assert status(emu, stuck.sid) == "completed"


def test_a_hanging_status_callback_url_delays_only_its_own_calls_callbacks(slow_emu, receiver):
    emu = slow_emu
    hang = Hang()
    receiver.answer("/hang-status", hang)
    receiver.answer("/voice", twiml("<Say>Hello</Say>"))
    stuck = create(emu, receiver, callback="/hang-status")
    others = [create(emu, receiver, to=f"+1555555014{i}") for i in range(5)]
    try:
        emu.advance(3, stalled_callbacks=[stuck.sid])
        for call in others:
            assert receiver.statuses(call.sid) == [(0, "initiated"), (1, "ringing"), (2, "in-progress"), (3, "completed")]
        # The stuck call's own TwiML ran on time; only its callbacks wait, in order, behind the first.
        assert emu.said(stuck.sid) == ["Hello"] and status(emu, stuck.sid) == "completed"
        wait_for(lambda: hang.entered == 1, "the first callback to reach the hanging URL", timeout=30)
        assert len(receiver.on("/hang-status")) == 1
    finally:
        hang.release.set()
    emu.advance(0)
    assert receiver.statuses(stuck.sid, "/hang-status") == [(0, "initiated"), (1, "ringing"), (2, "in-progress"), (3, "completed")]


# --------------------------------------------------------------------------- bad input


def test_time_limit_that_would_overflow_the_clock_is_refused_and_the_engine_goes_on(emu, receiver):
    for value in ("100000000000", "86401", "59", "0", "-5", "1e3", "9" * 400):
        resp = requests.post(emu.url + CALLS, auth=AUTH, timeout=5,
                             data={"To": "+15555550111", "From": NUMBER, "Url": receiver.url + "/voice", "TimeLimit": value})
        assert resp.status_code == 400, value
        assert resp.json()["code"] == 20001, value
    for value in ("601", "0", "abc", "100000000000"):
        resp = requests.post(emu.url + CALLS, auth=AUTH, timeout=5,
                             data={"To": "+15555550111", "From": NUMBER, "Url": receiver.url + "/voice", "Timeout": value})
        assert (resp.status_code, resp.json()["code"]) == (400, 21208), value
    assert emu.engine.all_calls() == []
    receiver.answer("/voice", twiml("<Pause length='100'/>"))
    call = create(emu, receiver, time_limit=86400, timeout=600)
    emu.advance(1)
    with pytest.raises(TwilioRestException) as err:
        emu.client.calls(call.sid).update(time_limit=100000000000)
    assert (err.value.status, err.value.code) == (400, 20001)
    emu.advance(100)
    assert status(emu, call.sid) == "completed"
    assert requests.get(emu.url + "/emulator/health", timeout=5).status_code == 200


def test_out_of_range_twiml_values_warn_with_twilio_codes_and_are_bounded(emu, receiver):
    receiver.answer("/voice", twiml(
        "<Say loop='-1'>Hi</Say>",
        "<Pause length='abc'/>",
        "<Gather timeout='1e99' numDigits='1'/>",
        "<Record maxLength='0' timeout='-3' action='/recorded'/>",
    ))
    receiver.answer("/recorded", twiml(
        "<Dial timeout='99999999999' timeLimit='-5'>+15555550186</Dial>",
        "<Pause length='100000000000'/>",
    ))
    sid = emu.engine.incoming(from_=CALLER).sid
    emu.advance(60)
    assert codes(emu, sid, "warning") == [13510, 13910, 13313, 13612, 13611, 13212, 13216, 13910]
    pauses = [line["length"] for line in emu.transcript(sid) if line["kind"] == "pause"]
    assert pauses == [1, 86400]  # a bad length is Twilio's default; a huge one is bounded
    assert status(emu, sid) == "in-progress"
    emu.advance(14400)  # the default time limit (4 hours) ends it, long before the pause would
    assert status(emu, sid) == "completed"
    assert 32015 in codes(emu, sid, "status")


def test_control_endpoints_refuse_durations_the_clock_cannot_hold(emu):
    for value in ("1e300", "nan", "inf", "-1", "86401"):
        resp = requests.post(emu.url + "/emulator/incoming", json={"from": CALLER, "hangup_after": value}, auth=AUTH, timeout=5)
        assert resp.status_code == 400, value
    assert emu.engine.all_calls() == []


def test_a_redirect_loop_is_cut_with_14106_and_the_call_ends(emu, receiver):
    receiver.answer("/voice", twiml("<Redirect>/voice</Redirect>"))
    sid = emu.engine.incoming(from_=CALLER).sid
    emu.advance(0)
    assert len(receiver.on("/voice")) == 50
    assert codes(emu, sid, "error") == [14106]
    assert emu.said(sid) == [interpreter.APPLICATION_ERROR]
    emu.advance(1)
    assert status(emu, sid) == "completed"
    assert receiver.statuses(sid) == [(0, "completed")]


def test_a_hold_loop_that_lets_time_pass_is_not_a_redirect_loop(emu, receiver):
    receiver.answer("/voice", twiml("<Pause length='1'/><Redirect>/voice</Redirect>"))
    sid = emu.engine.incoming(from_=CALLER).sid
    emu.advance(80)
    assert len(receiver.on("/voice")) == 81
    assert status(emu, sid) == "in-progress" and codes(emu, sid, "error") == []


# --------------------------------------------------------------------------- crashes and health


def test_an_exception_in_one_call_ends_that_call_only(emu, receiver, monkeypatch, caplog):
    original = interpreter._HANDLERS[verbs.Say]

    def say(runner, verb, base):
        if verb.text == "crash":
            raise RuntimeError("a bug in the emulator")
        return original(runner, verb, base)

    monkeypatch.setitem(interpreter._HANDLERS, verbs.Say, say)
    receiver.answer("/crash", twiml("<Say>crash</Say>"))
    receiver.answer("/voice", twiml("<Say>fine</Say>"))
    crashing = create(emu, receiver, path="/crash")
    fine = create(emu, receiver, to="+15555550112")
    emu.advance(1)
    assert status(emu, crashing.sid) == "completed"
    assert codes(emu, crashing.sid, "error") == [12400]
    assert receiver.statuses(crashing.sid)[-1] == (3, "completed")
    assert "crashed" in caplog.text and "a bug in the emulator" in caplog.text
    emu.advance(1)
    assert emu.said(fine.sid) == ["fine"] and status(emu, fine.sid) == "completed"
    later = create(emu, receiver, to="+15555550113")
    emu.advance(2)
    assert status(emu, later.sid) == "completed"
    assert requests.get(emu.url + "/emulator/health", timeout=5).json() == {"ok": True}


def test_health_is_503_once_the_scheduler_has_stopped(receiver):
    emu, handle = make_emulator(receiver, EMULATOR_CLOCK=None)
    try:
        assert requests.get(emu.url + "/emulator/health", timeout=5).status_code == 200
        emu.engine.stop()
        resp = requests.get(emu.url + "/emulator/health", timeout=5)
        assert resp.status_code == 503
        assert resp.json()["ok"] is False
    finally:
        handle.stop()
        emu.engine.stop()
