"""See the wire: both directions recorded (webhooks Twilio sent, REST requests the SDK made),
Twilio's Debugger webhook, and a call's journey with its SDK and curl text, on both engines."""
from __future__ import annotations

import json
import shlex
import subprocess
import time
from datetime import UTC, datetime, timedelta

import requests
from twilio.request_validator import RequestValidator

import wire_log
from models import DebuggerEvent, WireEntry, db
from support import ACCOUNT_SID, ADMIN_PASSWORD, AUTH_TOKEN, inbound_params, new_call_sid

API_AUTH = ("admin", ADMIN_PASSWORD)


def debugger_params(sid: str, call_sid: str, code: int = 11200) -> dict:
    """A Debugger event as Twilio's Debugger webhook posts it."""
    return {
        "Sid": "NO" + sid, "AccountSid": ACCOUNT_SID, "Level": "Error",
        "Timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "PayloadType": "application/json",
        "Payload": json.dumps({
            "resource_sid": call_sid, "service_sid": None, "error_code": str(code),
            "more_info": {"msg": "HTTP retrieval failure", "url": "http://127.0.0.1:9/dead"},
            "webhook": {"request": {"url": "http://127.0.0.1:9/dead", "method": "POST"}},
        }),
    }


def entries(app, **filters) -> list[WireEntry]:
    with app.app_context():
        wire_log.flush()
        return db.session.scalars(db.select(WireEntry).filter_by(**filters)
                                  .order_by(WireEntry.id)).all()


def test_every_webhook_is_logged_with_our_answer_refused_ones_too(app, twilio, client):
    sid = new_call_sid()
    assert twilio.post("/voice", inbound_params(sid)).status_code == 200
    assert twilio.post("/status", inbound_params(sid, "completed", CallDuration="7")).status_code == 204
    forged = client.post("/voice", data=inbound_params(new_call_sid()),
                         headers={"X-Twilio-Signature": "forged"})
    assert forged.status_code == 403
    assert twilio.post("/status", {"CallSid": "nope", "CallStatus": "completed"}).status_code == 400

    voice, status = entries(app, call_sid=sid)
    assert (voice.kind, voice.method, voice.url, voice.signature, voice.status) == (
        "webhook", "POST", "http://localhost/voice", "valid", 200)
    assert "<Say>" in voice.response and voice.parameters["CallSid"] == sid
    assert voice.duration_ms > 0
    assert (status.kind, status.status, status.parameters["CallDuration"]) == (
        "status_callback", 204, "7")
    refused = entries(app, signature="invalid")
    assert [(e.status, e.call_sid) for e in refused] == [(403, None)]  # tied to no call
    bad = [e for e in entries(app, kind="status_callback") if e.status == 400]
    assert len(bad) == 1 and "CallSid must be" in bad[0].response
    # A CallSid too long for its column is logged, tied to no call, with the rest of the batch.
    assert twilio.post("/voice", inbound_params("CA" + "f" * 40)).status_code == 400
    assert twilio.post("/voice", inbound_params(sid)).status_code == 200
    assert [e.status for e in entries(app, kind="webhook")][-2:] == [400, 200]
    assert entries(app, kind="webhook")[-2].call_sid is None


def test_a_debugger_event_is_signed_stored_once_and_tied_to_its_call(app, twilio, client):
    call_sid = new_call_sid()
    twilio.post("/voice", inbound_params(call_sid))
    params = debugger_params("a" * 32, call_sid)
    assert client.post("/debugger", data=params).status_code == 403  # unsigned
    for _ in range(2):  # Twilio retries: stored once
        assert twilio.post("/debugger", params).status_code == 204
    with app.app_context():
        events = db.session.scalars(db.select(DebuggerEvent)).all()
    assert [(e.call_sid, e.error_code, e.level) for e in events] == [(call_sid, 11200, "Error")]
    for bad, message in (({**params, "Sid": "x"}, b"Sid must be NO"),
                         ({**params, "Payload": "{not json"}, b"Payload must be JSON"),
                         ({**params, "Level": "Panic"}, b"Level must be one of")):
        answer = twilio.post("/debugger", bad)
        assert answer.status_code == 400 and message in answer.data


