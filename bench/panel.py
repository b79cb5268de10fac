"""Benchmark: the live list with 1,000 live calls. Run: `make bench-panel`.

1. Server time per poll, in-process (Flask test client, median of --repeat):
   - an unchanged poll (cursor current, X-Seen as live.js sends it): target <= 3 ms;
   - a poll after one call changed: target <= 10 ms and <= 10 KB.
   Beside it, in the same run, the whole-table approach the panel used before: every poll
   loaded every live row to fingerprint it, and any change re-rendered the whole table.
2. Fifty operators on gunicorn (2 workers, on CPU 1; this client on CPU 0): each polls every
   second as live.js does while one call changes every 100 ms (signed status callbacks). It
   prints the server's CPU per wall-clock second with the changes alone, with the 50 pollers
   added (target: the pollers cost <= 0.5 core), and with 50 pollers asking for the whole
   table instead (the baseline), plus bytes per poll.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import re
import secrets
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import requests  # noqa: E402
from twilio.request_validator import RequestValidator  # noqa: E402

from panel import FEED_LAG  # noqa: E402
from servers import gunicorn  # noqa: E402

TOKEN = secrets.token_hex(16)
ACCOUNT = "AC" + secrets.token_hex(16)
PASSWORD = "bench-password"
ROW = re.compile(r'<tr id="call-(CA[0-9a-f]{32})"[^>]*data-version="([^"]+)"')
GONE = re.compile(r'<tr data-sid="(CA[0-9a-f]{32})" data-version="([^"]+)" data-remove')
CURSOR = re.compile(r'data-cursor="([^"]+)"')


def fill(app, count: int) -> list[str]:
    """`count` live calls, created a second apart, as if rung over the last hours."""
    from models import Call, db, utcnow
    now = utcnow()
    rows = []
    for i in range(count):
        at = now - timedelta(seconds=count - i)
        rows.append({"sid": "CA" + secrets.token_hex(16), "account_sid": ACCOUNT,
                     "from_number": f"+1555555{i % 10000:04d}", "to_number": "+15555550100",
                     "direction": "inbound", "caller_name": f"Caller {i}",
                     "status": "in-progress", "status_rank": 3, "created_at": at,
                     "updated_at": now, "changed_at": at})
    with app.app_context():
        db.session.execute(db.insert(Call), rows)
        db.session.commit()
    return [row["sid"] for row in rows]


class Feed:
    """What live.js keeps: the cursor and the versions received within the lag window."""

    def __init__(self, html: str):
        self.cursor = re.search(r'id="live-calls"[^>]*data-cursor="([^"]+)"', html).group(1)
        self.recent: dict[str, str] = {}

    def request(self) -> tuple[dict, dict]:
        """(query string, headers) of the next poll."""
        seen = ",".join(f"{sid}@{version}" for sid, version in self.recent.items())
        return {"since": self.cursor}, {"X-Seen": seen}

    def received(self, html: str) -> None:
        """Take in a poll's answer."""
        self.cursor = CURSOR.search(html).group(1)
        self.recent.update(ROW.findall(html))
        self.recent.update(GONE.findall(html))
        floor = (datetime.fromisoformat(self.cursor) - FEED_LAG).isoformat(timespec="microseconds")
        for sid in [s for s, v in self.recent.items() if v <= floor]:
            del self.recent[sid]


def status_callback(sid: str, status: str) -> dict:
    return {"AccountSid": ACCOUNT, "ApiVersion": "2010-04-01", "CallSid": sid,
            "CallStatus": status, "From": "+15555550123", "To": "+15555550100",
            "Direction": "inbound", "Called": "+15555550100", "Caller": "+15555550123"}


