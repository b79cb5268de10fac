"""What the caller did: <Record> actions, recording status callbacks and <Gather> answers are
kept, once each, in any order, and shown by the API and the call page."""
from __future__ import annotations

import secrets
import xml.etree.ElementTree as ET

import pytest

from models import Call, CallRecording, GatherResult, db
from support import ACCOUNT_SID, ADMIN_PASSWORD, inbound_params, log_in, new_call_sid

AUTH = ("admin", ADMIN_PASSWORD)


def new_recording_sid() -> str:
    return "RE" + secrets.token_hex(16)


def recording_url(recording_sid: str) -> str:
    return f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{recording_sid}"


def record_action(sid: str, recording_sid: str, duration: str = "7", **extra) -> dict:
    """The <Record> action request Twilio sends once the caller has spoken."""
    return inbound_params(sid, "in-progress", RecordingSid=recording_sid,
                          RecordingUrl=recording_url(recording_sid),
                          RecordingDuration=duration, Digits="#", **extra)


def recording_callback(sid: str, recording_sid: str, status: str = "completed",
                       duration: str = "7", **extra) -> dict:
    """A recording status callback (recordingStatusCallback): no call status in it."""
    params = {"AccountSid": ACCOUNT_SID, "CallSid": sid, "RecordingSid": recording_sid,
              "RecordingUrl": recording_url(recording_sid), "RecordingStatus": status,
              "RecordingDuration": duration, "RecordingChannels": "1",
              "RecordingSource": "RecordVerb",
              "RecordingStartTime": "Mon, 23 Nov 2026 09:53:19 +0000"}
    params.update(extra)
    return params


def stored(app, model, sid: str):
    with app.app_context():
        return db.session.scalars(db.select(model).where(model.call_sid == sid)
                                  .order_by(model.id)).all()


def a_live_call(twilio) -> str:
    sid = new_call_sid()
    assert twilio.post("/voice", inbound_params(sid)).status_code == 200
    return sid


def test_a_recording_is_kept_once_however_often_twilio_retries(app, twilio, client):
    sid, recording_sid = a_live_call(twilio), new_recording_sid()
    for _ in range(3):
        response = twilio.post("/voice/recorded", record_action(sid, recording_sid))
        assert response.status_code == 200
        assert ET.fromstring(response.data).find("Say").text.startswith("Your message has been")
    [recording] = stored(app, CallRecording, sid)
    assert (recording.recording_sid, recording.duration) == (recording_sid, 7)
    assert recording.url == recording_url(recording_sid)
    assert recording.status is None  # the status callback has not come yet

    call = client.get(f"/api/calls/{sid}", auth=AUTH).get_json()
    [shown] = call["recordings"]
    assert (shown["sid"], shown["url"], shown["duration"]) == (recording_sid, recording.url, 7)
    assert shown["received_at"].endswith("Z")
    assert shown["media_url"] == f"http://localhost/api/recordings/{recording_sid}.mp3"


@pytest.mark.parametrize("order", [("action", "callback"), ("callback", "action"),
                                   ("action", "callback", "action", "callback")])
def test_the_action_and_the_status_callback_agree_in_any_order(app, twilio, order):
    """The status callback's word is final: a late or retried action changes nothing."""
    sid, recording_sid = a_live_call(twilio), new_recording_sid()
    for kind in order:
        if kind == "action":
            response = twilio.post("/voice/recorded", record_action(sid, recording_sid, "6"))
            assert response.status_code == 200
        else:
            response = twilio.post("/voice/recording-status",
                                   recording_callback(sid, recording_sid, duration="7"))
            assert response.status_code == 204
    [recording] = stored(app, CallRecording, sid)
    assert (recording.status, recording.duration) == ("completed", 7)
    assert recording.url == recording_url(recording_sid)


def test_an_absent_recording_has_no_audio_and_says_why(app, twilio, client):
    sid, recording_sid = a_live_call(twilio), new_recording_sid()
    twilio.post("/voice/recorded", record_action(sid, recording_sid, "0"))
    response = twilio.post("/voice/recording-status", recording_callback(
        sid, recording_sid, "absent", "0", ErrorCode="16101"))
    assert response.status_code == 204
    [recording] = stored(app, CallRecording, sid)
    assert (recording.status, recording.error_code, recording.has_media) == ("absent", 16101, False)
    [shown] = client.get(f"/api/calls/{sid}", auth=AUTH).get_json()["recordings"]
    assert shown["media_url"] is None and shown["status"] == "absent"
    log_in(client)
    response = client.get(f"/admin/recordings/{recording_sid}.mp3")
    assert response.status_code == 404
    assert "no audio" in response.get_data(as_text=True)
    page = client.get(f"/admin/calls/{sid}")
    assert page.status_code == 200
    assert "too short or silent (error 16101)" in page.get_data(as_text=True)


