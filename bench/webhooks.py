"""Benchmark: /voice + /status on gunicorn, against a bare Flask endpoint, same run, per engine.

Run with `make bench` (or `python bench/webhooks.py [--engine sqlite|postgresql|both]`). The
load client runs on CPU 0 and both servers on the remaining CPUs, each served the same way
(gunicorn with gunicorn.conf.py, same worker count). The bare endpoint does the same signature
check and the same statements with the raw driver: sqlite3 on a fresh SQLite file with the
same schema, WAL and synchronous=FULL; psycopg on a database of the same throwaway PostgreSQL
server (the tests' own: fsync off, so this measures the code, not the disk). Both servers run
at once and take turns in short slices, so that each slice of the app is compared with the
bare slice beside it (this machine's speed drifts from one second to the next). Prints
throughput and p50/p99 latency per server and concurrency, the ratios, and whether the
targets are met (the exit status is 1 if one is missed):
  - throughput >= 0.8 x the bare endpoint's at 24 concurrent clients
  - p99 <= 1.2 x the bare endpoint's p99 at 24 clients (each slice's p99 against the bare
    slice's beside it, the median of those ratios; the ratio of the p99s pooled over the
    run is printed too)
  - p99 < 15 ms with one client at a time
"""
from __future__ import annotations

import argparse
import http.client
import os
import secrets
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from twilio.request_validator import RequestValidator  # noqa: E402

from postgres import PostgresServer  # noqa: E402
from servers import gunicorn  # noqa: E402

TOKEN = secrets.token_hex(16)
ACCOUNT = "AC" + secrets.token_hex(16)


