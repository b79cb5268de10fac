"""The demo's own behaviour around the app and the emulator."""
from __future__ import annotations

import time

import requests

import demo
from models import TERMINAL_STATUSES
from support import ACCOUNT_SID, ADMIN_PASSWORD, AUTH_TOKEN, wire

LOGIN = ("admin", ADMIN_PASSWORD)
EMULATOR_AUTH = (ACCOUNT_SID, AUTH_TOKEN)


def statuses(app_url: str, sids: list[str]) -> dict[str, str]:
    """Each call's status as the app recorded it."""
    return {sid: requests.get(f"{app_url}/api/calls/{sid}", auth=LOGIN, timeout=5).json()["status"]
            for sid in sids}


def wait_until(condition, what: str, timeout: float = 60.0) -> None:
    """Wait for a condition that the emulator's real clock brings about (no fixed sleep)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"still waiting: {what}"
        time.sleep(0.05)


def test_stopping_the_demo_ends_the_calls_on_the_line_and_the_app_hears_so(app):
    """The emulator keeps its calls in memory: the demo ends them while the app still listens,
    or demo.db would show them live forever after a restart."""
    wired = wire(app, EMULATOR_RING_SECONDS="600")  # the real clock: the demo's own
    try:
        inbound = requests.post(f"{wired.emulator_url}/emulator/incoming",
                                json={"from": "+15555550101"}, auth=EMULATOR_AUTH,
                                timeout=5).json()["call_sid"]
        placed = requests.post(f"{wired.app_url}/api/calls", json={"to": "+15555550142"},
                               auth=LOGIN, timeout=10)
        assert placed.status_code == 201, placed.text
        outbound = placed.json()["call_sid"]
        wait_until(lambda: statuses(wired.app_url, [inbound, outbound])
                   == {inbound: "in-progress", outbound: "ringing"}, "both calls live")

        left = demo.callers_hang_up(wired.emulator_url, EMULATOR_AUTH, wired.app_url, LOGIN,
                                    timeout=60)

        assert left == 0
        recorded = statuses(wired.app_url, [inbound, outbound])
        assert recorded[inbound] == "completed"
        assert recorded[outbound] in TERMINAL_STATUSES
    finally:
        wired.stop()