def test_the_journey_api_orders_every_step_and_explains_errors(app, twilio, client):
    sid = new_call_sid()
    twilio.post("/voice", inbound_params(sid))
    twilio.post("/voice/hold", inbound_params(sid, "in-progress"))
    twilio.post("/voice/hold", inbound_params(sid, "in-progress"))
    twilio.post("/debugger", debugger_params("b" * 32, sid))
    twilio.post("/status", inbound_params(sid, "completed", CallDuration="9"))
    answer = client.get(f"/api/calls/{sid}/journey", auth=API_AUTH)
    assert answer.status_code == 200
    steps = answer.get_json()["entries"]
    assert [step["kind"] for step in steps] == [
        "webhook", "webhook", "debugger", "status_callback"]
    assert steps[1]["repeats"] == 2  # two laps of the hold loop: one step
    assert steps[0]["response"]["status"] == 200 and "<Say>" in steps[0]["response"]["body"]
    assert steps[2]["error_code"] == 11200
    assert steps[2]["explanation"]["link"] == "https://www.twilio.com/docs/api/errors/11200"
    assert steps[2]["explanation"]["cause"] and steps[2]["explanation"]["fix"]
    assert [s["at"] for s in steps] == sorted(s["at"] for s in steps)
    assert client.get(f"/api/calls/{new_call_sid()}/journey", auth=API_AUTH).status_code == 404
    assert client.get(f"/api/calls/{sid}/journey").status_code == 401


def test_a_webhooks_curl_is_signed_afresh_and_replays(app, twilio, client):
    sid = new_call_sid()
    twilio.post("/voice", inbound_params(sid, CallerName="O'Brien \"$HOME\" `x`"))
    steps = client.get(f"/api/calls/{sid}/journey", auth=API_AUTH).get_json()["entries"]
    command = shlex.split(steps[0]["curl"].replace("\\\n", " "))
    assert command[:3] == ["curl", "-X", "POST"]
    url = command[3]
    signature = command[command.index("-H") + 1].removeprefix("X-Twilio-Signature: ")
    form = dict(arg.split("=", 1) for arg in command[command.index("-H") + 2:][1::2])
    assert form["CallerName"] == "O'Brien \"$HOME\" `x`"  # quoted for the shell, not expanded
    assert RequestValidator(AUTH_TOKEN).validate(url, form, signature)
    assert twilio.client.post("/voice", data=form,
                              headers={"X-Twilio-Signature": signature}).status_code == 200


def test_an_operator_action_shows_the_sdk_call_its_curl_and_twilios_answer(app, wired):
    response = requests.post(f"{wired.emulator_url}/emulator/incoming",
                             json={"from": "+15555550123"}, auth=(ACCOUNT_SID, AUTH_TOKEN),
                             timeout=5)
    sid = response.json()["call_sid"]
    wired.engine.advance(0)
    twiml = "<Response><Say>Hello there</Say></Response>"
    answer = requests.post(f"{wired.app_url}/api/calls/{sid}/twiml", json={"twiml": twiml},
                           auth=API_AUTH, timeout=5)
    assert answer.status_code == 200, answer.text
    steps = requests.get(f"{wired.app_url}/api/calls/{sid}/journey", auth=API_AUTH,
                         timeout=5).json()["entries"]
    action = next(step for step in steps if step["kind"] == "action")
    assert action["sdk_code"].startswith(f'client.calls("{sid}").update(twiml="<?xml')
    assert "Hello there" in action["sdk_code"]
    assert action["request"]["method"] == "POST" and action["response"]["status"] == 200
    assert action["response"]["body"]["sid"] == sid  # Twilio's JSON answer
    assert '-u "$TWILIO_ACCOUNT_SID:$TWILIO_AUTH_TOKEN"' in action["curl"]
    assert "/Accounts/$TWILIO_ACCOUNT_SID/Calls/" in action["curl"]
    assert AUTH_TOKEN not in json.dumps(steps)  # never the credentials
    with app.app_context():
        wire_log.flush()
        rest = db.session.scalars(db.select(WireEntry).filter_by(kind="rest")).all()
    assert [e.action_id is not None for e in rest] == [True]


def test_in_demo_mode_the_journey_shows_what_twilio_saw_through_its_call_events(app, wired):
    """The emulator's Call Events, read through the SDK: our webhooks get Twilio's side, a
    request that never reached our webhooks gets its own entry, in order, and reading them
    on every poll adds nothing to the wire log."""
    response = requests.post(f"{wired.emulator_url}/emulator/incoming",
                             json={"from": "+15555550125"}, auth=(ACCOUNT_SID, AUTH_TOKEN),
                             timeout=5)
    sid = response.json()["call_sid"]
    wired.engine.advance(0)
    dead = f"{wired.app_url}/no-twiml-here"  # answers 404
    answer = requests.post(f"{wired.app_url}/api/calls/{sid}/redirect", json={"url": dead},
                           auth=API_AUTH, timeout=5)
    assert answer.status_code == 200, answer.text
    wired.engine.advance(0)

    def journey():
        return requests.get(f"{wired.app_url}/api/calls/{sid}/journey", auth=API_AUTH,
                            timeout=5).json()["entries"]

    steps = journey()
    voice = next(s for s in steps if s["kind"] == "webhook" and s["summary"].endswith("/voice → 200"))
    assert voice["twilio"]["response_code"] == 200
    assert isinstance(voice["twilio"]["request_duration"], int)
    action = next(s for s in steps if s["kind"] == "action")
    assert action["twilio"]["response_code"] == 200  # Twilio's record of the update, matched
    unseen = [s for s in steps if s.get("source") == "twilio_events"]
    assert [(s["kind"], s["request"]["url"], s["response"]["status"]) for s in unseen] == [
        ("webhook", dead, 404)]
    assert unseen[0]["request"]["params"]["CallSid"] == sid
    assert steps.index(action) < steps.index(unseen[0])  # after the redirect that caused it
    assert steps == journey()  # a second read finds the same steps, none added
    with app.app_context():
        wire_log.flush()
        urls = db.session.scalars(db.select(WireEntry.url)).all()
    assert not [url for url in urls if "Events" in url]


