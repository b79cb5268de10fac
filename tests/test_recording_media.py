"""A recording's audio, fetched from Twilio (the emulator) through the panel and the API: the
page never sees Twilio's URL or credentials; bounded in size; clear errors."""
from __future__ import annotations

import base64

import pytest

from emulator import ManualClock
from support import ADMIN_PASSWORD, Twilio, inbound_params, log_in, new_call_sid, wire

AUTH = {"Authorization": "Basic " + base64.b64encode(f"admin:{ADMIN_PASSWORD}".encode()).decode()}


@pytest.fixture
def wired(app):
    stack = wire(app, EMULATOR_CLOCK=ManualClock())
    yield stack
    stack.stop()


def test_a_recording_twilio_does_not_have_is_a_404_with_a_message(wired, client):
    """We were told of a recording (a signed webhook), but Twilio has no such file."""
    twilio = Twilio(client, base_url=wired.app_url)  # signed for PUBLIC_URL
    sid, recording_sid = new_call_sid(), "RE" + "4" * 32
    twilio.post("/voice", inbound_params(sid))
    response = twilio.post("/voice/recorded", inbound_params(
        sid, "in-progress", RecordingSid=recording_sid, RecordingDuration="3",
        RecordingUrl=f"{wired.emulator_url}/2010-04-01/Recordings/{recording_sid}"))
    assert response.status_code == 200
    log_in(client)
    response = client.get(f"/admin/recordings/{recording_sid}.mp3")
    assert response.status_code == 404
    assert "Twilio could not give the recording" in response.get_data(as_text=True)
    response = client.get(f"/api/recordings/{recording_sid}.mp3", headers=AUTH)
    assert response.status_code == 404
    assert "Twilio could not give the recording" in response.get_json()["message"]


def test_twilio_out_of_reach_is_a_502_with_a_message(make_app, database_url):
    app = make_app(database_url, TWILIO_API_BASE_URL="http://127.0.0.1:9")
    twilio, client = Twilio(app.test_client()), app.test_client()
    sid, recording_sid = new_call_sid(), "RE" + "5" * 32
    twilio.post("/voice", inbound_params(sid))
    twilio.post("/voice/recorded", inbound_params(sid, "in-progress", RecordingSid=recording_sid))
    log_in(client)
    response = client.get(f"/admin/recordings/{recording_sid}.wav")
    assert response.status_code == 502
    assert "Could not connect to Twilio" in response.get_data(as_text=True)


@pytest.mark.parametrize("path", ["RE" + "6" * 32 + ".mp3", "RE" + "6" * 32 + ".ogg",
                                  "RE123.mp3", "CA" + "6" * 32 + ".mp3"])
def test_only_recordings_we_have_are_served(client, path):
    log_in(client)
    response = client.get(f"/admin/recordings/{path}")
    assert response.status_code == 404
    assert "recording" in response.get_data(as_text=True).lower()


def test_recordings_need_a_login_or_http_basic(client):
    path = "RE" + "7" * 32 + ".mp3"
    response = client.get(f"/admin/recordings/{path}")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert client.get(f"/api/recordings/{path}").status_code == 401
