"""Chaos: each fault through the official SDK or the app's side of a webhook, and a seed that repeats a run exactly."""

from __future__ import annotations

import pytest
import requests
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from emulator_testkit import ACCOUNT_SID, AUTH_TOKEN, CALLER, NUMBER, make_emulator, twiml

AUTH = (ACCOUNT_SID, AUTH_TOKEN)
ALL_EVENTS = ["initiated", "ringing", "answered", "completed"]


def set_chaos(emu, body, status=200):
    resp = requests.post(emu.url + "/emulator/chaos", json=body, auth=AUTH, timeout=5)
    assert resp.status_code == status, resp.text
    return resp.json()


def place(emu, receiver, **kwargs):
    args = {"to": "+15555550111", "from_": NUMBER, "url": receiver.url + "/voice", "status_callback": receiver.url + "/status",
            "status_callback_event": ALL_EVENTS}
    args.update(kwargs)
    return emu.client.calls.create(**args)


def arrivals(receiver, sid):
    return [(int(h.param("SequenceNumber")), h.param("CallStatus")) for h in receiver.on("/status") if h.param("CallSid") == sid]


def test_chaos_is_shown_set_and_validated(emu):
    assert requests.get(emu.url + "/emulator/chaos", auth=AUTH, timeout=5).json()["active"] is False
    body = set_chaos(emu, {"preset": "bad-day", "seed": 7})
    assert body["active"] and body["preset"] == "bad-day" and body["seed"] == 7
    assert body["status_callbacks"]["duplicate"] == 0.1 and body["rest"]["calls_per_second"] == 1
    assert body["summary"].startswith("bad-day: duplicate 10%")
    for bad in ({"status_callbacks": {"drop": 2}}, {"weather": "stormy"}, {"preset": "worst-day"}, {"seed": True},
                {"rest": {"rate_limit": "often"}}, {"webhooks": {"latency_ms": -1}}, []):
        set_chaos(emu, bad, 400)
    assert requests.post(emu.url + "/emulator/chaos", data="{", auth=AUTH, timeout=5,
                         headers={"Content-Type": "application/json"}).status_code == 400
    assert set_chaos(emu, {})["active"] is False
    assert requests.post(emu.url + "/emulator/chaos", json={}, timeout=5).status_code == 401


def test_the_environment_can_turn_on_a_preset(receiver):
    emu, handle = make_emulator(receiver, EMULATOR_CHAOS="bad-day")
    try:
        assert requests.get(emu.url + "/emulator/chaos", auth=AUTH, timeout=5).json()["preset"] == "bad-day"
    finally:
        handle.stop()
        emu.engine.stop()
    with pytest.raises(ValueError):
        make_emulator(receiver, EMULATOR_CHAOS='{"status_callbacks": {"drop": 5}}')


def test_duplicated_callbacks_carry_the_same_idempotency_token(emu, receiver):
    set_chaos(emu, {"status_callbacks": {"duplicate": 1}})
    call = place(emu, receiver)
    emu.advance(3)
    assert arrivals(receiver, call.sid) == [(0, "initiated"), (0, "initiated"), (1, "ringing"), (1, "ringing"),
                                            (2, "in-progress"), (2, "in-progress"), (3, "completed"), (3, "completed")]
    hits = receiver.on("/status")
    for first, second in zip(hits[::2], hits[1::2], strict=True):
        assert first.headers["I-Twilio-Idempotency-Token"] == second.headers["I-Twilio-Idempotency-Token"]
    assert len({h.headers["I-Twilio-Idempotency-Token"] for h in hits}) == 4


def test_dropped_callbacks_never_arrive_and_the_inspector_says_so(emu, receiver):
    set_chaos(emu, {"status_callbacks": {"drop": 1}})
    call = place(emu, receiver)
    emu.advance(3)
    assert arrivals(receiver, call.sid) == []
    record = requests.get(emu.url + "/emulator/webhooks", params={"call_sid": call.sid}, auth=AUTH, timeout=5).json()["webhooks"]
    dropped = [w for w in record if w["kind"] == "status-callback"]
    assert len(dropped) == 4 and all(w["notes"] == ["chaos: dropped"] and w["response"]["status"] is None for w in dropped)


def test_reordered_and_delayed_callbacks(emu, receiver):
    set_chaos(emu, {"status_callbacks": {"reorder": 1}})
    reordered = place(emu, receiver)
    emu.advance(3)
    # Each callback waits for the next one; the last (completed) has none to wait for.
    assert arrivals(receiver, reordered.sid) == [(0, "initiated"), (1, "ringing"), (3, "completed"), (2, "in-progress")]
    set_chaos(emu, {"status_callbacks": {"delay": 1, "delay_ms": 2500}})
    delayed = place(emu, receiver)
    emu.advance(2)
    assert arrivals(receiver, delayed.sid) == []
    emu.advance(0.5)
    assert arrivals(receiver, delayed.sid) == [(0, "initiated"), (1, "ringing")]
    emu.advance(3)
    assert arrivals(receiver, delayed.sid) == [(0, "initiated"), (1, "ringing"), (2, "in-progress"), (3, "completed")]


