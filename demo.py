"""The demo: Switchboard and the local Twilio emulator on loopback, wired to each other, with
simulated callers ringing now and then. `make run` starts it; Ctrl-C stops everything.

No Twilio account is needed. The app's SDK talks to the emulator (TWILIO_API_BASE_URL), and the
emulator's phone number sends its voice webhooks and status callbacks to the app. The demo keeps
its own settings (random credentials) in instance/demo.env and its own database, instance/demo.db,
so it never touches a real configuration.
"""
from __future__ import annotations

import argparse
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent
INSTANCE = ROOT / "instance"
DEMO_ENV = INSTANCE / "demo.env"
OUR_NUMBER = "+15555550100"
MAX_LIVE_CALLS = 6  # simulated callers stop ringing while this many of them are on the line
# A simulated caller holds this long (seconds, at random) and then hangs up, unless the call
# ended sooner or a learner pressed "Stay on the line" on its page.
CALLER_PATIENCE = (60, 300)
LIVE_STATUSES = ("queued", "ringing", "in-progress")
# The emulator's scenario numbers, for "Place a call" (the banner and the README list these).
SCENARIOS = [
    ("+15555550142", "answers (any other number does too)"),
    ("+15555550186", "busy"),
    ("+15555550187", "never answers (no-answer after the timeout)"),
    ("+15555550188", "fails at once"),
    ("+15555550189", "answered by a machine (with MachineDetection)"),
    ("+15555550190", "answered by a fax (with MachineDetection)"),
]
CALLERS = [
    ("+15555550101", "Ada Lovelace"), ("+15555550102", "Grace Hopper"),
    ("+15555550103", "Alan Turing"), ("+15555550104", "Katherine Johnson"),
    ("+15555550105", None), ("+15555550106", "Edsger Dijkstra"),
    ("+15555550107", "<script>alert('hostile caller name')</script>"),
    ("+15555550108", "Margaret Hamilton"), ("+15555550109", None),
]


def demo_secrets() -> dict[str, str]:
    """Random credentials for this machine's demo, made once and kept in instance/demo.env."""
    INSTANCE.mkdir(exist_ok=True)
    if not DEMO_ENV.exists():
        values = {
            "TWILIO_ACCOUNT_SID": "AC" + secrets.token_hex(16),
            "TWILIO_AUTH_TOKEN": secrets.token_hex(16),
            "SECRET_KEY": secrets.token_hex(32),
            "ADMIN_PASSWORD": secrets.token_urlsafe(9),
        }
        DEMO_ENV.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
        DEMO_ENV.chmod(0o600)
    pairs = (line.split("=", 1) for line in DEMO_ENV.read_text().splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs}


