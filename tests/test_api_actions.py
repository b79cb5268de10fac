"""The JSON API's operator actions, against the emulator on loopback (manual clock)."""
from __future__ import annotations

import base64

import pytest

from emulator import ManualClock
from support import ADMIN_PASSWORD, OUR_NUMBER, new_call_sid, wire

AUTH = {"Authorization": "Basic " + base64.b64encode(f"admin:{ADMIN_PASSWORD}".encode()).decode()}


class Stack:
    """The app's test client, with the app and the emulator (manual clock) on loopback."""

    def __init__(self, wired, client):
        self.app, self.client, self.engine = wired.app, client, wired.engine
        self.app_url, self.emulator_url = wired.app_url, wired.emulator_url
        self.twilio = wired.sdk

    def post(self, path, json=None, **kwargs):
        """POST JSON (an action without parameters gets `{}`) with the operator's credentials."""
        return self.client.post(path, json={} if json is None else json, headers=AUTH, **kwargs)

    def call(self, sid):
        response = self.client.get(f"/api/calls/{sid}", headers=AUTH)
        assert response.status_code == 200
        return response.get_json()

    def ring(self, from_="+15555550123"):
        """An inbound caller, answered by our /voice (so: in-progress)."""
        call = self.engine.incoming(from_=from_, hangup_after=0)
        self.engine.advance(0.1)
        return call.sid


@pytest.fixture
def stack(app, client):
    wired = wire(app, EMULATOR_CLOCK=ManualClock())
    yield Stack(wired, client)
    wired.stop()


def test_place_a_call_tracked_like_inbound_ones(stack):
    response = stack.post("/api/calls", {"to": "+15555550142"})
    assert response.status_code == 201
    body = response.get_json()
    assert body["ok"] is True
    sid = body["call_sid"]
    placed = stack.engine.get(sid)
    assert placed.from_ == OUR_NUMBER  # From defaults to TWILIO_PHONE_NUMBER
    assert placed.url == f"{stack.app_url}/voice/hold"  # our hold loop, not the greeting
    assert placed.status_callback == f"{stack.app_url}/status"
    assert set(placed.status_callback_events) == {"initiated", "ringing", "answered", "completed"}
    # Recorded at once, before any callback: the manual clock runs nothing before advance().
    assert stack.call(sid)["status"] == "queued"
    assert (stack.call(sid)["from"], stack.call(sid)["to"]) == (OUR_NUMBER, "+15555550142")

    stack.engine.advance(0.1)  # the emulator dials; its callbacks reach /status
    call = stack.call(sid)
    assert call["status"] == "ringing"
    assert [e["status"] for e in call["events"]] == ["initiated", "ringing"]
    assert call["actions"][0]["action"] == "place"
    assert call["actions"][0]["operator"] == "admin"
    assert call["actions"][0]["via"] == "api"
    assert call["actions"][0]["ok"] is True
    assert call["actions"][0]["params"]["answer"] == "hold"


def test_place_a_call_with_a_bad_number_never_reaches_twilio(stack):
    for body in ({"to": "not a number"}, {"to": "+15555550142", "from": "nobody"}):
        response = stack.post("/api/calls", body)
        assert response.status_code == 400
        assert "E.164" in response.get_json()["message"]
    response = stack.post("/api/calls", {})
    assert response.status_code == 400
    assert response.get_json()["message"] == "to is required."
    assert stack.engine.all_calls() == []


def test_twilio_refusal_of_a_new_call_is_a_json_error(stack):
    response = stack.post("/api/calls", {"to": "+15005550001"})
    assert response.status_code == 400
    body = response.get_json()
    assert body["twilio_code"] == 21217
    assert "21217" in body["message"]


def test_only_json_bodies_are_accepted(stack):
    sid = stack.ring()
    response = stack.client.post(f"/api/calls/{sid}/redirect", data={"url": "/voice/hold"},
                                 headers=AUTH)
    assert response.status_code == 415
    assert "JSON" in response.get_json()["message"]
    response = stack.client.post("/api/calls", data="to=+15555550142", headers=AUTH,
                                 content_type="text/plain")
    assert response.status_code == 415
    response = stack.client.post("/api/calls", data="[1]", headers=AUTH,
                                 content_type="application/json")
    assert response.status_code == 400


@pytest.mark.parametrize("content_type", [
    "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/plain", None])
def test_a_cross_site_form_cannot_act_with_cached_credentials(stack, content_type):
    """A form on another site can send these content types (no preflight), with the browser's
    cached HTTP Basic credentials: every action refuses them, even with an empty body."""
    sid = stack.ring()
    headers = dict(AUTH, **({"Content-Type": content_type} if content_type else {}))
    for action in ("hangup", "cancel"):
        response = stack.client.post(f"/api/calls/{sid}/{action}", data=b"", headers=headers)
        assert response.status_code == 415, response.get_data(as_text=True)
    assert stack.client.post("/api/sync", data=b"", headers=headers).status_code == 415
    assert stack.engine.get(sid).status == "in-progress"
    assert stack.call(sid)["actions"] == []
    # The same empty body as JSON is fine.
    response = stack.client.post(f"/api/calls/{sid}/hangup", data=b"", headers=AUTH,
                                 content_type="application/json")
    assert response.status_code == 200


def test_actions_need_http_basic(stack):
    sid = stack.ring()
    response = stack.client.post(f"/api/calls/{sid}/hangup", json={})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert stack.engine.get(sid).status == "in-progress"


