"""The emulator under load: N simultaneous calls against a fast app, and how late their status
callbacks arrive against the emulated schedule (`make bench-emulator`).

Each call is created through the REST API with all four StatusCallbackEvents; its TwiML is one
fetch of `<Pause length="P"/>`. On the real clock the schedule of a call created (response
received) at t0 is: `initiated` and `ringing` at t0, `in-progress` at t0 + ring, `completed` at
about t0 + ring + P. The `<Pause>` starts when the app has answered the TwiML fetch (as on Twilio), so
`completed` is due P seconds after that. Lateness is when the app received each callback minus
its due time; the TwiML fetch's own lateness (due at t0 + ring) is shown on a line of its own.

Round 2 does the same with one more call whose app URL hangs (until the webhook timeout): the
others' figures must not move. The fast app runs in a process of its own (stdlib HTTP server,
keep-alive), so it does not share the emulator's interpreter lock.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from emulator import create_app  # noqa: E402
from emulator.server import serve_in_thread  # noqa: E402

ACCOUNT_SID = "AC" + "be" * 16
AUTH_TOKEN = "bench-token-0123456789abcdef0123"
NUMBER = "+15555550100"
EVENTS = ("initiated", "ringing", "answered", "completed")


# --------------------------------------------------------------------------- the fast app


def serve_app(port_out, pause: int) -> None:
    """The app: answers TwiML at once, records each callback's arrival; /hang never answers in time."""
    records: list[tuple[str, str, float, float]] = []
    lock = threading.Lock()
    twiml = f'<?xml version="1.0" encoding="UTF-8"?><Response><Pause length="{pause}"/></Response>'.encode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out as two writes

        def log_message(self, *args) -> None:
            pass

        def reply(self, body: bytes, ctype: str = "text/xml") -> None:
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            arrived = time.time()
            length = int(self.headers.get("Content-Length") or 0)
            form = parse_qs(self.rfile.read(length).decode())
            if self.path == "/status":
                with lock:
                    records.append((form["CallSid"][0], form["CallStatus"][0], arrived, arrived))
                self.reply(b"", "text/plain")
            elif self.path == "/hang":
                time.sleep(60)
                self.reply(twiml)
            else:
                self.reply(twiml)
                with lock:  # when the call's <Pause> starts, on the emulator's schedule
                    records.append((form["CallSid"][0], "twiml-fetch", arrived, time.time()))

        def do_GET(self) -> None:
            with lock:
                body = json.dumps(records).encode()
                if self.path == "/reset":
                    records.clear()
            self.reply(body, "application/json")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    port_out.put(server.server_address[1])
    server.serve_forever()


# --------------------------------------------------------------------------- one round


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def place_calls(emulator_url: str, app_url: str, calls: int, hanging: bool, out) -> None:
    """The load client, in a process of its own: create the calls, report {sid: t0}."""
    created: dict[str, float] = {}
    lock = threading.Lock()
    api = f"{emulator_url}/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json"
    local = threading.local()

    def place(i: int, path: str = "/voice") -> None:
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        data = [("To", f"+1555557{i % 10000:04d}"), ("From", NUMBER), ("Url", app_url + path),
                ("StatusCallback", app_url + "/status")] + [("StatusCallbackEvent", e) for e in EVENTS]
        resp = session.post(api, data=data, auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=30)
        t0 = time.time()
        resp.raise_for_status()
        if path == "/voice":
            with lock:
                created[resp.json()["sid"]] = t0

    started = time.time()
    if hanging:
        place(0, "/hang")
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(place, range(1, calls + 1)))
    out.put((created, time.time() - started))