def workload(count: int) -> list[tuple[str, dict]]:
    """Alternating /voice (a new inbound call) and /status (the end of the previous one)."""
    items = []
    for _ in range(count // 2):
        sid = "CA" + secrets.token_hex(16)
        base = {"AccountSid": ACCOUNT, "ApiVersion": "2010-04-01", "CallSid": sid,
                "From": "+15555550123", "To": "+15555550100", "Direction": "inbound",
                "Called": "+15555550100", "Caller": "+15555550123"}
        items.append(("/voice", {**base, "CallStatus": "ringing"}))
        items.append(("/status", {**base, "CallStatus": "completed", "SequenceNumber": "0",
                                  "CallDuration": "31", "CallbackSource": "call-progress-events",
                                  "Timestamp": "Mon, 23 Nov 2026 10:00:00 +0000"}))
    return items


def run_load(base_url: str, items, clients: int) -> tuple[float, list[float]]:
    """Send every item from `clients` threads; return (requests per second, latencies in s)."""
    host, port = base_url.removeprefix("http://").split(":")
    validator = RequestValidator(TOKEN)
    prepared = []
    for path, params in items:
        body = urlencode(params)
        signature = validator.compute_signature(base_url + path, params)
        prepared.append((path, body, signature))
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    cursor = iter(prepared)

    def client() -> None:
        own = []
        while True:
            with lock:
                item = next(cursor, None)
            if item is None:
                break
            path, body, signature = item
            started = time.perf_counter()
            connection = http.client.HTTPConnection(host, int(port), timeout=30)
            connection.request("POST", path, body=body, headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": signature})
            response = connection.getresponse()
            response.read()
            connection.close()
            own.append(time.perf_counter() - started)
            if response.status not in (200, 204):
                failures.append(f"{path}: {response.status}")
        with lock:
            latencies.extend(own)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise SystemExit(f"{len(failures)} requests failed, e.g. {failures[:3]}")
    return len(prepared) / elapsed, latencies


def percentile(values: list[float], fraction: float) -> float:
    """The value below which `fraction` of the sorted values fall."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def measure(args, postgres: PostgresServer | None, pin: list[str]) -> dict[tuple[str, int], list]:
    """Both servers up at once, on `postgres` if given, else on SQLite, measured in short
    alternating slices (bare, app, app, bare, …): this machine's speed drifts from second to
    second, and a slice of one is compared with the slice of the other next to it.
    {(server, clients): [(rate, latencies), …]}, slice by slice."""
    from app import create_app
    results: dict[tuple[str, int], list] = {}
    with tempfile.TemporaryDirectory() as tmp:
        if postgres:
            app_url, bare_url = postgres.new_database(), postgres.new_database()
            bare_database = bare_url.replace("postgresql+psycopg://", "postgresql://")
        else:
            app_url, bare_url = f"sqlite:///{tmp}/app.db", f"sqlite:///{tmp}/bare.db"
            bare_database = f"{tmp}/bare.db"
        app_env = {"DATABASE_URL": app_url, "TWILIO_AUTH_TOKEN": TOKEN,
                   "TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_VALIDATE_SIGNATURES": "true",
                   "PUBLIC_URL": "", "SECRET_KEY": "bench", "ADMIN_PASSWORD": "bench",
                   "EMULATOR_URL": "", "TWILIO_API_BASE_URL": ""}
        # The bare endpoint's database gets the app's schema (same tables, same indexes).
        from models import db
        schema_app = create_app({"SQLALCHEMY_DATABASE_URI": bare_url, "SECRET_KEY": "x",
                                 "TWILIO_AUTH_TOKEN": TOKEN, "ADMIN_PASSWORD": "bench"})
        with schema_app.app_context():
            db.engine.dispose()
        bare_env = {"BARE_DATABASE": bare_database, "TWILIO_AUTH_TOKEN": TOKEN}
        served = lambda env, target: gunicorn(  # noqa: E731
            {**env, "GUNICORN_ACCESS_LOG": ""}, workers=args.workers, app_target=target,
            wrapper=pin)
        with served(bare_env, "bench.bare_app:create_app()") as (bare, _), \
                served(app_env, "app:create_app()") as (app, _):
            servers = [("bare", bare), ("switchboard", app)]
            for _name, url in servers:
                run_load(url, workload(args.warmup), 8)  # warm up every worker
            for clients, count, slices in ((1, args.requests // 4, 2),
                                           (24, args.requests, args.slices)):
                for index in range(slices):
                    for name, url in servers if index % 2 == 0 else servers[::-1]:
                        rate, latencies = run_load(url, workload(count), clients)
                        results.setdefault((name, clients), []).append((rate, latencies))
    return results


def report(engine: str, results) -> bool:
    """Print the table, the ratios and the targets for one engine; True if all are met."""
    def summary(name: str, clients: int) -> tuple[float, float, float]:
        runs = results[(name, clients)]
        rate = statistics.median(r for r, _ in runs)
        latencies = [value for _, values in runs for value in values]
        return rate, percentile(latencies, 0.5) * 1000, percentile(latencies, 0.99) * 1000

    print(f"\n== {engine}\n{'server':<12} {'clients':>7} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for (name, clients) in sorted(results, key=lambda k: (k[1], k[0])):
        rate, p50, p99 = summary(name, clients)
        print(f"{name:<12} {clients:>7} {rate:>8.0f} {p50:>8.2f} {p99:>8.2f}")

    # Each slice of the app against the bare slice beside it; the median of those ratios. So
    # for p99 too: pooled over the run, one slice that met a hiccup of this machine's (a tenth
    # of its requests slow) is the whole top percent, whichever server it hit.
    pairs = list(zip(results[("switchboard", 24)], results[("bare", 24)], strict=True))
    paired = [app_rate / bare_rate for (app_rate, _), (bare_rate, _) in pairs]
    paired_p99 = [percentile(app, 0.99) / percentile(bare, 0.99) for (_, app), (_, bare) in pairs]
    throughput_ratio, p99_ratio = statistics.median(paired), statistics.median(paired_p99)
    pooled_p99_ratio = summary("switchboard", 24)[2] / summary("bare", 24)[2]
    app1 = summary("switchboard", 1)
    checks = [
        (f"throughput ratio at 24 clients: {throughput_ratio:.2f} (target >= 0.8; "
         f"median of {len(paired)} paired slices, {min(paired):.2f} to {max(paired):.2f})",
         throughput_ratio >= 0.8),
        (f"p99 ratio at 24 clients: {p99_ratio:.2f} x bare (target <= 1.2; median of "
         f"{len(paired_p99)} paired slices, {min(paired_p99):.2f} to {max(paired_p99):.2f}; "
         f"pooled over the run: {pooled_p99_ratio:.2f})", p99_ratio <= 1.2),
        (f"p99 with one client: {app1[2]:.2f} ms (target < 15 ms)", app1[2] < 15),
    ]
    for text, ok in checks:
        print(("PASS  " if ok else "MISS  ") + text)
    return all(ok for _, ok in checks)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--requests", type=int, default=1000, help="requests per slice")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers per server")
    parser.add_argument("--slices", type=int, default=12, help="slices per server at 24 clients")
    parser.add_argument("--warmup", type=int, default=1000, help="requests before measuring")
    args = parser.parse_args()

    engines = ["sqlite", "postgresql"] if args.engine == "both" else [args.engine]
    # Started before the client pins itself to CPU 0: PostgreSQL may use every CPU.
    postgres = PostgresServer().start() if "postgresql" in engines else None
    cpus = sorted(os.sched_getaffinity(0))
    client_cpu, server_cpus = {cpus[0]}, set(cpus[1:]) or {cpus[0]}
    os.sched_setaffinity(0, client_cpu)
    pin = ["taskset", "-c", ",".join(map(str, sorted(server_cpus)))]
    print(f"client on CPU {cpus[0]}, servers on CPUs {sorted(server_cpus)}; "
          f"gunicorn --workers {args.workers} (gunicorn.conf.py); "
          f"{args.slices} alternating slices of {args.requests} requests per server")
    met = True
    try:
        for engine in engines:
            met &= report(engine, measure(args, postgres if engine == "postgresql" else None, pin))
    finally:
        if postgres:
            postgres.stop()
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
