"""The app and the local Twilio emulator together, over real HTTP on loopback."""
from __future__ import annotations

import pytest
import requests
from twilio.rest import Client

from app import create_app
from emulator import ManualClock
from emulator import create_app as create_emulator
from emulator.server import serve_in_thread
from support import ACCOUNT_SID, ADMIN_PASSWORD, AUTH_TOKEN, OUR_NUMBER

API_AUTH = ("admin", ADMIN_PASSWORD)


@pytest.fixture
def wired(tmp_path):
    """The app and the emulator on loopback, wired to each other; the emulator's clock is manual."""
    app = create_app({
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'e2e.db'}",
        "SECRET_KEY": "test", "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_PHONE_NUMBER": OUR_NUMBER, "TWILIO_VALIDATE_SIGNATURES": True,
        "ADMIN_PASSWORD": ADMIN_PASSWORD, "PUBLIC_URL": "",
    })
    app_server = serve_in_thread(app)
    clock = ManualClock()
    emulator = create_emulator({
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_PHONE_NUMBER": OUR_NUMBER, "EMULATOR_CLOCK": clock,
        "EMULATOR_VOICE_URL": app_server.url + "/voice",
        "EMULATOR_STATUS_CALLBACK": app_server.url + "/status",
        "EMULATOR_INBOUND_HANGUP_AFTER": "0",
    })
    emulator_server = serve_in_thread(emulator)
    app.config["TWILIO_API_BASE_URL"] = emulator_server.url
    client = Client(ACCOUNT_SID, AUTH_TOKEN)
    client.api.base_url = emulator_server.url
    engine = emulator.extensions["emulator"]
    yield app_server.url, emulator_server.url, engine, client
    engine.stop()
    emulator_server.stop()
    app_server.stop()


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
