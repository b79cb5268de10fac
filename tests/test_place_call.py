"""Placing a call: the person reached hears what the operator chose (our hold loop, a message,
or TwiML at a URL), never the inbound greeting; checked in the emulator's transcript."""
from __future__ import annotations

import base64
import re

import pytest

from models import OperatorAction, db
from support import ADMIN_PASSWORD, log_in

AUTH = {"Authorization": "Basic " + base64.b64encode(f"admin:{ADMIN_PASSWORD}".encode()).decode()}


def place(client, **body):
    return client.post("/api/calls", json=dict({"to": "+15555550142"}, **body), headers=AUTH)


def run(wired, seconds: int) -> None:
    """Let the emulator's time pass, one second at a time (each step delivers what is due)."""
    for _ in range(seconds):
        wired.engine.advance(1)


def heard(wired, sid: str) -> list[tuple[str, str]]:
    """What the callee heard and what was fetched, in order: (kind, text)."""
    return [(line["kind"], line["text"]) for line in wired.engine.get(sid).transcript]


def recorded(client, sid: str) -> dict:
    response = client.get(f"/api/calls/{sid}", headers=AUTH)
    assert response.status_code == 200
    return response.get_json()


def test_say_a_message_then_the_call_ends(wired, client):
    message = "Your table is ready. Come to the front desk <now> & bring your ticket."
    response = place(client, answer="say", message=message)
    assert response.status_code == 201, response.get_json()
    sid = response.get_json()["call_sid"]
    run(wired, 5)
    lines = heard(wired, sid)
    assert ("say", message) in lines
    assert lines[-1][0] == "status" and "completed" in lines[-1][1]
    assert not any(kind == "webhook" for kind, _ in lines)  # the TwiML went with the call
    call = recorded(client, sid)
    assert call["status"] == "completed"  # /status still tracks it
    assert [e["status"] for e in call["events"]] == ["initiated", "ringing", "in-progress",
                                                     "completed"]
    [action] = call["actions"]
    assert (action["action"], action["ok"]) == ("place", True)
    assert action["params"]["answer"] == "say" and action["params"]["message"] == message


def test_hold_music_until_an_operator_acts(wired, client, app):
    response = place(client, answer="hold")
    sid = response.get_json()["call_sid"]
    run(wired, 4)
    lines = heard(wired, sid)
    assert ("webhook", f"POST {wired.app_url}/voice/hold → 200") in lines
    assert ("play", f"Audio {app.config['HOLD_MUSIC_URL']}") in lines
    assert not any(app.config["GREETING"] in text for _, text in lines)
    assert recorded(client, sid)["status"] == "in-progress"
    assert client.post(f"/api/calls/{sid}/hangup", json={}, headers=AUTH).status_code == 200


@pytest.mark.parametrize("url, method", [("/voice/gathered", "POST"),
                                         ("{app_url}/voice/gathered", "GET")])
def test_twiml_at_a_url_of_ours_or_absolute(wired, client, url, method):
    response = place(client, answer="url", url=url.format(app_url=wired.app_url), method=method)
    assert response.status_code == 201, response.get_json()
    sid = response.get_json()["call_sid"]
    placed = wired.engine.get(sid)
    assert (placed.url, placed.method) == (f"{wired.app_url}/voice/gathered", method)
    run(wired, 5)
    assert ("say", "We did not get your answer. Goodbye.") in heard(wired, sid)
    assert recorded(client, sid)["status"] == "completed"
    params = recorded(client, sid)["actions"][0]["params"]
    assert (params["answer"], params["url"], params["method"]) == (
        "url", f"{wired.app_url}/voice/gathered", method)


@pytest.mark.parametrize("body, reason", [
    ({"answer": "say", "message": "   "}, "A message to say is required."),
    ({"answer": "say", "message": "x" * 1001}, "at most 1000"),
    ({"answer": "say", "message": "ding\u0007"}, "must not contain control characters"),
    ({"answer": "url", "url": "not a url"}, "it must not contain spaces"),
    ({"answer": "url", "url": "ftp://example.com/x"}, "is not an http(s) URL"),
    ({"answer": "url", "url": "voice/hold"}, "neither an http(s) URL nor a path of ours"),
    ({"answer": "url", "url": "/voice/hold", "method": "PUT"}, "Method must be POST or GET."),
    ({"answer": "greeting"}, "The answer must be one of: hold, say, url."),
])
def test_a_bad_choice_never_reaches_twilio_and_is_recorded(wired, client, app, body, reason):
    response = place(client, **body)
    assert response.status_code == 400
    assert reason in response.get_json()["message"]
    assert wired.engine.all_calls() == []
    with app.app_context():
        entry = db.session.scalars(db.select(OperatorAction).where(
            OperatorAction.action == "place")).one()
    assert entry.ok is False and reason in entry.result
    assert entry.parameters["answer"] == body["answer"]


def test_a_missing_message_or_url_is_a_400(wired, client):
    for body, field in (({"answer": "say"}, "message"), ({"answer": "url"}, "url")):
        response = place(client, **body)
        assert response.status_code == 400
        assert response.get_json()["message"] == f"{field} is required."
    assert wired.engine.all_calls() == []


def test_the_panel_places_a_call_with_a_message(wired, client):
    log_in(client)
    page = client.get("/admin")
    assert page.status_code == 200
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    form = {"csrf_token": token, "to": "+15555550142", "answer": "say", "message": ""}
    refused = client.post("/admin/calls", data=form)
    assert refused.status_code == 400
    text = refused.get_data(as_text=True)
    assert "A message to say is required." in text
    assert 'value="+15555550142"' in text  # what was typed is kept
    assert re.search(r'value="say"\s+checked', text)

    form["message"] = "Hello from the panel"
    response = client.post("/admin/calls", data=form)
    assert response.status_code == 302
    sid = response.headers["Location"].rsplit("/", 1)[1]
    run(wired, 5)
    assert ("say", "Hello from the panel") in heard(wired, sid)
