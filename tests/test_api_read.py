"""The JSON read API: HTTP Basic, listing with filters and pages, one call with its events."""
from __future__ import annotations

import pytest

from support import ADMIN_PASSWORD, inbound_params, new_call_sid

AUTH = ("admin", ADMIN_PASSWORD)


def test_no_credentials_get_401_with_a_challenge(client):
    response = client.get("/api/calls")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert "HTTP Basic" in response.json["message"]


@pytest.mark.parametrize("auth", [("admin", "wrong"), ("root", ADMIN_PASSWORD), ("", "")])
def test_wrong_credentials_get_401(client, auth):
    assert client.get("/api/calls", auth=auth).status_code == 401


def test_no_operator_account_locks_everyone_out_and_says_why(make_app, database_url):
    client = make_app(database_url, ADMIN_PASSWORD="").test_client()
    response = client.get("/api/calls", auth=("admin", ""))
    assert response.status_code == 401
    assert "No operator account exists yet" in response.json["message"]
    assert "flask --app app operators add" in response.json["message"]


def test_list_is_newest_first_with_filters(client, twilio):
    ended, live = new_call_sid(), new_call_sid()
    twilio.post("/voice", inbound_params(ended))
    twilio.post("/status", inbound_params(ended, "completed", SequenceNumber="0"))
    twilio.post("/voice", inbound_params(live))

    response = client.get("/api/calls", auth=AUTH)
    assert response.status_code == 200
    assert [c["sid"] for c in response.json["calls"]] == [live, ended]
    assert response.json["total"] == 2

    response = client.get("/api/calls?status=completed", auth=AUTH)
    assert [c["sid"] for c in response.json["calls"]] == [ended]
    response = client.get("/api/calls?active=1", auth=AUTH)
    assert [c["sid"] for c in response.json["calls"]] == [live]


def test_list_pages(client, twilio):
    sids = [new_call_sid() for _ in range(5)]
    for sid in sids:
        twilio.post("/voice", inbound_params(sid))
    first = client.get("/api/calls?per_page=2", auth=AUTH).json
    last = client.get("/api/calls?per_page=2&page=3", auth=AUTH).json
    assert (first["pages"], first["total"], len(first["calls"])) == (3, 5, 2)
    assert [c["sid"] for c in last["calls"]] == [sids[0]]
    assert client.get("/api/calls?per_page=2&page=9", auth=AUTH).json["calls"] == []


@pytest.mark.parametrize("query", ["status=bogus", "page=0", "page=x", "per_page=-3"])
def test_bad_list_parameters_get_400_json(client, query):
    response = client.get(f"/api/calls?{query}", auth=AUTH)
    assert response.status_code == 400
    assert response.is_json and response.json["message"]


def test_one_call_with_its_events(client, twilio):
    sid = new_call_sid()
    twilio.post("/voice", inbound_params(sid, CallerName="Grace Hopper"))
    twilio.post("/status", inbound_params(sid, "completed", SequenceNumber="0", CallDuration="9",
                                          Timestamp="Mon, 23 Nov 2026 10:00:00 +0000"))
    response = client.get(f"/api/calls/{sid}", auth=AUTH)
    assert response.status_code == 200
    call = response.json
    assert (call["sid"], call["from"], call["to"]) == (sid, "+15555550123", "+15555550100")
    assert (call["status"], call["direction"], call["duration"]) == ("completed", "inbound", 9)
    assert call["caller_name"] == "Grace Hopper"
    assert call["parent_call_sid"] is None
    assert call["created_at"].endswith("Z") and call["updated_at"].endswith("Z")
    assert [(e["status"], e["sequence_number"]) for e in call["events"]] == [
        ("in-progress", None), ("completed", 0)]
    assert call["events"][1]["timestamp"] == "2026-11-23T10:00:00Z"
    assert call["events"][1]["received_at"].endswith("Z")


def test_unknown_call_is_a_json_404(client):
    sid = new_call_sid()
    response = client.get(f"/api/calls/{sid}", auth=AUTH)
    assert response.status_code == 404
    assert response.is_json and sid in response.json["message"]


def test_unknown_call_needs_credentials_first(client):
    assert client.get(f"/api/calls/{new_call_sid()}").status_code == 401
