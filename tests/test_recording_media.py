"""A recording's audio, fetched from Twilio (the emulator) through the panel and the API: the
page never sees Twilio's URL or credentials; bounded in size; clear errors."""
from __future__ import annotations

import base64

import pytest
import requests

import twiml
from support import ADMIN_PASSWORD, Twilio, inbound_params, log_in, new_call_sid

AUTH = {"Authorization": "Basic " + base64.b64encode(f"admin:{ADMIN_PASSWORD}".encode()).decode()}


def leave_a_voicemail(wired, client) -> tuple[str, dict]:
    """An inbound caller gets the voicemail preset and speaks; returns the CallSid and the
    recording as the API shows it."""
    call = wired.engine.incoming(from_="+15555550181", hangup_after=0)
    wired.engine.advance(0.1)
    voicemail = next(p for p in twiml.presets(wired.app.config["HOLD_MUSIC_URL"])
                     if p.key == "voicemail")
    response = client.post(f"/api/calls/{call.sid}/twiml", json={"twiml": voicemail.twiml},
                           headers=AUTH)
    assert response.status_code == 200, response.get_json()
    for _ in range(15):  # the prompt, the caller speaking, the silence that ends it
        wired.engine.advance(1)
    recorded = client.get(f"/api/calls/{call.sid}", headers=AUTH).get_json()
    assert len(recorded["recordings"]) == 1, recorded
    return call.sid, recorded["recordings"][0]


def twilio_media(wired, recording_sid: str, fmt: str) -> requests.Response:
    """The audio as Twilio (the emulator) serves it, with the account's credentials."""
    config = wired.app.config
    return requests.get(
        f"{wired.emulator_url}/2010-04-01/Accounts/{config['TWILIO_ACCOUNT_SID']}"
        f"/Recordings/{recording_sid}.{fmt}",
        auth=(config["TWILIO_ACCOUNT_SID"], config["TWILIO_AUTH_TOKEN"]), timeout=5)


def test_a_voicemail_is_played_through_the_panel_and_the_api(wired, client):
    """Needs the emulator's recording media and its recording status callback."""
    sid, recording = leave_a_voicemail(wired, client)
    assert recording["status"] == "completed"  # the recording status callback came
    assert recording["duration"] is not None
    log_in(client)
    for fmt, kind in (("mp3", "audio/mpeg"), ("wav", "audio/")):
        twilio = twilio_media(wired, recording["sid"], fmt)
        assert twilio.status_code == 200
        ours = client.get(f"/admin/recordings/{recording['sid']}.{fmt}")
        assert ours.status_code == 200
        assert ours.mimetype.startswith(kind)
        assert ours.data == twilio.content and len(ours.data) > 0
    api = client.get(recording["media_url"].replace("http://localhost", ""), headers=AUTH)
    assert api.status_code == 200 and api.mimetype == "audio/mpeg"


def test_a_recording_larger_than_the_limit_is_refused(wired, client):
    """Needs the emulator's recording media."""
    sid, recording = leave_a_voicemail(wired, client)
    wired.app.config["RECORDING_MAX_BYTES"] = 16
    log_in(client)
    response = client.get(f"/admin/recordings/{recording['sid']}.wav")
    assert response.status_code == 502
    assert "the panel plays at most 16 (RECORDING_MAX_BYTES)" in response.get_data(as_text=True)


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


def test_words_said_at_a_speech_gather_are_kept(wired, client):
    """Needs the emulator's speech <Gather> (the caller's scripted words)."""
    config = wired.app.config
    response = requests.post(f"{wired.emulator_url}/emulator/incoming", json={
        "from": "+15555550182", "hangup_after": 0, "speech": ["I would like to pay my bill"]},
        auth=(config["TWILIO_ACCOUNT_SID"], config["TWILIO_AUTH_TOKEN"]), timeout=5)
    assert response.status_code == 201, response.text
    sid = response.json()["call_sid"]
    wired.engine.advance(0.1)
    ask = ('<Response><Gather input="speech" action="/voice/gathered">'
           "<Say>How can we help?</Say></Gather></Response>")
    assert client.post(f"/api/calls/{sid}/twiml", json={"twiml": ask}, headers=AUTH
                       ).status_code == 200
    for _ in range(5):
        wired.engine.advance(1)
    [answer] = client.get(f"/api/calls/{sid}", headers=AUTH).get_json()["gathered"]
    assert (answer["digits"], answer["speech_result"]) == (None, "I would like to pay my bill")
    assert 0.0 <= answer["confidence"] <= 1.0
    heard = [line["text"] for line in wired.engine.get(sid).transcript]
    assert "Thank you for your answer. Goodbye." in heard