def port_is_free(port: int) -> bool:
    """True if nothing listens on 127.0.0.1:port."""
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def wait_for(url: str, process: subprocess.Popen, name: str, timeout: float = 60) -> None:
    """Wait until `url` answers 200, or stop with a clear message."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"The {name} stopped during start-up (exit code {process.returncode}).")
        try:
            if requests.get(url, timeout=2).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise SystemExit(f"The {name} did not answer at {url} within {timeout:.0f} s.")


def simulated_callers_on_the_line(emulator_url: str, auth: tuple[str, str]) -> int:
    """How many simulated callers are on the line (calls a learner placed do not count)."""
    response = requests.get(f"{emulator_url}/emulator/calls", auth=auth, timeout=10)
    response.raise_for_status()
    numbers = {number for number, _ in CALLERS}
    return sum(call["status"] in LIVE_STATUSES and call["direction"] == "inbound"
               and call["from"] in numbers for call in response.json()["calls"])


def ring(emulator_url: str, auth: tuple[str, str], rng: random.Random) -> str:
    """A simulated caller rings our number, holds for CALLER_PATIENCE, then hangs up."""
    number, name = rng.choice(CALLERS)
    payload = {"from": number, "to": OUR_NUMBER,
               "hangup_after": round(rng.uniform(*CALLER_PATIENCE))}
    if name:
        payload["caller_name"] = name
    response = requests.post(f"{emulator_url}/emulator/incoming", json=payload, auth=auth, timeout=10)
    response.raise_for_status()
    return f"{number} ({name or 'no caller ID name'})"


def callers_hang_up(emulator_url: str, auth: tuple[str, str], app_url: str,
                    login: tuple[str, str], timeout: float = 5.0) -> int:
    """Every call still on the line ends, and the app hears so, before the demo stops: the
    emulator keeps its calls in memory, so otherwise demo.db would keep them live forever.
    Returns how many calls the app still thinks are live after `timeout` (chaos can drop a
    callback)."""
    response = requests.get(f"{emulator_url}/emulator/calls", auth=auth, timeout=5)
    response.raise_for_status()
    sids = {call["call_sid"] for call in response.json()["calls"] if call["status"] in LIVE_STATUSES}
    for sid in sids:
        requests.post(f"{emulator_url}/emulator/calls/{sid}/hangup", auth=auth, timeout=5)
    deadline = time.monotonic() + timeout
    while sids and time.monotonic() < deadline:
        time.sleep(0.2)
        live = requests.get(f"{app_url}/api/calls", params={"active": 1, "per_page": 100},
                            auth=login, timeout=5)
        live.raise_for_status()
        sids &= {call["sid"] for call in live.json()["calls"]}
    return len(sids)


def _interrupt(*_) -> None:
    """SIGTERM stops the demo the way Ctrl-C does."""
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description="Run the Switchboard demo on loopback.")
    parser.add_argument("--app-port", type=int, default=int(os.environ.get("DEMO_APP_PORT", 5000)))
    parser.add_argument("--emulator-port", type=int,
                        default=int(os.environ.get("DEMO_EMULATOR_PORT", 8010)))
    parser.add_argument("--call-every", type=float, default=30,
                        help="average seconds between simulated incoming calls (0: none)")
    args = parser.parse_args()

    for port in (args.app_port, args.emulator_port):
        if not port_is_free(port):
            raise SystemExit(f"Port {port} is in use. Stop what uses it, or pass "
                             f"--app-port/--emulator-port (or DEMO_APP_PORT/DEMO_EMULATOR_PORT).")
    creds = demo_secrets()
    app_url = f"http://127.0.0.1:{args.app_port}"
    emulator_url = f"http://127.0.0.1:{args.emulator_port}"
    shared = {
        "TWILIO_ACCOUNT_SID": creds["TWILIO_ACCOUNT_SID"],
        "TWILIO_AUTH_TOKEN": creds["TWILIO_AUTH_TOKEN"],
        "TWILIO_PHONE_NUMBER": OUR_NUMBER,
        "EMULATOR_URL": emulator_url,
    }
    app_env = {
        **os.environ, **shared,
        "DATABASE_URL": f"sqlite:///{INSTANCE / 'demo.db'}",
        "TWILIO_API_BASE_URL": emulator_url,
        "PUBLIC_URL": app_url,
        "TWILIO_VALIDATE_SIGNATURES": "true",
        "SECRET_KEY": creds["SECRET_KEY"],
        "ADMIN_USERNAME": "admin",
        "ADMIN_PASSWORD": creds["ADMIN_PASSWORD"],
    }
    # The emulator keeps its calls in memory, so it runs as one process: this one.
    from emulator import create_app as create_emulator
    from emulator.server import serve_in_thread
    emulator = serve_in_thread(create_emulator({
        **shared,
        "EMULATOR_VOICE_URL": f"{app_url}/voice",
        "EMULATOR_STATUS_CALLBACK": f"{app_url}/status",
        # Twilio's Debugger webhook: errors the emulator meets show on the call's Journey.
        "EMULATOR_DEBUGGER_URL": f"{app_url}/debugger",
        "EMULATOR_PANEL_URL": app_url,  # the emulator's pages link to the panel's call pages
        # A hold track lasts minutes on a real phone; 20 s keeps the transcript readable.
        "EMULATOR_PLAY_SECONDS": os.environ.get("EMULATOR_PLAY_SECONDS", "20"),
    }), port=args.emulator_port)
    processes = {
        "app": subprocess.Popen(
            # gunicorn.conf.py (read from ROOT) as in production, on the demo's port.
            [sys.executable, "-m", "gunicorn", "app:create_app()", "--bind",
             f"127.0.0.1:{args.app_port}", "--no-control-socket"],
            # Its own session: Ctrl-C reaches only this script, which ends the calls on
            # the line while the app can still hear their callbacks, then stops it.
            cwd=ROOT, env={**app_env, "GUNICORN_ACCESS_LOG": ""}, start_new_session=True),
    }

    auth = (creds["TWILIO_ACCOUNT_SID"], creds["TWILIO_AUTH_TOKEN"])

    def stop(*_):
        if processes["app"].poll() is None:
            try:
                left = callers_hang_up(emulator_url, auth, app_url, ("admin", creds["ADMIN_PASSWORD"]))
                if left:
                    print(f"  {left} call(s) stay marked live in demo.db: their last callback was lost.", flush=True)
            except requests.RequestException as error:
                print(f"  could not end the calls on the line: {error}", flush=True)
        for process in processes.values():
            if process.poll() is None:
                process.terminate()
        for process in processes.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        emulator.stop()

    signal.signal(signal.SIGTERM, _interrupt)
    try:
        wait_for(f"{app_url}/healthz", processes["app"], "app")
        scenarios = "\n".join(f"        {number}  {what}" for number, what in SCENARIOS)
        print(f"""
  Switchboard demo is running (Ctrl-C stops it).

    Operator panel   {app_url}/admin
    Log in as        admin / {creds['ADMIN_PASSWORD']}   (kept in instance/demo.env)
    Local Twilio     {emulator_url}/   (the emulator: every call and what its caller heard)

  Simulated callers ring {OUR_NUMBER} about every {args.call_every:.0f} s (up to {MAX_LIVE_CALLS} on the
  line at once); each holds {CALLER_PATIENCE[0] // 60}-{CALLER_PATIENCE[1] // 60} minutes and then hangs up, unless you press
  "Stay on the line" on its page. Try this:
    - watch a call appear live, then open it and press "Send TwiML" with the "Say a message"
      preset: the transcript shows what the caller heard;
    - "Redirect" a call, "Hang up" one, or "Place a call" to a scenario number:
{scenarios}
    - ring it yourself with "Simulate incoming call" in the panel;
    - open a call's Journey: every webhook, status callback and SDK request, with the
      TwiML we answered, the SDK call and its curl, and each Twilio error explained;
    - open the emulator's page to see each call's transcript, as the caller heard it;
    - press "Have a bad day" there (or start with EMULATOR_CHAOS=bad-day make run): callbacks
      arrive twice, late, out of order or not at all, and the REST API answers 429 now and then.
""", flush=True)
        rng = random.Random()
        next_call = time.monotonic()
        while True:
            for name, process in processes.items():
                if process.poll() is not None:
                    raise SystemExit(f"The {name} stopped (exit code {process.returncode}).")
            if args.call_every > 0 and time.monotonic() >= next_call:
                try:
                    if simulated_callers_on_the_line(emulator_url, auth) < MAX_LIVE_CALLS:
                        print(f"  ☎  incoming call from {ring(emulator_url, auth, rng)}", flush=True)
                except requests.RequestException as error:
                    print(f"  could not ring the app: {error}", flush=True)
                next_call = time.monotonic() + rng.uniform(0.5, 1.5) * args.call_every
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\nStopping the app and the emulator…", flush=True)
        return 0
    finally:
        stop()


if __name__ == "__main__":
    raise SystemExit(main())
