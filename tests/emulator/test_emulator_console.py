"""The emulator's own control endpoints, pages, CLI and the serve_in_thread helper."""

from __future__ import annotations

import re

import requests
from flask import Flask

from emulator import create_app, is_loopback_host
from emulator.server import serve_in_thread
from emulator_testkit import ACCOUNT_SID, AUTH_TOKEN, CALLER, NUMBER, make_emulator, twiml

AUTH = (ACCOUNT_SID, AUTH_TOKEN)


def test_incoming_endpoint_rings_the_voice_url(emu, receiver):
    receiver.answer("/voice", twiml("<Gather action='/menu' numDigits='1'><Say>Press</Say></Gather>"))
    resp = requests.post(emu.url + "/emulator/incoming", json={"from": CALLER, "caller_name": "Ada", "digits": "3"}, auth=AUTH, timeout=5)
    assert resp.status_code == 201
    sid = resp.json()["call_sid"]
    assert sid.startswith("CA") and len(sid) == 34
    emu.advance(2)
    (voice,) = receiver.on("/voice")
    assert voice.param("CallSid") == sid and voice.param("To") == NUMBER and voice.param("CallerName") == "Ada"
    assert receiver.on("/menu")[0].param("Digits") == "3"


def test_incoming_accepts_form_and_custom_to(emu, receiver):
    resp = requests.post(emu.url + "/emulator/incoming", data={"from": CALLER, "to": "+15555550101", "hangup_after": "3"}, auth=AUTH, timeout=5)
    assert resp.status_code == 201
    emu.advance(0)
    assert receiver.on("/voice")[0].param("To") == "+15555550101"


def test_control_endpoints_need_credentials(emu):
    resp = requests.post(emu.url + "/emulator/incoming", json={"from": CALLER}, timeout=5)
    assert resp.status_code == 401
    assert resp.json()["code"] == 20003
    resp = requests.post(emu.url + "/emulator/incoming", json={"from": CALLER}, auth=(ACCOUNT_SID, "nope"), timeout=5)
    assert resp.status_code == 401
    assert emu.engine.all_calls() == []


def test_incoming_rejects_bad_input(emu):
    assert requests.post(emu.url + "/emulator/incoming", json={}, auth=AUTH, timeout=5).status_code == 400
    resp = requests.post(emu.url + "/emulator/incoming", json={"from": CALLER, "digits": "12x"}, auth=AUTH, timeout=5)
    assert resp.status_code == 400
    assert emu.engine.all_calls() == []


def test_transcript_json_tells_what_the_caller_heard(emu, receiver):
    receiver.answer("/voice", twiml("<Say voice='alice'>Welcome</Say><Dial>+15555550186</Dial><Hangup/>"))
    sid = requests.post(emu.url + "/emulator/incoming", json={"from": CALLER}, auth=AUTH, timeout=5).json()["call_sid"]
    emu.advance(3)
    resp = requests.get(emu.url + f"/emulator/calls/{sid}/transcript", auth=AUTH, timeout=5)
    assert resp.status_code == 200
    body = resp.json()
    assert body["status"] == "completed"
    lines = body["transcript"]
    say = next(line for line in lines if line["kind"] == "say")
    assert (say["text"], say["voice"], say["t"]) == ("Welcome", "alice", 0.0)
    assert any(line["kind"] == "dial" and line.get("target") == "+15555550186" for line in lines)
    assert any(line["kind"] == "dial" and line.get("dial_status") == "busy" for line in lines)
    assert lines[-1]["kind"] == "status" and lines[-1]["status"] == "completed"
    assert all("at" in line for line in lines)
    assert requests.get(emu.url + f"/emulator/calls/{sid}/transcript", timeout=5).status_code == 401


