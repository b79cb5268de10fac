"""The Voice URL and the TwiML routes: signatures, answers, and the call becoming live."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from models import Call, CallEvent, db
from support import AUTH_TOKEN, Twilio, inbound_params, new_call_sid


def parse_twiml(response) -> ET.Element:
    """Parse a TwiML response after checking it is one."""
    assert response.status_code == 200
    assert response.mimetype == "text/xml"
    root = ET.fromstring(response.data)
    assert root.tag == "Response"
    return root


def stored_call(app, sid: str) -> Call | None:
    with app.app_context():
        return db.session.get(Call, sid)


def event_count(app) -> int:
    with app.app_context():
        return db.session.scalar(db.select(db.func.count()).select_from(CallEvent))


def test_voice_greets_and_holds(app, twilio):
    root = parse_twiml(twilio.post("/voice", inbound_params(new_call_sid())))
    say, redirect = list(root)
    assert say.tag == "Say" and say.text == app.config["GREETING"]
    assert redirect.tag == "Redirect" and redirect.text == "/voice/hold"
    assert redirect.get("method") == "POST"


def test_hold_loop_plays_music_and_comes_back(app, twilio):
    root = parse_twiml(twilio.post("/voice/hold", inbound_params(new_call_sid(), "in-progress")))
    play, redirect = list(root)
    assert play.tag == "Play" and play.text == app.config["HOLD_MUSIC_URL"]
    assert redirect.tag == "Redirect" and redirect.text == "/voice/hold"


def test_greeting_and_music_are_configurable(make_app, database_url):
    app = make_app(database_url, GREETING="Hello from the test",
                   HOLD_MUSIC_URL="https://example.com/music.mp3")
    twilio = Twilio(app.test_client())
    root = parse_twiml(twilio.post("/voice", inbound_params(new_call_sid())))
    assert root.find("Say").text == "Hello from the test"
    root = parse_twiml(twilio.post("/voice/hold", inbound_params(new_call_sid(), "in-progress")))
    assert root.find("Play").text == "https://example.com/music.mp3"


def test_inbound_call_is_recorded_live_once_answered(app, twilio):
    sid = new_call_sid()
    params = inbound_params(sid, CallerName="Ada Lovelace", ForwardedFrom="+15555550199")
    parse_twiml(twilio.post("/voice", params))
    call = stored_call(app, sid)
    # The webhook said "ringing"; we answered with TwiML that connects, so it is live now.
    assert call.status == "in-progress"
    assert (call.from_number, call.to_number) == ("+15555550123", "+15555550100")
    assert call.direction == "inbound"
    assert call.caller_name == "Ada Lovelace"
    assert call.forwarded_from == "+15555550199"


def test_voice_get_is_accepted_and_signed_over_query(app, client):
    sid = new_call_sid()
    parse_twiml(Twilio(client).get("/voice", inbound_params(sid)))
    assert stored_call(app, sid).status == "in-progress"


def test_retried_voice_webhook_records_once(app, twilio):
    sid = new_call_sid()
    for _ in range(3):
        parse_twiml(twilio.post("/voice", inbound_params(sid)))
    assert event_count(app) == 1


def test_later_webhook_moves_status_forward_but_not_back(app, twilio):
    sid = new_call_sid()
    twilio.post("/voice", inbound_params(sid))
    response = twilio.post("/status", inbound_params(sid, "completed", SequenceNumber="0"))
    assert response.status_code == 204
    # A late hold-loop fetch (sent before the hang-up) must not reopen the call.
    parse_twiml(twilio.post("/voice/hold", inbound_params(sid, "in-progress")))
    assert stored_call(app, sid).status == "completed"


@pytest.mark.parametrize("path", ["/voice", "/voice/hold", "/status"])
def test_missing_signature_is_refused(app, client, path, caplog):
    sid = new_call_sid()
    response = client.post(path, data=inbound_params(sid))
    assert response.status_code == 403
    assert stored_call(app, sid) is None
    assert "http://localhost" + path in caplog.text
    assert AUTH_TOKEN not in caplog.text


def test_wrong_token_is_refused(app, client):
    sid = new_call_sid()
    response = Twilio(client, token="someone-elses-token").post("/voice", inbound_params(sid))
    assert response.status_code == 403
    assert stored_call(app, sid) is None


def test_tampered_params_are_refused(app, client):
    sid = new_call_sid()
    twilio = Twilio(client)
    params = inbound_params(sid)
    signature = twilio.validator.compute_signature("http://localhost/voice", params)
    tampered = dict(params, From="+15555550666")
    response = client.post("/voice", data=tampered, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 403


def test_signature_behind_a_proxy_uses_forwarded_proto_and_host(app, client):
    """ngrok: Twilio signs https://abc.ngrok.app/voice, Flask sees http://127.0.0.1:5000."""
    sid = new_call_sid()
    response = Twilio(client).post(
        "/voice", inbound_params(sid),
        headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "abc.ngrok.app"},
        signed_url="https://abc.ngrok.app/voice",
    )
    parse_twiml(response)
    # The same signature without the proxy headers is for another URL.
    response = Twilio(client).post(
        "/voice", inbound_params(new_call_sid()), signed_url="https://abc.ngrok.app/voice"
    )
    assert response.status_code == 403


