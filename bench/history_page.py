"""Benchmark: the history page with 100k calls. Run: `make bench-history`.

Fills a fresh SQLite file (100,000 calls by default), logs in, and times the first and last
page (and filtered pages) through the Flask test client: server time per page, median of N.
Target: under 100 ms for the first and the last page alike. As a baseline measured in the same
run, raw sqlite3 runs the bare queries such a page needs (a count and 50 rows at the same
offset); the ratio says what the ORM, the template and Flask add on top.
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from app import create_app  # noqa: E402
from models import STATUS_RANK, Call, db  # noqa: E402

TARGET_MS = 100


def fill(app, count: int) -> None:
    """Insert `count` calls, spread over the last 90 days, in bulk."""
    rng = random.Random(7)
    statuses = ["completed"] * 8 + ["busy", "no-answer", "failed", "canceled", "in-progress"]
    start = datetime(2026, 1, 1)
    rows = []
    for i in range(count):
        status = rng.choice(statuses)
        created = start + timedelta(seconds=i * 77)
        rows.append({
            "sid": f"CA{i:032x}", "account_sid": "AC" + "0" * 32,
            "from_number": f"+1555555{rng.randrange(10000):04d}", "to_number": "+15555550100",
            "direction": "inbound", "status": status, "status_rank": STATUS_RANK[status],
            "duration": rng.randrange(600), "created_at": created, "updated_at": created,
        })
    with app.app_context():
        for chunk in range(0, count, 10_000):
            db.session.execute(db.insert(Call), rows[chunk:chunk + 10_000])
        db.session.commit()
        db.session.execute(db.text("ANALYZE"))
        db.session.commit()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    directory = tempfile.mkdtemp(prefix="switchboard-bench-")
    app = create_app({
        "SECRET_KEY": "bench", "ADMIN_PASSWORD": "bench", "ADMIN_USERNAME": "admin",
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{directory}/bench.db", "WTF_CSRF_ENABLED": False,
        "TWILIO_AUTH_TOKEN": "bench",
    })
    began = time.perf_counter()
    fill(app, args.calls)
    print(f"filled {args.calls:,} calls in {time.perf_counter() - began:.1f} s ({directory})")
    client = app.test_client()
    assert client.post("/login", data={"username": "admin", "password": "bench"}).status_code == 302
    last = -(-args.calls // 50)
    cases = [
        ("first page", "/admin/history"),
        ("last page", f"/admin/history?page={last}"),
        ("middle page", f"/admin/history?page={last // 2}"),
        ("status=busy, first", "/admin/history?status=busy"),
        ("status=busy, last", f"/admin/history?status=busy&page={args.calls // 13 // 50}"),
        ("number prefix +1555555012", "/admin/history?number=%2B1555555012"),
        ("number contains 0123", "/admin/history?number=0123"),
        ("name contains ada", "/admin/history?name=ada"),
        ("one week, first", "/admin/history?from=2026-02-01&to=2026-02-07"),
        ("one week, last", "/admin/history?from=2026-02-01&to=2026-02-07&page=157"),
        ("busy in one week", "/admin/history?status=busy&from=2026-02-01&to=2026-02-07"),
        ("direction=inbound, last", f"/admin/history?direction=inbound&page={last}"),
    ]
    connection = sqlite3.connect(f"{directory}/bench.db")

    def bare_page(page: int) -> None:
        connection.execute("SELECT count(*) FROM calls").fetchone()
        connection.execute("SELECT * FROM calls ORDER BY created_at DESC, sid DESC LIMIT 50 OFFSET ?",
                           ((page - 1) * 50,)).fetchall()

    baselines = {}
    for label, page in (("first page", 1), ("last page", last)):
        timings = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            bare_page(page)
            timings.append((time.perf_counter() - t0) * 1000)
        baselines[label] = statistics.median(timings)
        print(f"{'bare sqlite3, ' + label:28} median {baselines[label]:6.1f} ms")
    connection.close()
    failed = False
    for label, url in cases:
        timings = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            response = client.get(url)
            timings.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200, (url, response.status_code)
        median = statistics.median(timings)
        worst = max(timings)
        core = label in ("first page", "last page")
        verdict = ("ok" if median < TARGET_MS else "SLOW") if core else ""
        failed |= core and median >= TARGET_MS
        ratio = f"{median / baselines[label]:5.1f} x bare" if label in baselines else ""
        print(f"{label:28} median {median:6.1f} ms   max {worst:6.1f} ms   {ratio:12} {verdict}")
    with app.app_context():
        db.engine.dispose()
    shutil.rmtree(directory, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