def mixed_run(receiver, seed):
    """Ten calls under a mix of callback faults; the order in which their callbacks arrived."""
    emu, handle = make_emulator(receiver)
    try:
        set_chaos(emu, {"seed": seed, "status_callbacks": {"duplicate": 0.3, "reorder": 0.3, "drop": 0.2, "delay": 0.3, "delay_ms": 700}})
        receiver.hits.clear()
        calls = [place(emu, receiver, to=f"+155555501{i:02d}") for i in range(10)]
        emu.advance(5)
        return [arrivals(receiver, call.sid) for call in calls]
    finally:
        handle.stop()
        emu.engine.stop()


def test_a_seed_repeats_a_run_exactly(receiver):
    first, again, other = mixed_run(receiver, 11), mixed_run(receiver, 11), mixed_run(receiver, 12)
    assert first == again
    assert first != other
    assert any(len(a) != 4 or a != sorted(a) for a in first)  # the faults did happen


def test_webhook_latency_delays_each_twiml_request(emu, receiver):
    set_chaos(emu, {"webhooks": {"latency_ms": 500}})
    receiver.answer("/voice", twiml("<Say>Hi</Say>"))
    call = place(emu, receiver)
    emu.advance(1)
    assert emu.engine.get(call.sid).status == "in-progress" and receiver.on("/voice") == []
    emu.advance(0.5)
    assert len(receiver.on("/voice")) == 1


def test_rate_limited_requests_get_429_with_20429(emu, receiver):
    set_chaos(emu, {"rest": {"rate_limit": 1}})
    with pytest.raises(TwilioRestException) as err:
        place(emu, receiver)
    assert (err.value.status, err.value.code) == (429, 20429)
    assert "Too Many Requests" in err.value.msg
    set_chaos(emu, {})
    assert place(emu, receiver).status == "queued"


def test_creates_queue_at_the_accounts_calls_per_second(emu, receiver):
    set_chaos(emu, {"rest": {"calls_per_second": 1}})
    receiver.answer("/voice", twiml("<Pause length='30'/>"))
    calls = [place(emu, receiver, to=f"+1555555012{i}") for i in range(3)]
    assert [c.queue_time for c in calls] == ["0", "1000", "2000"]
    emu.advance(0)
    assert [emu.engine.get(c.sid).status for c in calls] == ["ringing", "queued", "queued"]
    emu.advance(1)
    assert [emu.engine.get(c.sid).status for c in calls] == ["in-progress", "ringing", "queued"]
    emu.advance(1)
    assert [emu.engine.get(c.sid).status for c in calls] == ["in-progress", "in-progress", "ringing"]
    assert emu.client.calls(calls[2].sid).fetch().queue_time == "2000"


def test_a_lost_response_creates_the_call_but_the_client_times_out(emu, receiver):
    set_chaos(emu, {"rest": {"lost_response": 1}})
    receiver.answer("/voice", twiml("<Pause length='30'/>"))
    impatient = Client(ACCOUNT_SID, AUTH_TOKEN, http_client=TwilioHttpClient(timeout=0.5))
    impatient.api.base_url = emu.url
    with pytest.raises(requests.exceptions.Timeout):
        impatient.calls.create(to="+15555550111", from_=NUMBER, url=receiver.url + "/voice")
    set_chaos(emu, {})
    (created,) = emu.client.calls.list()
    emu.advance(1)
    assert emu.engine.get(created.sid).status == "in-progress"  # placed all the same: a careless retry places it twice


def test_a_simulated_caller_can_bring_its_own_chaos(emu, receiver):
    resp = requests.post(emu.url + "/emulator/incoming", json={"from": CALLER, "hangup_after": 2, "chaos": {"status_callbacks": {"duplicate": 1}}},
                         auth=AUTH, timeout=5)
    assert resp.status_code == 201
    stormy = resp.json()["call_sid"]
    calm = requests.post(emu.url + "/emulator/incoming", json={"from": CALLER, "hangup_after": 2}, auth=AUTH, timeout=5).json()["call_sid"]
    receiver.answer("/voice", twiml("<Pause length='10'/>"))
    emu.advance(3)
    assert arrivals(receiver, stormy) == [(0, "completed"), (0, "completed")]
    assert arrivals(receiver, calm) == [(0, "completed")]
    bad = requests.post(emu.url + "/emulator/incoming", json={"from": CALLER, "chaos": {"status_callbacks": {"drop": -1}}}, auth=AUTH, timeout=5)
    assert bad.status_code == 400