def median_ms(action, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        action()
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


def in_process(args, directory: str) -> dict:
    """Part 1: server time per poll, feed against whole table."""
    from app import create_app
    from panel import _live_calls
    app = create_app({"SECRET_KEY": "bench", "ADMIN_PASSWORD": PASSWORD,
                      "SQLALCHEMY_DATABASE_URI": f"sqlite:///{directory}/inproc.db",
                      "WTF_CSRF_ENABLED": False, "TWILIO_AUTH_TOKEN": TOKEN,
                      "TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_VALIDATE_SIGNATURES": False})
    sids = fill(app, args.calls)
    client = app.test_client()
    assert client.post("/login", data={"username": "admin", "password": PASSWORD}).status_code == 302
    feed = Feed(client.get("/admin").get_data(as_text=True))
    time.sleep(FEED_LAG.total_seconds() + 0.1)  # past the lag window: nothing is recent

    def poll():
        query, headers = feed.request()
        response = client.get("/admin/live", query_string=query, headers=headers)
        if response.status_code == 200:
            feed.received(response.get_data(as_text=True))
        return response

    poll()
    assert poll().status_code == 204
    unchanged = median_ms(lambda: poll(), args.repeat)
    changed_times, changed_bytes = [], []
    for i in range(args.repeat):
        client.post("/status", data=status_callback(sids[i], "completed"))
        began = time.perf_counter()
        response = poll()
        changed_times.append((time.perf_counter() - began) * 1000)
        assert response.status_code == 200, response.status_code
        changed_bytes.append(len(response.data))

    def fingerprint_everything():  # the old unchanged poll: every live row, hashed
        with app.test_request_context("/admin/live"):
            from flask_login import login_user

            from models import Operator, db
            login_user(db.session.get(Operator, 1))
            calls = _live_calls(False)
            hashlib.sha256(repr([(c.sid, c.status, c.from_number, c.to_number, c.caller_name,
                                  c.direction, c.created_at, c.handler_id) for c in calls])
                           .encode()).hexdigest()

    whole_unchanged = median_ms(fingerprint_everything, args.repeat)
    whole = []
    whole_changed = median_ms(lambda: whole.append(len(client.get("/admin/live").data)),
                              args.repeat)
    return {"unchanged": unchanged, "changed": statistics.median(changed_times),
            "changed_bytes": statistics.median(changed_bytes),
            "whole_unchanged": whole_unchanged, "whole_changed": whole_changed,
            "whole_bytes": statistics.median(whole)}


def cpu_seconds(master: int) -> float:
    """User + system CPU of a process and its children (gunicorn's master and workers)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry) == master or int(fields[1]) == master:
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def operators(args, directory: str) -> dict:
    """Part 2: 50 pollers on gunicorn while one call changes every 100 ms."""
    from app import create_app
    url = f"sqlite:///{directory}/served.db"
    sids = fill(create_app({"SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": url,
                            "ADMIN_PASSWORD": PASSWORD}), args.calls)
    env = {"DATABASE_URL": url, "TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_ACCOUNT_SID": ACCOUNT,
           "SECRET_KEY": "bench", "ADMIN_PASSWORD": PASSWORD, "PUBLIC_URL": "",
           "EMULATOR_URL": "", "TWILIO_API_BASE_URL": "", "GUNICORN_ACCESS_LOG": ""}
    pin = ["taskset", "-c", "1"] if os.cpu_count() and os.cpu_count() > 1 else []
    results = {}
    with gunicorn(env, workers=2, wrapper=pin) as (base, process):
        validator = RequestValidator(TOKEN)
        sessions = []
        for _ in range(args.operators):
            session = requests.Session()
            page = session.get(f"{base}/login").text
            token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
            session.post(f"{base}/login", data={"username": "admin", "password": PASSWORD,
                                                 "csrf_token": token})
            sessions.append(session)
        live = list(sids)

        def change(stop: threading.Event):
            tick = 0
            while not stop.is_set():
                began = time.monotonic()
                if tick % 2:
                    sid, status = "CA" + secrets.token_hex(16), "ringing"
                    live.append(sid)
                else:
                    sid, status = live.pop(0), "completed"
                params = status_callback(sid, status)
                signature = validator.compute_signature(f"{base}/status", params)
                try:
                    requests.post(f"{base}/status", data=params, timeout=30,
                                  headers={"X-Twilio-Signature": signature})
                except requests.RequestException:
                    pass  # a saturated server (the whole-table baseline): the next one goes on
                tick += 1
                stop.wait(max(0.0, 0.1 - (time.monotonic() - began)))

        def poller(session, feed: Feed, whole: bool, stop: threading.Event, stats: list,
                   warm: list):
            polls = 0
            while not stop.is_set():
                began = time.monotonic()
                try:
                    if whole:
                        response = session.get(f"{base}/admin/live", timeout=60)
                    else:
                        query, headers = feed.request()
                        response = session.get(f"{base}/admin/live", params=query,
                                               headers=headers, timeout=60)
                        if response.status_code == 200:
                            feed.received(response.text)
                except requests.RequestException:
                    continue  # the saturated baseline: this poll is lost
                stats.append((response.status_code, len(response.content),
                              time.monotonic() - began))
                polls += 1
                if polls == 3:
                    warm.append(1)
                stop.wait(max(0.0, 1.0 - (time.monotonic() - began)))

        for name, pollers, whole in (("changes alone", 0, False),
                                     ("changes + 50 pollers", args.operators, False),
                                     ("changes + 50 whole-table pollers", args.operators, True)):
            stop, stats, warm = threading.Event(), [], []
            feeds = [Feed(sessions[i].get(f"{base}/admin").text) for i in range(pollers)]
            threads = [threading.Thread(target=change, args=(stop,))]
            for i in range(pollers):
                threads.append(threading.Thread(
                    target=poller, args=(sessions[i], feeds[i], whole, stop, stats, warm)))
            for thread in threads:
                thread.start()
            deadline = time.monotonic() + 60
            while len(warm) < pollers and time.monotonic() < deadline:
                time.sleep(0.1)  # every poller has caught up with what changed as it loaded
            stats.clear()
            cpu_before, wall_before = cpu_seconds(process.pid), time.monotonic()
            time.sleep(args.seconds)
            cpu = (cpu_seconds(process.pid) - cpu_before) / (time.monotonic() - wall_before)
            polls = list(stats)
            stop.set()
            for thread in threads:
                thread.join()
            results[name] = {
                "cpu": cpu, "polls": len(polls) / args.seconds,
                "bytes": statistics.mean(b for _, b, _ in polls) if polls else 0,
                "p50_ms": statistics.median(t for _, _, t in polls) * 1000 if polls else 0,
            }
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--operators", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    if os.cpu_count() and os.cpu_count() > 1:
        os.sched_setaffinity(0, {0})
    with tempfile.TemporaryDirectory(prefix="switchboard-bench-") as directory:
        one = in_process(args, directory)
        print(f"Server time per poll, {args.calls:,} live calls (median of {args.repeat}):")
        print(f"  unchanged poll   feed {one['unchanged']:6.2f} ms   whole table "
              f"{one['whole_unchanged']:6.2f} ms   ratio {one['unchanged'] / one['whole_unchanged']:.3f}"
              f"   target <= 3 ms: {'met' if one['unchanged'] <= 3 else 'MISSED'}")
        print(f"  one call changed feed {one['changed']:6.2f} ms   whole table "
              f"{one['whole_changed']:6.2f} ms   ratio {one['changed'] / one['whole_changed']:.3f}"
              f"   target <= 10 ms: {'met' if one['changed'] <= 10 else 'MISSED'}")
        print(f"  bytes, changed   feed {one['changed_bytes']:8,.0f}   whole table "
              f"{one['whole_bytes']:10,.0f}   ratio {one['changed_bytes'] / one['whole_bytes']:.4f}"
              f"   target <= 10 KB: {'met' if one['changed_bytes'] <= 10_240 else 'MISSED'}")
        two = operators(args, directory)
        print(f"\n{args.operators} operators polling every second, one change every 100 ms "
              f"(gunicorn, 2 workers on one CPU), {args.seconds:.0f} s each:")
        for name, row in two.items():
            print(f"  {name:34} server CPU {row['cpu']:5.2f} core   {row['polls']:5.1f} polls/s"
                  f"   {row['bytes']:9,.0f} B/poll   p50 {row['p50_ms']:6.1f} ms")
        pollers = two["changes + 50 pollers"]["cpu"] - two["changes alone"]["cpu"]
        whole = two["changes + 50 whole-table pollers"]["cpu"] - two["changes alone"]["cpu"]
        print(f"  the pollers cost {pollers:.2f} core (whole table: {whole:.2f}, and it served "
              f"{two['changes + 50 whole-table pollers']['polls']:.1f} of 50 polls/s); "
              f"target <= 0.5 core: {'met' if pollers <= 0.5 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
