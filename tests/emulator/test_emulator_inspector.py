"""The inspector (every request the emulator sent, replayable) and Twilio's retries as the URL's
connection overrides say."""

from __future__ import annotations

import socket
import threading

import requests
from werkzeug.datastructures import MultiDict

from emulator_testkit import ACCOUNT_SID, AUTH_TOKEN, CALLER, NUMBER, make_emulator, twiml

AUTH = (ACCOUNT_SID, AUTH_TOKEN)


def webhooks(emu, **params):
    resp = requests.get(emu.url + "/emulator/webhooks", params=params, auth=AUTH, timeout=5)
    assert resp.status_code == 200, resp.text
    return resp.json()


def closed_port_url() -> str:
    """A loopback URL nothing listens on (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_every_request_is_recorded_with_its_signature_and_response(emu, receiver, validator):
    receiver.answer("/voice", twiml("<Say>Hi</Say>"))
    call = emu.client.calls.create(to="+15555550111", from_=NUMBER, url=receiver.url + "/voice", status_callback=receiver.url + "/status",
                                   status_callback_event=["initiated", "answered"])
    emu.advance(3)
    body = webhooks(emu, call_sid=call.sid)
    kinds = [(w["kind"], w["url"].rsplit("/", 1)[1]) for w in body["webhooks"]]
    # The TwiML request and the `answered` callback go out together (call lane, callback lane): no order between them.
    assert sorted(kinds) == [("status-callback", "status")] * 3 + [("twiml", "voice")]
    assert body["next_page_uri"] is None
    (twiml_request,) = [w for w in body["webhooks"] if w["kind"] == "twiml"]
    assert twiml_request["method"] == "POST" and twiml_request["attempt"] == 1
    params = dict(twiml_request["parameters"])
    assert params["CallSid"] == call.sid and params["CallStatus"] == "in-progress"
    assert validator.validate(twiml_request["url"], MultiDict(twiml_request["parameters"]), twiml_request["signature"])
    assert twiml_request["response"]["status"] == 200 and "<Say>Hi</Say>" in twiml_request["response"]["body_excerpt"]
    assert twiml_request["response"]["content_type"].startswith("text/xml")
    assert twiml_request["duration_ms"] >= 0 and twiml_request["sent_at"].endswith("+0000")
    (hit,) = receiver.on("/voice")
    assert hit.headers["I-Twilio-Idempotency-Token"] == twiml_request["idempotency_token"]
    ids = [w["id"] for w in body["webhooks"]]
    assert ids == sorted(ids, reverse=True)  # newest first
    assert requests.get(emu.url + "/emulator/webhooks", timeout=5).status_code == 401


def test_pages_and_replay(emu, receiver, validator):
    receiver.answer("/voice", twiml("<Pause length='1'/><Redirect>/voice</Redirect>"))
    sid = emu.engine.incoming(from_=CALLER).sid
    emu.advance(4)
    first = webhooks(emu, call_sid=sid, limit=2)
    assert len(first["webhooks"]) == 2 and first["next_page_uri"]
    second = requests.get(emu.url + first["next_page_uri"], auth=AUTH, timeout=5).json()
    assert [w["id"] for w in second["webhooks"]] == [first["webhooks"][1]["id"] - 1, first["webhooks"][1]["id"] - 2]
    assert len(webhooks(emu, call_sid=sid, limit=500)["webhooks"]) == 5
    original = first["webhooks"][0]
    resp = requests.post(f"{emu.url}/emulator/webhooks/{original['id']}/replay", auth=AUTH, timeout=5)
    assert resp.status_code == 201
    replayed = resp.json()
    assert (replayed["kind"], replayed["replay_of"], replayed["parameters"]) == ("replay", original["id"], original["parameters"])
    assert replayed["idempotency_token"] != original["idempotency_token"]
    hit = receiver.on("/voice")[-1]
    assert hit.headers["I-Twilio-Idempotency-Token"] == replayed["idempotency_token"]
    assert validator.validate(hit.url, MultiDict([(k, v) for k, vs in hit.form.items() for v in vs]), hit.headers["X-Twilio-Signature"])
    assert webhooks(emu, call_sid=sid, limit=1)["webhooks"][0]["id"] == replayed["id"]
    assert requests.post(f"{emu.url}/emulator/webhooks/999999/replay", auth=AUTH, timeout=5).status_code == 404
    assert requests.get(emu.url + "/emulator/webhooks", params={"limit": "0"}, auth=AUTH, timeout=5).status_code == 400


def test_the_record_is_bounded(receiver):
    emu, handle = make_emulator(receiver, EMULATOR_INSPECTOR_SIZE="3")
    try:
        receiver.answer("/voice", twiml("<Pause length='1'/><Redirect>/voice</Redirect>"))
        emu.engine.incoming(from_=CALLER)
        emu.advance(9)
        kept = webhooks(emu)["webhooks"]
        assert [w["id"] for w in kept] == [10, 9, 8]
        assert requests.post(f"{emu.url}/emulator/webhooks/1/replay", auth=AUTH, timeout=5).status_code == 404
    finally:
        handle.stop()
        emu.engine.stop()


# --------------------------------------------------------------------------- retries (connection overrides)


def attempts(emu, sid, kind="twiml"):
    return [(w["attempt"], w["response"]["status"]) for w in reversed(webhooks(emu, call_sid=sid)["webhooks"]) if w["kind"] == kind]


def errors(emu, sid):
    return [line.get("code") for line in emu.transcript(sid) if line["kind"] == "error"]


def test_5xx_is_retried_only_when_the_retry_policy_says_so(emu, receiver):
    receiver.answer("/voice", "down", status=503, content_type="text/plain")
    receiver.answer("/fallback", twiml("<Say>Fallback</Say>"))
    retried = emu.client.calls.create(to="+15555550111", from_=NUMBER, url=receiver.url + "/voice#rc=2&rp=5xx",
                                      fallback_url=receiver.url + "/fallback")
    plain = emu.client.calls.create(to="+15555550112", from_=NUMBER, url=receiver.url + "/voice")
    emu.advance(2)
    assert attempts(emu, retried.sid) == [(1, 503), (2, 503), (3, 503), (1, 200)]  # then the FallbackUrl
    tokens = {w["idempotency_token"] for w in webhooks(emu, call_sid=retried.sid)["webhooks"] if w["url"].endswith("/voice")}
    assert len(tokens) == 1  # retries carry the same idempotency token
    assert all("#" not in hit.url for hit in receiver.on("/voice"))  # the fragment is never sent
    (fallback,) = receiver.on("/fallback")
    assert (fallback.param("ErrorCode"), fallback.param("ErrorUrl")) == ("11200", receiver.url + "/voice#rc=2&rp=5xx")
    assert attempts(emu, plain.sid) == [(1, 503)]  # the default policy (ct) does not retry a 5xx
    assert errors(emu, plain.sid) == [11200]


def test_connection_failures_are_retried_once_by_default_then_11205(emu, receiver):
    dead = closed_port_url()
    default = emu.client.calls.create(to="+15555550111", from_=NUMBER, url=dead + "/voice", fallback_url=receiver.url + "/fallback")
    no_retry = emu.client.calls.create(to="+15555550112", from_=NUMBER, url=dead + "/voice#rc=0")
    emu.advance(2)
    assert attempts(emu, default.sid)[:2] == [(1, None), (2, None)]
    assert errors(emu, default.sid) == [11205]
    assert receiver.on("/fallback")[0].param("ErrorCode") == "11205"
    assert attempts(emu, no_retry.sid) == [(1, None)]
    assert errors(emu, no_retry.sid) == [11205]


def test_read_timeout_override_and_a_retried_status_callback(emu, receiver):
    release = threading.Event()
    receiver.answer("/slow", lambda hit: release.wait(30) and twiml("<Say>late</Say>"))
    receiver.answer("/flaky-status", "oops", status=500, content_type="text/plain")
    receiver.answer("/voice", twiml("<Say>Hi</Say>"))
    try:
        slow = emu.client.calls.create(to="+15555550111", from_=NUMBER, url=receiver.url + "/slow#rt=200&rc=1&rp=rt")
        flaky = emu.client.calls.create(to="+15555550112", from_=NUMBER, url=receiver.url + "/voice",
                                        status_callback=receiver.url + "/flaky-status#rc=1&rp=5xx")
        emu.advance(3)
    finally:
        release.set()
    assert attempts(emu, slow.sid) == [(1, None), (2, None)]
    assert errors(emu, slow.sid) == [11200]
    hits = receiver.on("/flaky-status")
    assert len(hits) == 2 and hits[0].headers["I-Twilio-Idempotency-Token"] == hits[1].headers["I-Twilio-Idempotency-Token"]
    assert attempts(emu, flaky.sid, "status-callback") == [(1, 500), (2, 500)]


def test_an_invalid_retry_policy_is_warned_about_with_11243(emu, receiver):
    receiver.answer("/voice", twiml("<Say>Hi</Say>"))
    call = emu.client.calls.create(to="+15555550111", from_=NUMBER, url=receiver.url + "/voice#rp=sometimes&ct=5")
    emu.advance(2)
    warnings = [line for line in emu.transcript(call.sid) if line["kind"] == "warning"]
    assert [w.get("code") for w in warnings] == [None, 11243]
    assert emu.said(call.sid) == ["Hi"]
