"""The app against the emulator under each chaos fault, end to end over real HTTP on loopback.

Callers ring the app and the app places calls through its own API, while the emulator duplicates,
reorders, delays and drops status callbacks, slows webhooks, rate-limits and queues the REST API,
and loses a create's response. After every step no call's status went backwards in the app; at the
end the app stored each callback the emulator delivered exactly once, lost none, and (after its
sync with Twilio, which is how an app learns what a dropped callback said) agrees with the
emulator on every call.
"""
from __future__ import annotations

import pytest
import requests

from emulator import ManualClock
from models import STATUS_RANK
from support import ACCOUNT_SID, ADMIN_PASSWORD, AUTH_TOKEN, wire

API_AUTH = ("admin", ADMIN_PASSWORD)
EMULATOR_AUTH = (ACCOUNT_SID, AUTH_TOKEN)
CALLERS = ["+15555550123", "+15555550124", "+15555550125"]
#: Answers (then the operator's side hangs up), busy, fails at once.
DESTINATIONS = ["+15555550142", "+15555550186", "+15555550188", "+15555550143"]


@pytest.fixture
def stack(make_app, database_url):
    """The app (a short REST timeout, so a lost response costs a second) and the emulator, manual clock."""
    app = make_app(database_url, TWILIO_TIMEOUT_SECONDS=1)
    wired = wire(app, EMULATOR_CLOCK=ManualClock())
    yield Run(wired)
    wired.stop()


class Run:
    """Drives one chaos run: callers, placed calls, emulated time, and the checks after each step."""

    def __init__(self, wired):
        self.wired, self.engine = wired, wired.engine
        self.app_url, self.emulator_url = wired.app_url, wired.emulator_url
        self.sids: list[str] = []
        self.seen: dict[str, int] = {}  # the highest status rank the app has shown for each call

    def chaos(self, body: dict) -> None:
        resp = requests.post(f"{self.emulator_url}/emulator/chaos", json=body, auth=EMULATOR_AUTH, timeout=5)
        assert resp.status_code == 200, resp.text

    def ring(self, caller: str, hangup_after: int) -> None:
        resp = requests.post(f"{self.emulator_url}/emulator/incoming", json={"from": caller, "hangup_after": hangup_after},
                             auth=EMULATOR_AUTH, timeout=5)
        assert resp.status_code == 201, resp.text
        self.sids.append(resp.json()["call_sid"])

    def place(self, to: str) -> requests.Response:
        """Place a call through the app's API, as an operator's script would."""
        resp = requests.post(f"{self.app_url}/api/calls", json={"to": to}, auth=API_AUTH, timeout=10)
        if resp.status_code == 201:
            self.sids.append(resp.json()["call_sid"])
        return resp

    def app_calls(self) -> dict[str, dict]:
        resp = requests.get(f"{self.app_url}/api/calls", params={"per_page": 100}, auth=API_AUTH, timeout=5)
        assert resp.status_code == 200, resp.text
        return {c["sid"]: c for c in resp.json()["calls"]}

    def step(self, seconds: float, by: float = 0.5) -> None:
        """Let emulated time pass; after each step no call's status has moved backwards in the app."""
        left = seconds
        while left > 0:
            self.engine.advance(min(by, left))
            left -= by
            for sid, call in self.app_calls().items():
                rank = STATUS_RANK[call["status"]]
                assert rank >= self.seen.get(sid, 0), f"{sid} went back to {call['status']}"
                self.seen[sid] = rank

    def hang_up_answered(self) -> None:
        """The called parties of answered outbound calls hang up (the app's hold loop never ends)."""
        for call in self.engine.all_calls():
            if call.direction == "outbound-api" and call.status == "in-progress":
                resp = requests.post(f"{self.emulator_url}/emulator/calls/{call.sid}/hangup", auth=EMULATOR_AUTH, timeout=5)
                assert resp.status_code in (200, 202), resp.text

    def delivered(self, sid: str) -> list[int]:
        """SequenceNumbers of the status callbacks the emulator delivered (the app answered 2xx)."""
        resp = requests.get(f"{self.emulator_url}/emulator/webhooks", params={"call_sid": sid, "limit": 500}, auth=EMULATOR_AUTH, timeout=5)
        out = []
        for w in resp.json()["webhooks"]:
            if w["kind"] == "status-callback" and w["response"]["status"] is not None and 200 <= w["response"]["status"] < 300:
                out.append(int(dict(w["parameters"])["SequenceNumber"]))
        return out

    def notes(self) -> set[str]:
        """The chaos the inspector saw happen (`chaos: dropped`, …)."""
        resp = requests.get(f"{self.emulator_url}/emulator/webhooks", params={"limit": 500}, auth=EMULATOR_AUTH, timeout=5)
        return {note for w in resp.json()["webhooks"] for note in w["notes"]}

    def check(self) -> None:
        """Every delivered callback stored once, none lost; after a sync, the app agrees with the emulator."""
        emulated = {c.sid: c for c in self.engine.all_calls() if c.direction != "outbound-dial"}
        assert set(self.sids) <= set(emulated), "the app knows a call the emulator never placed"
        for sid in emulated:
            events = requests.get(f"{self.app_url}/api/calls/{sid}", auth=API_AUTH, timeout=5).json()["events"]
            stored = [e["sequence_number"] for e in events if e["source"] == "callback"]
            assert len(stored) == len(set(stored)), f"{sid}: a callback was stored twice: {stored}"
            assert sorted(stored) == sorted(set(self.delivered(sid))), f"{sid}: delivered and stored callbacks differ"
            assert emulated[sid].ended, f"{sid} is still {emulated[sid].status}"
        resp = requests.post(f"{self.app_url}/api/sync", json={}, auth=API_AUTH, timeout=10)
        assert resp.status_code == 200, resp.text
        app = self.app_calls()
        assert {sid: app[sid]["status"] for sid in emulated} == {sid: c.status for sid, c in emulated.items()}

    def scenario(self) -> None:
        """Three callers and four placed calls, run to their end."""
        for i, caller in enumerate(CALLERS):
            self.ring(caller, hangup_after=4 + i)
        for to in DESTINATIONS:
            assert self.place(to).status_code == 201
        self.step(4)
        self.hang_up_answered()
        self.step(6)


