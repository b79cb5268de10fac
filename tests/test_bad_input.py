"""Input no database can take, and bodies too big to read: refused the same way on both
engines, never a 500 and never a partial write."""
from __future__ import annotations

import base64
import json

import pytest

from models import Call, CallEvent, OperatorAction, db
from support import ADMIN_PASSWORD, inbound_params, log_in, new_call_sid
from test_status_callbacks import call_and_events, outbound_callback

API_AUTH = {"Authorization": "Basic " + base64.b64encode(f"admin:{ADMIN_PASSWORD}".encode()).decode()}


def counts(app) -> tuple[int, int, int]:
    """How many calls, events and operator actions are stored (not counting the admin
    account's creation at start)."""
    with app.app_context():
        return tuple(db.session.scalar(db.select(db.func.count()).select_from(model).where(
            *([model.action != "operator-add"] if model is OperatorAction else [])))
            for model in (Call, CallEvent, OperatorAction))


@pytest.mark.parametrize("path", ["/voice", "/voice/hold", "/status"])
@pytest.mark.parametrize("field", ["CallerName", "From", "To", "ForwardedFrom", "Unknown\x00Key"])
def test_nul_characters_are_a_400_and_nothing_is_written(app, twilio, path, field):
    sid = new_call_sid()
    twilio.post("/voice", inbound_params(sid))
    before = counts(app)
    params = inbound_params(sid, "completed", SequenceNumber="0")
    params[field] = "Mallory\x00<script>"
    response = twilio.post(path, params)
    assert response.status_code == 400
    assert "NUL" in response.get_data(as_text=True)
    assert counts(app) == before


def test_nul_characters_in_the_api_and_the_panel_are_a_400(app, client):
    response = client.post("/api/calls", json={"to": "+1555\x000142"}, headers=API_AUTH)
    assert response.status_code == 400 and "NUL" in response.get_json()["message"]
    response = client.get("/api/calls?status=ringing%00", headers=API_AUTH)
    assert response.status_code == 400
    assert counts(app) == (0, 0, 0)


@pytest.mark.parametrize("field, limit", [
    ("From", 255), ("To", 255), ("CallerName", 255), ("ForwardedFrom", 255), ("Direction", 32),
    ("AccountSid", 34), ("SipResponseCode", 8)])
def test_every_stored_text_field_over_its_column_is_a_400(app, twilio, field, limit):
    sid = new_call_sid()
    assert twilio.post("/status", outbound_callback(sid, "initiated", 0)).status_code == 204
    before = call_and_events(app, sid)
    params = outbound_callback(sid, "busy", 1, **{field: "9" * (limit + 1)})
    response = twilio.post("/status", params)
    assert response.status_code == 400
    assert f"{field} is longer than {limit} characters" in response.get_data(as_text=True)
    call, events = call_and_events(app, sid)
    assert call.status == before[0].status == "initiated" and len(events) == 1
    # At the limit it fits, on every engine.
    params = outbound_callback(sid, "busy", 1, **{field: "9" * limit})
    assert twilio.post("/status", params).status_code == 204


@pytest.mark.parametrize("timestamp", [
    "Fri, 31 Dec 9999 23:59:59 -1400",  # past datetime's range once moved to UTC
    "Sat, 01 Jan 2500 00:00:00 +0000",  # far future
    "Mon, 23 Nov 1026 09:53:19 +0000",  # far past
    "yesterday at noon", "Mon, 99 Nov 2026 09:53:19 +0000", "\u0661\u0662"])
def test_implausible_or_malformed_timestamps_are_stored_as_null(app, twilio, timestamp):
    sid = new_call_sid()
    response = twilio.post("/status", outbound_callback(sid, "ringing", 1, Timestamp=timestamp))
    assert response.status_code == 204
    call, events = call_and_events(app, sid)
    assert call.status == "ringing"
    assert events[0].timestamp is None
    assert json.loads(events[0].params)["Timestamp"] == timestamp  # the raw text is kept


@pytest.mark.parametrize("page", ["99999999999999999999", "1" * 5000, "2147483648", "1000001"])
def test_page_numbers_too_large_for_an_integer(app, client, twilio, page):
    twilio.post("/voice", inbound_params(new_call_sid()))
    response = client.get(f"/api/calls?page={page}", headers=API_AUTH)
    assert response.status_code == 400
    assert "page must be an integer from 1 to" in response.get_json()["message"]
    response = client.get(f"/api/calls?per_page={page}", headers=API_AUTH)
    assert response.status_code == 400
    log_in(client)
    response = client.get(f"/admin/history?page={page}")
    assert response.status_code == 302  # to the last page
    assert response.headers["Location"].endswith("page=1")


def test_a_signed_webhook_over_the_body_limit_is_a_413_and_nothing_is_written(app, twilio):
    params = inbound_params(new_call_sid(), CallerName="x", Padding="y" * (64 * 1024))
    response = twilio.post("/voice", params)
    assert response.status_code == 413
    assert counts(app) == (0, 0, 0)
    # Every real webhook is far below it: a full one with long values fits.
    params = inbound_params(new_call_sid(), CallerName="x" * 255, Padding="y" * (32 * 1024))
    assert twilio.post("/voice", params).status_code == 200


def test_a_huge_login_or_api_body_is_a_413(app, client):
    assert client.post("/login", data={"username": "admin", "password": "p" * (1 << 20)}
                       ).status_code == 413
    response = client.post("/api/calls", headers=API_AUTH,
                           json={"to": "+15555550142", "x": "y" * (1 << 20)})
    assert response.status_code == 413
    assert counts(app) == (0, 0, 0)
