"""Twilio's Call Events resource (live) and Debugger webhook, through the official SDK and a receiver standing in for the app."""

from __future__ import annotations

import json
import socket
from datetime import datetime

import jsonschema
import pytest
import requests
from twilio.base.exceptions import TwilioException, TwilioRestException

from emulator_testkit import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    CALLER,
    NUMBER,
    assert_signed,
    make_emulator,
    openapi_to_jsonschema,
    twiml,
    wait_for,
)

AUTH = (ACCOUNT_SID, AUTH_TOKEN)


def dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/gone"


@pytest.fixture
def debugged(receiver):
    """The emulator with its Debugger webhook pointed at the receiver."""
    emu, handle = make_emulator(receiver, EMULATOR_DEBUGGER_URL=receiver.url + "/debugger")
    yield emu
    handle.stop()
    emu.engine.stop()


def test_call_events_list_every_request_for_the_call_at_once(emu, receiver, spec):
    receiver.answer("/voice", twiml("<Pause length='30'/>"))
    receiver.answer("/other", "broken", status=500, content_type="text/plain")
    call = emu.client.calls.create(to="+15555550111", from_=NUMBER, url=receiver.url + "/voice", status_callback=receiver.url + "/status",
                                   status_callback_event=["initiated", "answered"])
    emu.advance(2)
    emu.client.calls(call.sid).update(url=receiver.url + "/other", method="POST")
    emu.advance(2)
    events = emu.client.calls(call.sid).events.list()
    requests_made = [(e.request["method"], e.request["url"].rsplit("/", 1)[-1], e.response["response_code"]) for e in events]
    assert requests_made[0] == ("POST", "Calls.json", 201)
    assert sorted(requests_made[1:4]) == [("POST", "status", 200), ("POST", "status", 200), ("POST", "voice", 200)]
    assert requests_made[4:] == [("POST", f"{call.sid}.json", 200), ("POST", "other", 500), ("POST", "status", 200)]
    create = events[0]
    assert create.request["parameters"]["to"] == "+15555550111" and create.request["parameters"]["status_callback_event"] == "initiated answered"
    assert f'"sid": "{call.sid}"' in create.response["response_body"]  # an excerpt of our answer
    failed = events[5]
    assert failed.request["parameters"]["CallSid"] == call.sid
    assert (failed.response["response_body"], failed.response["content_type"]) == ("broken", "text/plain")
    assert failed.response["request_duration"] >= 0 and failed.response["date_created"].endswith("+0000")
    raw = requests.get(f"{emu.url}/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{call.sid}/Events.json", params={"PageSize": 2}, auth=AUTH, timeout=5)
    page = raw.json()
    listing = spec["paths"]["/2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}/Events.json"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    schema = openapi_to_jsonschema(listing, spec["components"]["schemas"])
    schema["required"] = sorted(listing["properties"])
    jsonschema.validate(page, schema)
    assert len(page["events"]) == 2 and page["next_page_uri"]
    assert len(list(emu.client.calls(call.sid).events.stream(page_size=2))) == len(events)
    with pytest.raises(TwilioException):
        emu.client.calls("CA" + "0" * 32).events.list()


def test_debugger_events_for_a_failing_app_url(debugged, receiver, validator):
    emu = debugged
    receiver.answer("/voice", "boom", status=500, content_type="text/plain")
    call = emu.client.calls.create(to="+15555550111", from_=NUMBER, url=receiver.url + "/voice")
    emu.advance(2)
    (event,) = receiver.on("/debugger")
    p = event.params
    assert p["Sid"].startswith("NO") and len(p["Sid"]) == 34 and p["AccountSid"] == ACCOUNT_SID
    assert (p["Level"], p["PayloadType"]) == ("Error", "application/json")
    assert datetime.strptime(p["Timestamp"], "%Y-%m-%dT%H:%M:%SZ").year == 2026
    payload = json.loads(p["Payload"])
    assert (payload["resource_sid"], payload["error_code"]) == (call.sid, "11200")
    assert payload["more_info"]["docs"] == "https://www.twilio.com/docs/errors/11200"
    assert payload["webhook"]["request"]["url"] == receiver.url + "/voice"
    assert payload["webhook"]["request"]["parameters"]["CallSid"] == call.sid
    assert (payload["webhook"]["response"]["status_code"], payload["webhook"]["response"]["body"]) == (500, "boom")
    assert_signed(event, validator)


def test_debugger_errors_and_warnings_from_twiml_and_callbacks(debugged, receiver):
    emu = debugged
    receiver.answer("/voice", twiml("<Pause length='soon'/><Redirect>/broken</Redirect>"))
    receiver.answer("/broken", "<Response><Say>unclosed</Response>")
    receiver.answer("/status", "down", status=503, content_type="text/plain")
    sid = emu.engine.incoming(from_=CALLER).sid
    emu.advance(5)
    events = [(e.param("Level"), json.loads(e.param("Payload"))) for e in receiver.on("/debugger")]
    codes = [(level, payload["error_code"]) for level, payload in events]
    assert codes == [("Warning", "13910"), ("Error", "12100"), ("Warning", "15003")]  # 15003 is a warning on Twilio too
    assert "webhook" not in events[0][1]
    assert events[1][1]["webhook"]["request"]["url"] == receiver.url + "/broken"
    assert events[2][1]["webhook"]["request"]["url"] == receiver.url + "/status"
    assert all(payload["resource_sid"] == sid for _, payload in events)


def test_a_redirect_to_a_dead_url_reaches_the_debugger_within_a_second_or_two(receiver):
    """The real clock: an operator's redirect to a dead URL shows up in the app's Debugger webhook at once."""
    receiver.answer("/voice", twiml("<Pause length='60'/>"))
    emu, handle = make_emulator(receiver, EMULATOR_CLOCK=None, EMULATOR_RING_SECONDS="0.05",
                                EMULATOR_DEBUGGER_URL=receiver.url + "/debugger")
    try:
        call = emu.client.calls.create(to="+15555550111", from_=NUMBER, url=receiver.url + "/voice")
        wait_for(lambda: emu.engine.get(call.sid).status == "in-progress", "the call to be answered")
        emu.client.calls(call.sid).update(url=dead_url())
        wait_for(lambda: receiver.on("/debugger"), "the Debugger event", timeout=2)
        payload = json.loads(receiver.on("/debugger")[0].param("Payload"))
        assert (payload["error_code"], payload["webhook"]["response"]["status_code"]) == ("11205", None)
        assert "ConnectionRefused" in payload["webhook"]["response"]["error"] or "NewConnectionError" in payload["webhook"]["response"]["error"]
    finally:
        handle.stop()
        emu.engine.stop()


def test_without_a_debugger_url_nothing_is_posted(emu, receiver):
    receiver.answer("/voice", "boom", status=500, content_type="text/plain")
    emu.client.calls.create(to="+15555550111", from_=NUMBER, url=receiver.url + "/voice")
    emu.advance(2)
    assert receiver.on("/debugger") == []
    with pytest.raises(TwilioRestException):
        emu.client.calls("CA" + "1" * 32).fetch()


def test_notifications_list_a_calls_errors_and_warnings(debugged, receiver, spec):
    emu = debugged
    receiver.answer("/voice", twiml("<Pause length='soon'/><Redirect>/broken</Redirect>"))
    receiver.answer("/broken", "nope", status=404, content_type="text/plain")
    sid = emu.engine.incoming(from_=CALLER).sid
    emu.advance(3)
    notes = emu.client.calls(sid).notifications.list()
    assert [(n.error_code, n.log) for n in notes] == [("11200", "0"), ("13910", "1")]  # newest first
    assert notes[0].more_info == "https://www.twilio.com/docs/errors/11200" and "ErrorCode=11200" in notes[0].message_text
    assert [n.error_code for n in emu.client.calls(sid).notifications.list(log=1)] == ["13910"]
    fetched = emu.client.calls(sid).notifications(notes[0].sid).fetch()
    assert (fetched.sid, fetched.call_sid, fetched.response_body) == (notes[0].sid, sid, "")
    # The Debugger event of an error has the SID of its Notification.
    assert {e.param("Sid") for e in receiver.on("/debugger")} == {n.sid for n in notes}
    body = requests.get(f"{emu.url}/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{sid}/Notifications.json", auth=AUTH, timeout=5).json()
    for item in body["notifications"]:
        jsonschema.validate(item, openapi_to_jsonschema(spec["components"]["schemas"]["api.v2010.account.call.call_notification"],
                                                        spec["components"]["schemas"]))
    with pytest.raises(TwilioRestException) as err:
        emu.client.calls(sid).notifications("NO" + "0" * 32).fetch()
    assert err.value.status == 404
