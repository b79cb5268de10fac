"""The app and the local Twilio emulator together, over real HTTP on loopback."""
from __future__ import annotations

import pytest
import requests

from emulator import ManualClock
from support import ACCOUNT_SID, ADMIN_PASSWORD, AUTH_TOKEN, OUR_NUMBER, wire

API_AUTH = ("admin", ADMIN_PASSWORD)


@pytest.fixture
def wired(app):
    """The app and the emulator on loopback, wired to each other; the emulator's clock is manual."""
    stack = wire(app, EMULATOR_CLOCK=ManualClock())
    yield stack.app_url, stack.emulator_url, stack.engine, stack.sdk()
    stack.stop()


def recorded(app_url: str, sid: str) -> dict:
    """The call as the app recorded it (its JSON API)."""
    response = requests.get(f"{app_url}/api/calls/{sid}", auth=API_AUTH, timeout=5)
    assert response.status_code == 200, response.text
    return response.json()


def test_inbound_call_is_live_once_answered_then_ends(wired):
    app_url, emulator_url, engine, client = wired
    response = requests.post(f"{emulator_url}/emulator/incoming", json={
        "from": "+15555550123", "caller_name": "Ada Lovelace"}, auth=(ACCOUNT_SID, AUTH_TOKEN),
        timeout=5)
    assert response.status_code == 201
    sid = response.json()["call_sid"]
    engine.advance(0)

    call = recorded(app_url, sid)
    # Twilio says "ringing" on the first webhook and nothing more until the end (reference
    # §4.1); the app shows the call live because it answered it.
    assert call["status"] == "in-progress"
    assert (call["from"], call["to"], call["direction"]) == ("+15555550123", OUR_NUMBER, "inbound")
    assert call["caller_name"] == "Ada Lovelace"
    assert client.calls(sid).fetch().status == "in-progress"

    engine.advance(30)  # the caller holds: the hold loop keeps fetching /voice/hold
    client.calls(sid).update(status="completed")
    engine.advance(1)

    call = recorded(app_url, sid)
    assert call["status"] == "completed"
    assert call["duration"] is not None and call["duration"] >= 30
    assert [(e["source"], e["status"], e["sequence_number"]) for e in call["events"]] == [
        ("voice", "in-progress", None), ("callback", "completed", 0)]


def test_outbound_call_callbacks_arrive_in_order(wired):
    app_url, _, engine, client = wired
    call = client.calls.create(
        to="+15555550142", from_=OUR_NUMBER, url=f"{app_url}/voice",
        status_callback=f"{app_url}/status",
        status_callback_event=["initiated", "ringing", "answered", "completed"],
    )
    assert call.status == "queued"
    for _ in range(5):
        engine.advance(1)
    assert recorded(app_url, call.sid)["status"] == "in-progress"
    client.calls(call.sid).update(status="completed")
    engine.advance(1)

    history = recorded(app_url, call.sid)
    assert history["status"] == "completed"
    assert history["direction"] == "outbound-api"
    callbacks = [(e["status"], e["sequence_number"]) for e in history["events"]
                 if e["source"] == "callback"]
    assert callbacks == [("initiated", 0), ("ringing", 1), ("in-progress", 2), ("completed", 3)]


def test_busy_scenario_number_ends_busy(wired):
    app_url, _, engine, client = wired
    call = client.calls.create(to="+15555550186", from_=OUR_NUMBER, url=f"{app_url}/voice",
                               status_callback=f"{app_url}/status")
    for _ in range(5):
        engine.advance(1)
    history = recorded(app_url, call.sid)
    assert history["status"] == "busy"
    # Without StatusCallbackEvent only the end is sent.
    assert [e["status"] for e in history["events"]] == ["busy"]