@pytest.mark.parametrize("fault,seen", [
    ({"duplicate": 1.0}, {"chaos: sent twice", "chaos: the duplicate"}),
    ({"reorder": 1.0}, {"chaos: held back behind the next callback"}),
    ({"delay": 1.0, "delay_ms": 1500}, {"chaos: delayed 1500 ms"}),
    ({"drop": 0.5}, {"chaos: dropped"}),
    ({"duplicate": 0.4, "reorder": 0.4, "delay": 0.4, "delay_ms": 700, "drop": 0.2},
     {"chaos: sent twice", "chaos: held back behind the next callback", "chaos: delayed 700 ms", "chaos: dropped"}),
], ids=["duplicated", "reordered", "delayed", "dropped", "mixed"])
def test_status_callback_faults(stack, fault, seen):
    stack.chaos({"seed": 3, "status_callbacks": fault})
    stack.scenario()
    assert seen <= stack.notes()
    stack.check()


def test_webhook_latency(stack):
    stack.chaos({"webhooks": {"latency_ms": 800}})
    stack.scenario()
    stack.check()


def test_rate_limited_rest_api(stack):
    stack.chaos({"rest": {"rate_limit": 1.0}})
    refused = stack.place("+15555550142")
    assert refused.status_code == 400 and refused.json().get("twilio_code") == 20429, refused.text
    assert stack.engine.all_calls() == []  # a 429 is never processed
    stack.chaos({"seed": 5, "rest": {"rate_limit": 0.5}})
    outcomes = [stack.place(to).status_code for to in DESTINATIONS * 2]
    assert set(outcomes) == {201, 400}
    assert len(stack.engine.all_calls()) == outcomes.count(201)
    stack.step(4)
    stack.hang_up_answered()
    stack.step(4)
    stack.check()


def test_calls_per_second_queueing(stack):
    stack.chaos({"rest": {"calls_per_second": 1}})
    for to in DESTINATIONS:
        assert stack.place(to).status_code == 201
    assert [c["status"] for c in stack.app_calls().values()] == ["queued"] * 4
    assert sorted(int(stack.wired.sdk().calls(sid).fetch().queue_time) for sid in stack.sids) == [0, 1000, 2000, 3000]
    stack.step(5)
    stack.hang_up_answered()
    stack.step(4)
    stack.check()


def test_a_lost_create_response(stack):
    stack.chaos({"rest": {"lost_response": 1.0}})
    lost = stack.place("+15555550142")
    assert lost.status_code == 504, lost.text  # the app's request to Twilio timed out
    stack.chaos({})
    (placed,) = stack.engine.all_calls()  # placed anyway, once: the app did not try again
    stack.step(2)
    assert stack.app_calls()[placed.sid]["status"] == "in-progress"  # learned from its callbacks
    stack.hang_up_answered()
    stack.step(2)
    stack.check()


def test_a_bad_day(stack):
    stack.chaos({"preset": "bad-day", "seed": 8, "rest": {"lost_response": 0}})  # a lost response costs a real second: tested above
    for i, caller in enumerate(CALLERS * 2):
        stack.ring(caller, hangup_after=3 + i)
    for to in DESTINATIONS * 2:
        stack.place(to)  # some are refused with 429: an operator would try again
    stack.step(12)
    stack.hang_up_answered()
    stack.step(6)
    stack.chaos({})  # the day is over: the app's sync itself is not rate-limited
    assert {"chaos: dropped", "chaos: sent twice", "chaos: delayed 1500 ms"} <= stack.notes()
    stack.check()