def test_a_recording_status_callback_for_an_unknown_call_is_a_404(app, twilio):
    sid = new_call_sid()
    response = twilio.post("/voice/recording-status", recording_callback(sid, new_recording_sid()))
    assert response.status_code == 404
    assert f"No call with CallSid {sid}" in response.get_data(as_text=True)
    assert stored(app, CallRecording, sid) == []
    with app.app_context():
        assert db.session.get(Call, sid) is None


def test_a_record_action_without_a_recording_stores_none(app, twilio):
    sid = a_live_call(twilio)
    response = twilio.post("/voice/recorded", inbound_params(sid, "in-progress"))
    assert response.status_code == 200
    assert stored(app, CallRecording, sid) == []


@pytest.mark.parametrize("change, reason", [
    ({"RecordingSid": "RE123"}, "RecordingSid must be RE followed by 32 hex digits"),
    ({"RecordingSid": "CA" + "a" * 32}, "RecordingSid must be RE"),
    ({"RecordingUrl": "javascript:alert(1)"}, "RecordingUrl must be an http(s) URL"),
    ({"RecordingUrl": "https://api.twilio.com/" + "x" * 500}, "RecordingUrl is longer than 500"),
    ({"RecordingDuration": "seven"}, "RecordingDuration must be a non-negative integer"),
    ({"RecordingDuration": "99999999999"}, "RecordingDuration must be a non-negative integer"),
])
def test_bad_record_actions_are_a_400_and_leave_nothing(app, twilio, change, reason):
    sid = new_call_sid()
    params = dict(record_action(sid, new_recording_sid()), **change)
    response = twilio.post("/voice/recorded", params)
    assert response.status_code == 400
    assert reason in response.get_data(as_text=True)
    assert stored(app, CallRecording, sid) == []
    with app.app_context():
        assert db.session.get(Call, sid) is None  # the call is not half-recorded either


@pytest.mark.parametrize("change, reason", [
    ({"RecordingStatus": "done"}, "not a Twilio recording status"),
    ({"RecordingSid": ""}, "RecordingSid is missing"),
    ({"CallSid": "CA1"}, "CallSid must be CA"),
    ({"ErrorCode": "x"}, "ErrorCode must be a non-negative integer"),
])
def test_bad_recording_status_callbacks_are_a_400(app, twilio, change, reason):
    sid = a_live_call(twilio)
    params = dict(recording_callback(sid, new_recording_sid()), **change)
    response = twilio.post("/voice/recording-status", params)
    assert response.status_code == 400
    assert reason in response.get_data(as_text=True)
    assert stored(app, CallRecording, sid) == []


def test_an_in_progress_recording_has_no_duration_yet(app, twilio):
    sid, recording_sid = a_live_call(twilio), new_recording_sid()
    response = twilio.post("/voice/recording-status", recording_callback(
        sid, recording_sid, "in-progress", "-1"))
    assert response.status_code == 204
    twilio.post("/voice/recording-status", recording_callback(sid, recording_sid, duration="9"))
    [recording] = stored(app, CallRecording, sid)
    assert (recording.status, recording.duration) == ("completed", 9)


def test_the_recording_status_callback_needs_twilios_signature(app, twilio, client):
    sid = a_live_call(twilio)
    response = client.post("/voice/recording-status", data=recording_callback(sid, new_recording_sid()))
    assert response.status_code == 403
    assert stored(app, CallRecording, sid) == []