def test_signature_with_public_url(app, client):
    app.config["PUBLIC_URL"] = "https://switchboard.example.com"
    sid = new_call_sid()
    response = Twilio(client).post(
        "/voice?lang=en", inbound_params(sid),
        signed_url="https://switchboard.example.com/voice?lang=en",
    )
    parse_twiml(response)
    # PUBLIC_URL wins over whatever the request says about itself.
    response = Twilio(client).post("/voice", inbound_params(new_call_sid()))
    assert response.status_code == 403


def test_signature_check_can_be_turned_off(make_app, database_url, caplog):
    app = make_app(database_url, TWILIO_VALIDATE_SIGNATURES=False, TWILIO_AUTH_TOKEN="")
    assert "TWILIO_VALIDATE_SIGNATURES is off" in caplog.text
    response = app.test_client().post("/voice", data=inbound_params(new_call_sid()))
    assert response.status_code == 200


@pytest.mark.parametrize("params, reason", [
    ({"CallStatus": "ringing"}, "CallSid is missing"),
    ({"CallSid": "CA123", "CallStatus": "ringing"}, "CallSid must be CA"),
    ({"CallSid": "PN" + "a" * 32, "CallStatus": "ringing"}, "CallSid must be CA"),
    ({"CallSid": "CA" + "g" * 32, "CallStatus": "ringing"}, "CallSid must be CA"),
    ({"CallSid": "CA" + "a" * 32}, "CallStatus is missing"),
    ({"CallSid": "CA" + "a" * 32, "CallStatus": "answered"}, "not a Twilio call status"),
    ({"CallSid": "CA" + "a" * 32, "CallStatus": "ringing", "ParentCallSid": "x"},
     "ParentCallSid must be CA"),
    ({"CallSid": "CA" + "a" * 32 + "\n", "CallStatus": "ringing"}, "CallSid must be CA"),
    ({"CallSid": "CA" + "a" * 32, "CallStatus": "ringing", "CallerName": "x" * 256},
     "CallerName is longer than 255 characters"),
])
@pytest.mark.parametrize("path", ["/voice", "/voice/hold"])
def test_bad_voice_webhooks_get_400_and_leave_nothing(app, twilio, path, params, reason):
    response = twilio.post(path, params)
    assert response.status_code == 400
    assert reason in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Call)) == 0
    assert event_count(app) == 0


def test_survey_action_thanks_the_caller_for_their_digits(app, twilio):
    sid = new_call_sid()
    root = parse_twiml(twilio.post("/voice/gathered", inbound_params(sid, "in-progress", Digits="5")))
    assert "You pressed 5" in root.find("Say").text
    assert root.find("Hangup") is not None


def test_voicemail_action_confirms_and_hangs_up(app, twilio):
    root = parse_twiml(twilio.post("/voice/recorded", inbound_params(new_call_sid(), "in-progress")))
    assert root.find("Say").text.startswith("Your message has been recorded")
    assert root.find("Hangup") is not None


def test_every_response_carries_the_security_headers_unless_the_view_set_its_own(app, twilio):
    """After-request headers: the webhooks' answers have them like the panel's pages; a
    header the view set (in any case) is left as it is."""
    from flask import Response
    app.add_url_rule("/own-frame-policy", "own_frame_policy",
                     lambda: Response("x", headers={"x-frame-options": "SAMEORIGIN"}))
    answer = twilio.post("/voice", inbound_params(new_call_sid()))
    assert answer.status_code == 200
    assert answer.headers["X-Frame-Options"] == "DENY"
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Referrer-Policy"] == "same-origin"
    assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]
    own = app.test_client().get("/own-frame-policy")
    assert own.headers.getlist("X-Frame-Options") == ["SAMEORIGIN"]
    assert own.headers["X-Content-Type-Options"] == "nosniff"