def test_hang_up_ends_the_call_and_is_recorded(stack):
    sid = stack.ring()
    response = stack.post(f"/api/calls/{sid}/hangup")
    assert response.status_code == 200
    assert response.get_json()["call_status"] == "completed"
    assert stack.engine.get(sid).status == "completed"
    assert stack.call(sid)["status"] == "completed"
    again = stack.post(f"/api/calls/{sid}/hangup", {})
    assert again.status_code == 409
    assert "already ended" in again.get_json()["message"]
    actions = stack.call(sid)["actions"]
    assert [(a["action"], a["ok"]) for a in actions] == [("hangup", True), ("hangup", False)]


def test_cancel_a_ringing_call(stack):
    sid = stack.post("/api/calls", {"to": "+15555550143"}).get_json()["call_sid"]
    stack.engine.advance(0.1)
    response = stack.post(f"/api/calls/{sid}/cancel")
    assert response.status_code == 200
    assert stack.engine.get(sid).status == "canceled"
    assert stack.call(sid)["status"] == "canceled"


def test_cancel_is_refused_for_an_answered_call(stack):
    sid = stack.ring()
    response = stack.post(f"/api/calls/{sid}/cancel")
    assert response.status_code == 409
    assert "hang up instead" in response.get_json()["message"].lower()
    assert stack.engine.get(sid).status == "in-progress"


def test_redirect_to_our_hold_loop_and_bad_urls(stack):
    sid = stack.ring()
    for url in ("ftp://example.com/twiml", "javascript:alert(1)", "http://", "not a url",
                "voice/hold"):
        response = stack.post(f"/api/calls/{sid}/redirect", {"url": url})
        assert response.status_code == 400, url
        assert "Redirect URL must be an http(s) URL" in response.get_json()["message"]
    assert not any("redirected" in line["text"] for line in stack.engine.get(sid).transcript)
    response = stack.post(f"/api/calls/{sid}/redirect", {"url": "/voice/gathered", "method": "PUT"})
    assert response.status_code == 400
    response = stack.post(f"/api/calls/{sid}/redirect", {"url": "/voice/gathered", "method": "GET"})
    assert response.status_code == 200
    stack.engine.advance(3)
    texts = [line["text"] for line in stack.engine.get(sid).transcript]
    assert f"Call redirected to {stack.app_url}/voice/gathered" in texts
    assert any("We did not get your answer" in t for t in texts)


def test_redirect_of_a_ringing_call_reports_21220_and_refreshes_the_status(stack):
    sid = stack.post("/api/calls", {"to": "+15555550144"}).get_json()["call_sid"]
    response = stack.post(f"/api/calls/{sid}/redirect", {"url": "/voice/hold"})
    assert response.status_code == 409
    body = response.get_json()
    assert body["twilio_code"] == 21220
    assert "hung up" in body["message"]
    call = stack.call(sid)
    assert call["actions"][-1]["error_code"] == 21220
    assert call["status"] in ("queued", "ringing")


def test_twiml_is_checked_then_sent_with_absolute_urls(stack):
    sid = stack.ring()
    for bad, why in (
        ("<Response><Say>open", "well-formed"),
        ("<Reply><Say>hi</Say></Reply>", "root element must be <Response>"),
        ("<Response><say>hi</say></Response>", "case-sensitive"),
        ("<Response><Say>" + "a" * 4000 + "</Say></Response>", "4000"),
    ):
        response = stack.post(f"/api/calls/{sid}/twiml", {"twiml": bad})
        assert response.status_code == 400, bad
        assert why in response.get_json()["message"]
    assert not any(line["text"].startswith("Call redirected")
                   for line in stack.engine.get(sid).transcript)

    twiml = '<Response><Say>Hello from the operator</Say><Redirect>/voice/hold</Redirect></Response>'
    response = stack.post(f"/api/calls/{sid}/twiml", {"twiml": twiml})
    assert response.status_code == 200
    sent = response.get_json()["action"]["params"]["twiml"]
    assert f"<Redirect>{stack.app_url}/voice/hold</Redirect>" in sent
    stack.engine.advance(2)
    lines = stack.engine.get(sid).transcript
    assert any(line["text"] == "Hello from the operator" for line in lines)
    assert not any(line.get("code") == 15004 for line in lines)


def test_unknown_call_is_a_json_404(stack):
    response = stack.post(f"/api/calls/{new_call_sid()}/hangup")
    assert response.status_code == 404
    assert "No call" in response.get_json()["message"]


def test_twilio_unreachable_is_a_json_error_and_recorded(stack):
    sid = stack.ring()
    stack.app.config["TWILIO_API_BASE_URL"] = "http://127.0.0.1:9"
    stack.app.extensions.pop("switchboard.twilio_client", None)
    response = stack.post(f"/api/calls/{sid}/hangup")
    assert response.status_code == 502
    assert "Could not connect" in response.get_json()["message"]
    assert stack.call(sid)["actions"][-1]["ok"] is False


def test_sync_records_what_twilio_knows(stack):
    # A call whose end we never heard about: created at Twilio without a status callback.
    twilio = stack.twilio()
    created = twilio.calls.create(to="+15555550145", from_=OUR_NUMBER, url=f"{stack.app_url}/voice")
    from call_records import CallUpdate, record_call
    from models import db
    with stack.app.app_context():
        record_call(CallUpdate(sid=created.sid, status="queued", to_number="+15555550145",
                               from_number=OUR_NUMBER, direction="outbound-api"))
        db.session.commit()
    twilio.calls(created.sid).update(status="canceled")
    unchanged = stack.ring()  # live, as the app knows
    response = stack.post("/api/sync")
    assert response.status_code == 200
    body = response.get_json()
    assert body["changed"] == [created.sid]
    call = stack.call(created.sid)
    assert call["status"] == "canceled"
    assert call["events"][-1]["source"] == "sync"
    assert call["actions"][-1]["action"] == "sync"
    assert body["checked"] == 2
    assert stack.call(unchanged)["actions"] == []  # nothing changed: nothing in its log