def test_keys_and_words_are_kept_once_per_delivery(app, twilio, client):
    sid = a_live_call(twilio)
    token = {"I-Twilio-Idempotency-Token": "1b5a0c1e-3c1e-4bd8-a9a2-0d6f0b0c1a11"}
    for _ in range(2):  # Twilio's retry of one request carries the same token
        response = twilio.post("/voice/gathered", inbound_params(sid, "in-progress", Digits="42#"),
                               headers=token)
        assert response.status_code == 200
        assert "You pressed 4 2 #" in ET.fromstring(response.data).find("Say").text
    other = {"I-Twilio-Idempotency-Token": "2c6b1d2f-4d2f-4ce9-b0b3-1e7f1c1d2b22"}
    response = twilio.post("/voice/gathered", inbound_params(
        sid, "in-progress", SpeechResult="I'd like to speak to <someone>", Confidence="0.91"),
        headers=other)
    assert response.status_code == 200
    answers = stored(app, GatherResult, sid)
    assert [(a.digits, a.speech_result, a.confidence) for a in answers] == [
        ("42#", None, None), (None, "I'd like to speak to <someone>", 0.91)]

    gathered = client.get(f"/api/calls/{sid}", auth=AUTH).get_json()["gathered"]
    assert [(a["digits"], a["speech_result"], a["confidence"]) for a in gathered] == [
        ("42#", None, None), (None, "I'd like to speak to <someone>", 0.91)]
    assert all(a["received_at"].endswith("Z") for a in gathered)

    log_in(client)
    page = client.get(f"/admin/calls/{sid}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert '<kbd class="digits">42#</kbd>' in text
    assert "I&#39;d like to speak to &lt;someone&gt;" in text and "91% sure" in text


def test_a_retry_without_a_token_is_kept_once_too(app, twilio):
    sid = a_live_call(twilio)
    for _ in range(2):
        twilio.post("/voice/gathered", inbound_params(sid, "in-progress", Digits="5"))
    assert [a.digits for a in stored(app, GatherResult, sid)] == ["5"]


def test_no_answer_stores_nothing(app, twilio):
    sid = a_live_call(twilio)
    response = twilio.post("/voice/gathered", inbound_params(sid, "in-progress"))
    assert "We did not get your answer" in ET.fromstring(response.data).find("Say").text
    assert stored(app, GatherResult, sid) == []


@pytest.mark.parametrize("change, reason", [
    ({"Digits": "12a"}, "Digits may only contain 0-9, * and #"),
    ({"Digits": "1" * 65}, "Digits is longer than 64 characters"),
    ({"SpeechResult": "blah " * 401}, "SpeechResult is longer than 2000 characters"),
    ({"SpeechResult": "yes", "Confidence": "high"}, "Confidence must be a number from 0.0 to 1.0"),
    ({"SpeechResult": "yes", "Confidence": "1.5"}, "Confidence must be a number from 0.0 to 1.0"),
    ({"SpeechResult": "yes", "Confidence": "nan"}, "Confidence must be a number from 0.0 to 1.0"),
])
def test_bad_gather_answers_are_a_400_and_leave_nothing(app, twilio, change, reason):
    sid = new_call_sid()
    response = twilio.post("/voice/gathered", dict(inbound_params(sid, "in-progress"), **change))
    assert response.status_code == 400
    assert reason in response.get_data(as_text=True)
    assert stored(app, GatherResult, sid) == []
    with app.app_context():
        assert db.session.get(Call, sid) is None


def test_answers_at_the_column_limits_fit_on_every_engine(app, twilio):
    sid = a_live_call(twilio)
    response = twilio.post("/voice/gathered", inbound_params(
        sid, "in-progress", Digits="1" * 64, SpeechResult="é" * 2000, Confidence="1"))
    assert response.status_code == 200
    [answer] = stored(app, GatherResult, sid)
    assert (len(answer.digits), len(answer.speech_result), answer.confidence) == (64, 2000, 1.0)


def test_the_results_region_polls_and_answers_204_when_nothing_changed(app, twilio, client):
    sid = a_live_call(twilio)
    log_in(client)
    first = client.get(f"/admin/calls/{sid}/results", headers={"HX-Request": "true"})
    assert first.status_code == 200
    fingerprint = ET.fromstring(first.data).get("data-fingerprint")
    headers = {"HX-Request": "true", "X-Fingerprint": fingerprint}
    assert client.get(f"/admin/calls/{sid}/results", headers=headers).status_code == 204
    twilio.post("/voice/gathered", inbound_params(sid, "in-progress", Digits="3"))
    again = client.get(f"/admin/calls/{sid}/results", headers=headers)
    assert again.status_code == 200
    assert b"<kbd class=\"digits\">3</kbd>" in again.data
    assert client.get(f"/admin/calls/{new_call_sid()}/results").status_code == 404