def twilio_event(url: str, code: int | None, **params) -> dict:
    """One of Twilio's Call Events, shaped as the spec's call_event."""
    return {"request": {"method": "POST", "url": url, "parameters": params},
            "response": {"response_code": code, "request_duration": 5,
                         "date_created": "Mon, 05 Jan 2026 09:00:00 +0000"}}


def test_call_events_we_may_not_have_written_yet_wait_and_the_others_show(app, twilio):
    """Another worker's wire log writes within FLUSH_SECONDS: a 2xx webhook of ours missing
    from the log is on its way, not lost. What never reached our webhooks shows, in order."""
    from journey import journey
    sid = new_call_sid()
    params = inbound_params(sid)
    twilio.post("/voice", params)
    events = [
        twilio_event("http://localhost/voice", 200, **params),  # logged: matched
        twilio_event("http://localhost/voice/hold", 200, CallSid=sid),  # not yet logged
        twilio_event("https://elsewhere.example/twiml", 200, CallSid=sid),
        twilio_event("http://localhost/voice", 403, CallSid=sid),  # refused: tied to no call
        twilio_event("https://dead.example/", None, CallSid=sid),
    ]
    with app.test_request_context():
        steps = journey(sid, AUTH_TOKEN, twilio_events=events)
    assert [(s.kind, s.summary) for s in steps] == [
        ("webhook", "Twilio requested POST /voice → 200"),
        ("webhook", "Twilio requested POST https://elsewhere.example/twiml → 200"
                    " (in Twilio's Call Events, not in our log)"),
        ("webhook", "Twilio requested POST http://localhost/voice → 403"
                    " (in Twilio's Call Events, not in our log)"),
        ("webhook", "Twilio requested POST https://dead.example/ → no answer"
                    " (in Twilio's Call Events, not in our log)"),
    ]
    assert steps[0].twilio["response_code"] == 200
    assert [s.failed for s in steps] == [False, False, True, True]


def test_the_curl_of_an_action_runs_against_twilio(app, wired):
    """The curl text is a working command: run it (against the emulator) with the
    credentials in the environment, as the page says."""
    response = requests.post(f"{wired.emulator_url}/emulator/incoming",
                             json={"from": "+15555550124"}, auth=(ACCOUNT_SID, AUTH_TOKEN),
                             timeout=5)
    sid = response.json()["call_sid"]
    wired.engine.advance(0)
    requests.post(f"{wired.app_url}/api/calls/{sid}/hangup", json={}, auth=API_AUTH, timeout=5)
    steps = requests.get(f"{wired.app_url}/api/calls/{sid}/journey", auth=API_AUTH,
                         timeout=5).json()["entries"]
    action = next(step for step in steps if step["kind"] == "action")
    assert action["sdk_code"] == f'client.calls("{sid}").update(status="completed")'
    result = subprocess.run(["bash", "-c", action["curl"] + " --silent"], capture_output=True,
                            text=True, timeout=30, env={"PATH": "/usr/bin:/bin",
                                                        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
                                                        "TWILIO_AUTH_TOKEN": AUTH_TOKEN})
    # It reached the call, authenticated: Twilio's answer to hanging up a call already ended.
    assert json.loads(result.stdout)["code"] == 21220, result.stdout + result.stderr


def test_the_wire_log_keeps_request_log_days_and_deletes_older_entries(make_app, database_url):
    app = make_app(database_url, REQUEST_LOG_DAYS=7)
    with app.app_context():
        log = wire_log.log()
        for age in (8, 6, 0):  # days ago
            log.add({"at": time.time() - timedelta(days=age).total_seconds(), "kind": "rest",
                     "method": "GET",
                     "url": f"https://api.twilio.com/{age}", "params": ""})
        log.flush()
        log.prune()
        kept = db.session.scalars(db.select(WireEntry.url).order_by(WireEntry.id)).all()
    assert kept == ["https://api.twilio.com/6", "https://api.twilio.com/0"]