def test_live_digits_and_hangup_endpoints(emu, receiver):
    receiver.answer("/voice", twiml("<Gather action='/menu' numDigits='2' timeout='30'/>"))
    receiver.answer("/menu", twiml("<Pause length='60'/>"))
    sid = requests.post(emu.url + "/emulator/incoming", json={"from": CALLER}, auth=AUTH, timeout=5).json()["call_sid"]
    emu.advance(1)
    resp = requests.post(emu.url + f"/emulator/calls/{sid}/digits", json={"digits": "55"}, auth=AUTH, timeout=5)
    assert resp.status_code == 202
    emu.advance(0)
    assert receiver.on("/menu")[0].param("Digits") == "55"
    assert emu.client.calls(sid).fetch().status == "in-progress"
    resp = requests.post(emu.url + f"/emulator/calls/{sid}/hangup", auth=AUTH, timeout=5)
    assert resp.status_code == 202
    emu.advance(0)
    assert emu.client.calls(sid).fetch().status == "completed"


def test_a_caller_asked_to_stay_does_not_hang_up(emu, receiver):
    receiver.answer("/voice", twiml("<Enqueue>support</Enqueue>"))
    sid = emu.engine.incoming(from_=CALLER, hangup_after=7).sid
    emu.advance(3)
    response = requests.post(emu.url + f"/emulator/calls/{sid}/stay", auth=AUTH, timeout=5)
    assert response.status_code == 202
    emu.advance(60)
    assert emu.client.calls(sid).fetch().status == "in-progress"
    emu.engine.caller_hangs_up(sid)
    emu.advance(0)
    assert emu.client.calls(sid).fetch().status == "completed"
    ended = requests.post(emu.url + f"/emulator/calls/{sid}/stay", auth=AUTH, timeout=5)
    assert ended.status_code == 409


def test_console_pages_list_calls_and_escape_caller_names(emu, receiver):
    receiver.answer("/voice", twiml("<Say>Hi</Say>"))
    hostile = "<script>alert(1)</script>"
    sid = requests.post(emu.url + "/emulator/incoming", json={"from": CALLER, "caller_name": hostile}, auth=AUTH, timeout=5).json()["call_sid"]
    emu.advance(2)
    index = requests.get(emu.url + "/", timeout=5)
    assert index.status_code == 200
    assert sid in index.text
    assert hostile not in index.text and "&lt;script&gt;" in index.text
    page = requests.get(emu.url + f"/emulator/calls/{sid}", timeout=5)
    assert page.status_code == 200
    assert "Hi" in page.text and hostile not in page.text
    assert requests.get(emu.url + "/emulator/calls/CA" + "0" * 32, timeout=5).status_code == 404
    refused = requests.get(emu.url + "/", headers={"Host": "attacker.example"}, timeout=5)
    assert refused.status_code == 403


def test_loopback_host_names():
    for host in ("127.0.0.1", "127.0.0.1:8010", "localhost", "LOCALHOST:1", "[::1]", "[::1]:8010"):
        assert is_loopback_host(host), host
    for host in ("evil.example", "127.0.0.1.evil.example", "localhost.evil:80", "[::2]:80", "10.0.0.1"):
        assert not is_loopback_host(host), host


