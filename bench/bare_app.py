"""The benchmark's baseline: a bare Flask endpoint doing the same signature check and the
same SQLite writes as Switchboard's /voice and /status, with raw sqlite3 and no ORM.

Served by gunicorn exactly like the app: `gunicorn 'bench.bare_app:create_app()'`.
Settings: BARE_DB_PATH (a database whose schema the app created) and TWILIO_AUTH_TOKEN.
"""
from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
from datetime import UTC, datetime

from flask import Flask, Response, request
from twilio.request_validator import RequestValidator

SID = re.compile(r"^CA[0-9a-fA-F]{32}$")
RANK = {"queued": 0, "initiated": 1, "ringing": 2, "in-progress": 3, "completed": 4,
        "busy": 4, "failed": 4, "no-answer": 4, "canceled": 4}
TWIML = ('<?xml version="1.0" encoding="UTF-8"?><Response><Say>Please hold.</Say>'
         '<Redirect method="POST">/voice/hold</Redirect></Response>')
UPSERT_CALL = """
INSERT INTO calls (sid, account_sid, from_number, to_number, direction, status, status_rank,
                   duration, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (sid) DO UPDATE SET
  status = CASE WHEN excluded.status_rank > calls.status_rank THEN excluded.status ELSE calls.status END,
  status_rank = MAX(excluded.status_rank, calls.status_rank),
  updated_at = excluded.updated_at,
  duration = COALESCE(calls.duration, excluded.duration)
"""
INSERT_EVENT = """
INSERT INTO call_events (call_sid, dedupe_key, source, status, sequence_number, params, received_at)
VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (call_sid, dedupe_key) DO NOTHING
"""


def create_app() -> Flask:
    """The bare baseline app."""
    app = Flask(__name__)
    db_path = os.environ["BARE_DB_PATH"]
    validator = RequestValidator(os.environ["TWILIO_AUTH_TOKEN"])
    local = threading.local()

    def connection() -> sqlite3.Connection:
        if not hasattr(local, "connection"):
            conn = sqlite3.connect(db_path, isolation_level=None)
            conn.execute("PRAGMA busy_timeout = 10000")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            local.connection = conn
        return local.connection

    def record(status: str, dedupe_key: str, source: str, sequence):
        form = request.form
        now = datetime.now(UTC).replace(tzinfo=None).isoformat(" ")
        duration = form.get("CallDuration")
        conn = connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(UPSERT_CALL, (form["CallSid"], form.get("AccountSid"), form.get("From"),
                                       form.get("To"), form.get("Direction"), status, RANK[status],
                                       int(duration) if duration else None, now, now))
            conn.execute(INSERT_EVENT, (form["CallSid"], dedupe_key, source, status, sequence,
                                        json.dumps(form.to_dict(), sort_keys=True), now))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def checked() -> Response | None:
        if not validator.validate(request.url, request.form,
                                  request.headers.get("X-Twilio-Signature", "")):
            return Response("bad signature", status=403)
        if not SID.match(request.form.get("CallSid", "")) or request.form.get("CallStatus") not in RANK:
            return Response("bad request", status=400)
        return None

    @app.post("/voice")
    def voice():
        refused = checked()
        if refused:
            return refused
        status = request.form["CallStatus"]
        if RANK[status] < RANK["in-progress"]:
            status = "in-progress"
        record(status, "voice:answered", "voice", None)
        return Response(TWIML, mimetype="text/xml")

    @app.post("/status")
    def status():
        refused = checked()
        if refused:
            return refused
        sequence = request.form.get("SequenceNumber")
        record(request.form["CallStatus"], f"seq:{sequence}", "callback",
               int(sequence) if sequence else None)
        return Response(status=204)

    @app.get("/healthz")
    def healthz():
        return "ok\n"

    return app
