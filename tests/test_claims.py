"""Who handles which call: claims, releases, takeovers, refused actions, viewers; and, under
gunicorn on both engines, simultaneous claims (exactly one wins) and the login throttle
shared by two instances."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import pytest
import requests

from emulator import ManualClock
from servers import gunicorn
from support import (
    ADMIN_PASSWORD,
    add_operator,
    basic_auth,
    inbound_params,
    log_in,
    new_call_sid,
    wire,
)
from test_concurrency import app_env

ALICE = ("alice", "alice-password-1")
BOB = ("bob", "bob-password-22")


@pytest.fixture
def team(app, client):
    """Alice and Bob, two operators of the app."""
    add_operator(app, *ALICE, name="Alice Liddell")
    add_operator(app, *BOB, name="Bob Dylan")
    return client


def post(client, path, who, body=None):
    return client.post(path, json=body or {}, headers=basic_auth(*who))


def call_json(client, sid):
    response = client.get(f"/api/calls/{sid}", headers=basic_auth("admin", ADMIN_PASSWORD))
    assert response.status_code == 200
    return response.get_json()


def test_claim_release_and_the_holders_name(team, twilio):
    sid = new_call_sid()
    twilio.post("/voice", inbound_params(sid))
    assert call_json(team, sid)["handler"] is None
    response = post(team, f"/api/calls/{sid}/claim", ALICE)
    assert response.status_code == 200 and response.get_json()["handler"] == "alice"
    assert post(team, f"/api/calls/{sid}/claim", ALICE).status_code == 200  # already hers
    refused = post(team, f"/api/calls/{sid}/claim", BOB)
    assert refused.status_code == 409
    assert refused.get_json()["message"] == "Alice Liddell is handling this call."
    assert refused.get_json()["handler"] == "alice"
    assert post(team, f"/api/calls/{sid}/release", BOB).status_code == 409
    assert post(team, f"/api/calls/{sid}/release", ALICE).status_code == 200
    assert post(team, f"/api/calls/{sid}/claim", BOB).status_code == 200
    call = call_json(team, sid)
    assert call["handler"] == "bob"
    assert [(a["action"], a["operator"], a["ok"]) for a in call["actions"]] == [
        ("claim", "alice", True), ("claim", "bob", False), ("release", "alice", True),
        ("claim", "bob", True)]


def test_handler_me_and_the_claim_ending_with_the_call(team, twilio):
    mine, other = new_call_sid(), new_call_sid()
    twilio.post("/voice", inbound_params(mine))
    twilio.post("/voice", inbound_params(other))
    post(team, f"/api/calls/{mine}/claim", ALICE)
    post(team, f"/api/calls/{other}/claim", BOB)
    listed = team.get("/api/calls?handler=me", headers=basic_auth(*ALICE)).get_json()["calls"]
    assert [c["sid"] for c in listed] == [mine]
    everything = team.get("/api/calls", headers=basic_auth(*ALICE)).get_json()["calls"]
    assert {c["sid"]: c["handler"] for c in everything} == {mine: "alice", other: "bob"}
    twilio.post("/status", inbound_params(mine, "completed", SequenceNumber="0"))
    assert call_json(team, mine)["handler"] is None
    assert team.get("/api/calls?handler=me", headers=basic_auth(*ALICE)).get_json()["calls"] == []
    ended = post(team, f"/api/calls/{mine}/claim", BOB)
    assert ended.status_code == 409 and "already ended" in ended.get_json()["message"]
    assert team.get("/api/calls?handler=someone", headers=basic_auth(*ALICE)).status_code == 400


def test_viewers_are_the_operators_with_the_page_open(app, team, twilio):
    sid = new_call_sid()
    twilio.post("/voice", inbound_params(sid))
    alice, bob = app.test_client(), app.test_client()
    log_in(alice, *ALICE)
    log_in(bob, *BOB)
    assert alice.get(f"/admin/calls/{sid}").status_code == 200
    assert call_json(team, sid)["viewers"] == ["alice"]
    page = bob.get(f"/admin/calls/{sid}").get_data(as_text=True)
    assert "Alice Liddell" in page.split('id="call-viewers"')[1].split("</dd>")[0]
    assert call_json(team, sid)["viewers"] == ["alice", "bob"]


@pytest.fixture
def wired_team(team, app):
    """Alice and Bob, with the app wired to the emulator (manual clock)."""
    wired = wire(app, EMULATOR_CLOCK=ManualClock())
    yield wired
    wired.stop()


def test_another_operators_call_is_refused_until_taken_over(team, wired_team):
    engine = wired_team.engine
    call = engine.incoming(from_="+15555550123", hangup_after=0)
    engine.advance(0.1)
    sid = call.sid
    assert post(team, f"/api/calls/{sid}/claim", ALICE).status_code == 200
    for action, body in [("hangup", {}), ("cancel", {}), ("redirect", {"url": "/voice/hold"}),
                         ("twiml", {"twiml": "<Response><Hangup/></Response>"})]:
        response = post(team, f"/api/calls/{sid}/{action}", BOB, body)
        assert response.status_code == 409, action
        assert response.get_json()["message"].startswith("Alice Liddell is handling this call")
    assert engine.get(sid).status == "in-progress"  # nothing reached Twilio
    bad = post(team, f"/api/calls/{sid}/hangup", BOB, {"takeover": "yes"})
    assert bad.status_code == 400
    response = post(team, f"/api/calls/{sid}/hangup", BOB, {"takeover": True})
    assert response.status_code == 200, response.get_json()
    engine.advance(0.1)
    assert engine.get(sid).status == "completed"
    actions = call_json(team, sid)["actions"]
    assert [(a["action"], a["operator"], a["ok"]) for a in actions][-2:] == [
        ("takeover", "bob", True), ("hangup", "bob", True)]
    assert actions[-2]["params"] == {"from": "alice"}


# -------------------------------------------------------------- real concurrency

def test_simultaneous_claims_exactly_one_wins(database_url, tmp_path, make_app):
    """Eight operators press Claim on the same call at the same moment, on gunicorn with
    two workers, for ten calls: each time exactly one 200 and seven 409s naming the winner."""
    app = make_app(database_url)
    people = [(f"op{n}", f"password-{n}-long") for n in range(8)]
    for username, password in people:
        add_operator(app, username, password)
    env = app_env(database_url)
    with gunicorn(env, workers=2, log_path=tmp_path / "claims.log") as (url, _):
        from twilio.request_validator import RequestValidator

        from support import AUTH_TOKEN
        validator = RequestValidator(AUTH_TOKEN)
        sessions = [requests.Session() for _ in people]
        for session, who in zip(sessions, people, strict=True):  # warm: connection and password
            session.auth = who
            assert session.get(url + "/api/calls?per_page=1", timeout=10).status_code == 200
        for _ in range(10):
            sid = new_call_sid()
            params = inbound_params(sid)
            signature = validator.compute_signature(url + "/voice", params)
            assert requests.post(url + "/voice", data=params, timeout=10,
                                 headers={"X-Twilio-Signature": signature}).status_code == 200
            start = threading.Barrier(len(people))

            def press(session, start=start, sid=sid):
                start.wait()
                return session.post(f"{url}/api/calls/{sid}/claim", json={}, timeout=30)

            with ThreadPoolExecutor(len(people)) as pool:
                responses = list(pool.map(press, sessions))
            codes = sorted(r.status_code for r in responses)
            assert codes == [200] + [409] * 7, codes
            winner = next(r for r in responses if r.status_code == 200).json()["handler"]
            assert {r.json()["handler"] for r in responses} == {winner}
    assert "Traceback" not in (tmp_path / "claims.log").read_text()


def test_the_login_throttle_is_shared_by_two_instances(database_url, tmp_path, make_app):
    """Five wrong passwords on each of two instances (two workers each) lock the username
    on both: the count lives in the database."""
    make_app(database_url)  # the schema and the admin account
    with ExitStack() as stack:
        urls = [stack.enter_context(gunicorn(app_env(database_url), workers=2,
                                             log_path=tmp_path / f"{name}.log"))[0]
                for name in ("a", "b")]
        for number in range(10):
            response = requests.get(urls[number % 2] + "/api/calls", timeout=10,
                                    auth=("admin", "not-the-password"))
            assert response.status_code == 401
        for url in urls:
            response = requests.get(url + "/api/calls", timeout=10, auth=("admin", ADMIN_PASSWORD))
            assert response.status_code == 429
            assert int(response.headers["Retry-After"]) > 0