def run_round(emulator_url: str, app_url: str, calls: int, ring: float, pause: int, hanging: bool) -> dict:
    session = requests.Session()
    session.get(app_url + "/reset", timeout=10)
    out: multiprocessing.Queue = multiprocessing.Queue()
    client = multiprocessing.Process(target=place_calls, args=(emulator_url, app_url, calls, hanging, out), daemon=True)
    client.start()
    created, placed_in = out.get(timeout=300)
    client.join(timeout=30)
    expected_total = 4 * calls
    deadline = time.time() + ring + pause + 60
    while True:
        records = [r for r in session.get(app_url + "/records", timeout=10).json() if r[0] in created]
        callbacks = [r for r in records if r[1] != "twiml-fetch"]
        if len(callbacks) >= expected_total or time.time() > deadline:
            break
        time.sleep(0.25)
    # The emulated schedule: dialed at t0, answered at t0 + ring; the <Pause> starts when the app
    # has answered the TwiML fetch (as on Twilio) and ends the call `pause` seconds later.
    paused_at = {sid: served for sid, kind, _, served in records if kind == "twiml-fetch"}
    due = {
        "initiated": lambda sid: created[sid],
        "ringing": lambda sid: created[sid],
        "in-progress": lambda sid: created[sid] + ring,
        "twiml-fetch": lambda sid: created[sid] + ring,
        "completed": lambda sid: paused_at[sid] + pause,
    }
    lateness: dict[str, list[float]] = {kind: [] for kind in due}
    for sid, kind, arrived, _ in records:
        lateness[kind].append(max(0.0, arrived - due[kind](sid)) * 1000)
    every = [ms for kind, values in lateness.items() if kind != "twiml-fetch" for ms in values]
    return {
        "calls": calls, "hanging": hanging, "received": len(callbacks), "expected": expected_total,
        "placed_in": placed_in, "lateness": lateness, "all": every,
    }


def report(result: dict) -> None:
    every = result["all"]
    title = "one app URL hanging" if result["hanging"] else "all app URLs fast"
    print(f"\n{result['calls']} simultaneous calls, {title}: {result['received']}/{result['expected']} callbacks "
          f"(calls placed in {result['placed_in']:.1f} s)")
    print(f"  {'callback':<12} {'n':>5} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for status, values in [*result["lateness"].items(), ("callbacks", every)]:
        if values:
            print(f"  {status:<12} {len(values):>5} {statistics.median(values):>8.1f} {percentile(values, 99):>8.1f} {max(values):>8.1f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--ring", type=float, default=2.0, help="EMULATOR_RING_SECONDS")
    parser.add_argument("--pause", type=int, default=6, help="<Pause length> of every call's TwiML")
    parser.add_argument("--target-ms", type=float, default=100.0, help="p99 lateness to meet")
    args = parser.parse_args()

    ports: multiprocessing.Queue = multiprocessing.Queue()
    app_process = multiprocessing.Process(target=serve_app, args=(ports, args.pause), daemon=True)
    app_process.start()
    app_url = f"http://127.0.0.1:{ports.get(timeout=30)}"
    emulator_app = create_app({
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "TWILIO_PHONE_NUMBER": NUMBER,
        "EMULATOR_VOICE_URL": app_url + "/voice", "EMULATOR_STATUS_CALLBACK": app_url + "/status",
        "EMULATOR_RING_SECONDS": str(args.ring), "EMULATOR_WEBHOOK_TIMEOUT": "15",
    })
    server = serve_in_thread(emulator_app)
    engine = emulator_app.extensions["emulator"]
    try:
        results = [run_round(server.url, app_url, args.calls, args.ring, args.pause, hanging) for hanging in (False, True)]
    finally:
        engine.stop()
        server.stop()
        app_process.terminate()
    for result in results:
        report(result)
    fast, hung = (percentile(r["all"], 99) for r in results)
    ok = all(r["received"] == r["expected"] for r in results) and fast <= args.target_ms and hung <= args.target_ms
    print(f"\np99 lateness: {fast:.1f} ms with every app fast, {hung:.1f} ms with one app URL hanging "
          f"(target ≤ {args.target_ms:.0f} ms): {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