def test_cli_ring_posts_to_running_emulator(emu, receiver):
    receiver.answer("/voice", twiml("<Say>CLI call</Say>"))
    cli_app = create_app({"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "EMULATOR_URL": emu.url})
    result = cli_app.test_cli_runner().invoke(args=["ring", "--from", CALLER, "--caller-name", "Bob", "--digits", "1,2"])
    assert result.exit_code == 0, result.output
    sid = result.stdout.strip().splitlines()[0]
    emu.advance(1)
    assert emu.engine.get(sid).caller_name == "Bob"
    assert receiver.on("/voice")[0].param("CallerName") == "Bob"
    assert emu.said(sid) == ["CLI call"]


def test_cli_ring_reports_unreachable_emulator():
    cli_app = create_app({"EMULATOR_URL": "http://127.0.0.1:9"})
    result = cli_app.test_cli_runner().invoke(args=["ring", "--from", CALLER])
    assert result.exit_code != 0
    assert "Cannot reach the emulator" in result.output


def test_defaults_use_the_demo_account_and_documented_number(monkeypatch):
    for key in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_PHONE_NUMBER", "EMULATOR_VOICE_URL", "EMULATOR_STATUS_CALLBACK"):
        monkeypatch.delenv(key, raising=False)
    app = create_app({})
    s = app.extensions["emulator"].settings
    assert s.account_sid.startswith("AC") and len(s.account_sid) == 34
    assert s.phone_number == "+15555550100"
    assert s.voice_url == "http://127.0.0.1:5000/voice" and s.status_callback == "http://127.0.0.1:5000/status"
    assert s.ring_seconds == 1.0


def test_serve_in_thread_serves_any_wsgi_app_and_stops():
    app = Flask("tiny")
    app.add_url_rule("/ping", "ping", lambda: "pong")
    handle = serve_in_thread(app)
    assert handle.url.startswith("http://127.0.0.1:")
    assert requests.get(handle.url + "/ping", timeout=5).text == "pong"
    handle.stop()
    try:
        requests.get(handle.url + "/ping", timeout=1)
    except requests.ConnectionError:
        pass
    else:
        raise AssertionError("server still answering after stop()")


def test_real_clock_with_tiny_timings_runs_a_call(receiver):
    """The default (real) clock path, scaled down so it finishes in a fraction of a second."""
    from emulator_testkit import wait_for

    receiver.answer("/voice", twiml("<Say>Real time</Say>"))
    emu, handle = make_emulator(receiver, EMULATOR_CLOCK=None, EMULATOR_TIME_SCALE="0.01")
    try:
        call = emu.client.calls.create(to="+15555550111", from_=NUMBER, url=receiver.url + "/voice", status_callback=receiver.url + "/status")
        wait_for(lambda: receiver.statuses(call.sid) == [(0, "completed")], "the call to complete in real time")
        assert emu.client.calls(call.sid).fetch().status == "completed"
    finally:
        handle.stop()
        emu.engine.stop()


def test_incoming_caller_can_carry_forwarded_from_and_stir_verstat(emu, receiver):
    resp = requests.post(emu.url + "/emulator/incoming", json={"from": CALLER, "forwarded_from": "+15555550142",
                                                               "stir_verstat": "TN-Validation-Passed-A"}, auth=AUTH, timeout=5)
    assert resp.status_code == 201
    sid = resp.json()["call_sid"]
    emu.advance(0)
    (voice,) = receiver.on("/voice")
    assert (voice.param("ForwardedFrom"), voice.param("StirVerstat")) == ("+15555550142", "TN-Validation-Passed-A")
    call = emu.client.calls(sid).fetch()
    assert (call.forwarded_from, call.stir_verstat) == ("+15555550142", "TN-Validation-Passed-A")
    plain = requests.post(emu.url + "/emulator/incoming", json={"from": CALLER}, auth=AUTH, timeout=5).json()["call_sid"]
    emu.advance(0)
    assert "ForwardedFrom" not in receiver.on("/voice")[-1].params and emu.client.calls(plain).fetch().stir_verstat is None
    for bad in ({"forwarded_from": "not a number"}, {"stir_verstat": "Passed"}, {"speech": ["x" * 501]}, {"speech": [1]}):
        assert requests.post(emu.url + "/emulator/incoming", json={"from": CALLER, **bad}, auth=AUTH, timeout=5).status_code == 400, bad


def test_cli_ring_with_speech_forwarded_from_and_stir_verstat(emu, receiver):
    receiver.answer("/voice", twiml("<Gather input='speech' action='/heard'/>"))
    cli_app = create_app({"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "EMULATOR_URL": emu.url})
    result = cli_app.test_cli_runner().invoke(args=["ring", "--from", CALLER, "--speech", "sales|yes", "--forwarded-from", "+15555550142",
                                                    "--stir-verstat", "No-TN-Validation"])
    assert result.exit_code == 0, result.output
    emu.advance(2)
    (heard,) = receiver.on("/heard")
    assert (heard.param("SpeechResult"), heard.param("StirVerstat"), heard.param("ForwardedFrom")) == ("sales", "No-TN-Validation", "+15555550142")


def test_console_pages_have_the_panels_look_a_csp_and_no_scripts(emu, receiver):
    receiver.answer("/voice", twiml("<Record action='/done' maxLength='2'/>"))
    sid = requests.post(emu.url + "/emulator/incoming", json={"from": CALLER, "caller_name": "<b>Eve</b>"}, auth=AUTH, timeout=5).json()["call_sid"]
    emu.advance(1)
    for path in ("/", f"/emulator/calls/{sid}", "/webhooks", f"/webhooks?call_sid={sid}"):
        page = requests.get(emu.url + path, timeout=5)
        assert page.status_code == 200, path
        csp = page.headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "script-src" not in csp and "form-action 'self'" in csp
        assert "<script" not in page.text and " style=" not in page.text and "<style" not in page.text
        assert 'href="/emulator/static/panel.css"' in page.text and 'http-equiv="refresh"' in page.text
        assert "<b>Eve</b>" not in page.text
    stylesheet = requests.get(emu.url + "/emulator/static/panel.css", timeout=5)
    assert stylesheet.status_code == 200 and ".topbar" in stylesheet.text
    assert requests.get(emu.url + "/emulator/static/console.css", timeout=5).status_code == 200
    emu.advance(10)
    ended = requests.get(emu.url + f"/emulator/calls/{sid}", timeout=5)
    assert 'http-equiv="refresh"' not in ended.text  # an ended call no longer changes
    assert "<audio controls" in ended.text and "/Recordings/RE" in ended.text


def test_console_pages_through_calls_and_links_to_the_panel(receiver):
    emu, handle = make_emulator(receiver, EMULATOR_PANEL_URL="http://127.0.0.1:5000/")
    try:
        sids = [emu.engine.incoming(from_=CALLER).sid for _ in range(51)]
        first = requests.get(emu.url + "/", timeout=5).text
        assert sids[-1] in first and sids[0] not in first and 'rel="next"' in first
        second = requests.get(emu.url + "/?page=2", timeout=5).text
        assert sids[0] in second and sids[-1] not in second and 'rel="prev"' in second
        assert f'href="http://127.0.0.1:5000/admin/calls/{sids[0]}"' in second
        assert requests.get(emu.url + "/?page=99", timeout=5).status_code == 200
    finally:
        handle.stop()
        emu.engine.stop()


def test_console_bad_day_switch_and_replay_need_the_pages_token(emu, receiver):
    page = requests.get(emu.url + "/", timeout=5).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert "Chaos: <strong>off</strong>" in page
    refused = requests.post(emu.url + "/emulator/console/chaos", data={"preset": "bad-day"}, timeout=5, allow_redirects=False)
    assert refused.status_code == 400 and emu.engine.chaos.active is False
    resp = requests.post(emu.url + "/emulator/console/chaos", data={"preset": "bad-day", "csrf_token": token, "next": "/webhooks"},
                         timeout=5, allow_redirects=False)
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/webhooks")
    assert emu.engine.chaos.preset == "bad-day"
    assert "Chaos: <strong>bad-day: duplicate 10%" in requests.get(emu.url + "/", timeout=5).text
    off = requests.post(emu.url + "/emulator/console/chaos", data={"preset": "off", "csrf_token": token, "next": "https://evil.example/"},
                        timeout=5, allow_redirects=False)
    assert off.headers["Location"].endswith("/") and "evil" not in off.headers["Location"]
    assert emu.engine.chaos.active is False
    receiver.answer("/voice", twiml("<Say>Hi</Say>"))
    emu.engine.incoming(from_=CALLER)
    emu.advance(0)
    (sent,) = emu.engine.inspector.recent()
    assert requests.post(emu.url + f"/emulator/console/webhooks/{sent.id}/replay", timeout=5).status_code == 400
    replayed = requests.post(emu.url + f"/emulator/console/webhooks/{sent.id}/replay", data={"csrf_token": token}, timeout=5, allow_redirects=False)
    assert replayed.status_code == 303
    assert len(receiver.on("/voice")) == 2
