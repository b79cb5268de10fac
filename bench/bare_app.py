"""The benchmark's baseline: a bare Flask endpoint doing the same signature check and the
same writes as Switchboard's /voice and /status, with the raw driver (sqlite3 or psycopg) and
no ORM.

Served by gunicorn exactly like the app: `gunicorn 'bench.bare_app:create_app()'`.
Settings: BARE_DATABASE (a SQLite file path, or a libpq URL `postgresql://…`, of a database
whose schema the app created) and TWILIO_AUTH_TOKEN.
"""
from __future__ import annotations

import fcntl
import json
import os
import re
import sqlite3
import threading
from contextlib import contextmanager
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
                   duration, created_at, updated_at, changed_at, shown_stale)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, false)
ON CONFLICT (sid) DO UPDATE SET
  status = CASE WHEN excluded.status_rank > calls.status_rank THEN excluded.status ELSE calls.status END,
  status_rank = MAX(excluded.status_rank, calls.status_rank),
  updated_at = excluded.updated_at,
  changed_at = CASE WHEN excluded.status_rank > calls.status_rank OR calls.shown_stale
                    THEN excluded.changed_at ELSE calls.changed_at END,
  shown_stale = false,
  duration = COALESCE(calls.duration, excluded.duration)
"""
INSERT_EVENT = """
INSERT INTO call_events (call_sid, dedupe_key, source, status, sequence_number, params, received_at)
VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (call_sid, dedupe_key) DO NOTHING RETURNING id
"""


def _sqlite_connection(path: str):
    """A sqlite3 connection with the app's pragmas, in autocommit mode (we BEGIN ourselves)."""
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA busy_timeout = 10000")
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = FULL")
    return connection, "BEGIN IMMEDIATE", UPSERT_CALL, INSERT_EVENT


@contextmanager
def _writers_in_turn(path: str | None):
    """The same writer queue as the app's (database.writers_in_turn): SQLite writers of every
    worker take turns on a file lock instead of sleeping in SQLite's busy handler. Without it
    this baseline is far slower under threaded workers, which would flatter the app."""
    if path is None:
        yield
        return
    descriptor = os.open(path + ".write-lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def _postgres_connection(url: str):
    """A psycopg connection in autocommit mode, with the statements in its dialect."""
    import psycopg
    connection = psycopg.connect(url, autocommit=True)
    upsert = UPSERT_CALL.replace("?", "%s").replace("MAX(", "GREATEST(")
    return connection, "BEGIN", upsert, INSERT_EVENT.replace("?", "%s")


def create_app() -> Flask:
    """The bare baseline app."""
    app = Flask(__name__)
    database = os.environ["BARE_DATABASE"]
    postgres = database.startswith("postgresql://")
    connect = _postgres_connection if postgres else _sqlite_connection
    sqlite_file = None if postgres else database
    validator = RequestValidator(os.environ["TWILIO_AUTH_TOKEN"])
    local = threading.local()

    def connection():
        """This thread's connection, BEGIN statement, upsert and event insert."""
        if not hasattr(local, "connection"):
            local.connection = connect(database)
        return local.connection

    def record(status: str, dedupe_key: str, source: str, sequence):
        form = request.form
        now = datetime.now(UTC).replace(tzinfo=None).isoformat(" ")
        duration = form.get("CallDuration")
        conn, begin, upsert, insert_event = connection()
        with _writers_in_turn(sqlite_file):
            _write(conn, begin, upsert, insert_event, form, status, dedupe_key, source, sequence,
                   now, duration)

    def _write(conn, begin, upsert, insert_event, form, status, dedupe_key, source, sequence,
               now, duration):
        conn.execute(begin)
        try:
            conn.execute(upsert, (form["CallSid"], form.get("AccountSid"), form.get("From"),
                                  form.get("To"), form.get("Direction"), status, RANK[status],
                                  int(duration) if duration else None, now, now, now))
            inserted = conn.execute(insert_event, (
                form["CallSid"], dedupe_key, source, status, sequence,
                json.dumps(form.to_dict(), sort_keys=True), now)).fetchone()
            conn.execute("COMMIT" if inserted else "ROLLBACK")
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
