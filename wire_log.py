"""What crossed the wire with Twilio: every webhook it sent us and every REST request we made.

A webhook's own transaction stays as it was (the call and its event): its exchange is queued
in memory when the response is ready and a background thread per process writes the queue in
one transaction every FLUSH_SECONDS, so logging costs webhooks an append, not a commit.
Readers call `flush()` first, so what this process heard is always there; another worker's
latest entries follow within FLUSH_SECONDS. Entries older than REQUEST_LOG_DAYS are deleted
by the same thread, a batch at a time.
"""
from __future__ import annotations

import atexit
import os
import re
import threading
import time
from collections import deque
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from flask import Flask, current_app, g, request
from sqlalchemy import delete, insert, select

from call_records import CALL_SID_PATTERN
from database import driver_statement, driver_transaction, writers_in_turn
from models import WireEntry, db, utcnow

FLUSH_SECONDS = 0.25
PRUNE_EVERY_SECONDS = 600
PRUNE_BATCH = 500
MAX_BODY_CHARS = 16_000  # of a response kept in the log
_EXTENSION = "switchboard.wire_log"
_EXCHANGES = "twilio_exchanges"  # g: this request's REST exchanges, until an action claims them


def init_app(app: Flask) -> None:
    """Give the app its wire log (and its writer thread, started on first use)."""
    app.extensions[_EXTENSION] = WireLog(app)

    @app.teardown_request
    def _unclaimed_exchanges(_error=None):
        for entry in g.pop(_EXCHANGES, []):  # REST requests no operator action took
            log().add(entry)


def log() -> WireLog:
    """This app's wire log."""
    return current_app.extensions[_EXTENSION]


def flush() -> None:
    """Write what this process has queued (readers call it before they read)."""
    log().flush()


class WireLog:
    """The queue of exchanges not yet written, and the thread that writes them."""

    def __init__(self, app: Flask):
        self.app = app
        self.pending: deque[dict] = deque()
        self.lock = threading.Lock()  # one writer at a time: the thread, or a reader's flush
        self.pid = None
        self.closed = False
        self.last_prune = time.monotonic()

    def add(self, entry: dict) -> None:
        """Queue one exchange (a dict of WireEntry's columns; `at` as time.time())."""
        self.pending.append(entry)
        # First use in this process (gunicorn forks its workers after the app is made).
        if self.pid != os.getpid() and not self.closed:
            self.pid = os.getpid()
            threading.Thread(target=self._run, name="wire-log", daemon=True).start()
            atexit.register(self._flush_at_exit)

    def flush(self) -> None:
        """Write every queued exchange in one transaction (nothing once closed)."""
        with self.lock:
            if not self.closed:
                self._write_queued()

    def close(self) -> None:
        """Write what is queued, then write nothing more and stop the writer thread: an app
        that is done (a test's, before its pool is disposed) must open no connection after."""
        with self.lock:
            if not self.closed:
                self._write_queued()
                self.closed = True

    def _write_queued(self) -> None:
        """The queue in one transaction on the raw driver (per row, SQLAlchemy's machinery
        costs more than the insert); the caller holds the lock."""
        batch = []
        while self.pending:
            batch.append(self.pending.popleft())
        if not batch:
            return
        with self.app.app_context():
            statement = driver_statement(db.engine.dialect, _INSERT, _COLUMNS)
            rows = [statement.parameters(_row(entry)) for entry in batch]
            with driver_transaction() as cursor:
                cursor.executemany(statement.sql, rows)

    def prune(self) -> None:
        """Delete entries older than REQUEST_LOG_DAYS, PRUNE_BATCH at a time."""
        with self.app.app_context():
            before = utcnow() - timedelta(days=self.app.config["REQUEST_LOG_DAYS"])
            while True:
                with self.lock, writers_in_turn():
                    if self.closed:
                        return
                    ids = db.session.scalars(select(WireEntry.id).where(WireEntry.at < before)
                                             .limit(PRUNE_BATCH)).all()
                    if ids:
                        db.session.execute(delete(WireEntry).where(WireEntry.id.in_(ids)))
                    db.session.commit()
                if len(ids) < PRUNE_BATCH:
                    break
            db.session.remove()

    def _run(self) -> None:
        while not self.closed:
            time.sleep(FLUSH_SECONDS)
            try:
                self.flush()
                if time.monotonic() - self.last_prune > PRUNE_EVERY_SECONDS:
                    self.last_prune = time.monotonic()
                    self.prune()
            except Exception:  # a database hiccup must not end logging for good
                self.app.logger.exception("Could not write the wire log; will retry.")

    def _flush_at_exit(self) -> None:
        try:
            self.flush()
        except Exception:  # the database may already be gone
            pass


_INSERT = insert(WireEntry.__table__)
_COLUMNS = ("at", "kind", "call_sid", "method", "url", "params", "signature", "status",
            "response", "duration_ms", "action_id", "error_code")


def _row(entry: dict) -> dict:
    """A queued exchange as WireEntry's columns (decoding and bounds applied here, off the
    request's path)."""
    response, params = entry.get("response"), entry.get("params") or ""
    if isinstance(response, bytes):
        response = response.decode("utf-8", "replace")
    if isinstance(params, bytes):
        params = params.decode("utf-8", "replace")
    return {
        "at": datetime.fromtimestamp(entry["at"], UTC).replace(tzinfo=None),
        "kind": entry["kind"], "call_sid": _call_sid(entry.get("call_sid")),
        "method": entry["method"][:8], "url": entry["url"].replace("\x00", ""),
        "params": params.replace("\x00", ""),
        "signature": entry.get("signature"), "status": entry.get("status"),
        "response": response[:MAX_BODY_CHARS].replace("\x00", "") if response else response,
        "duration_ms": entry.get("duration_ms"), "action_id": entry.get("action_id"),
        "error_code": entry.get("error_code"),
    }


def _call_sid(value) -> str | None:
    """A well-formed CallSid, else None (a refused webhook may carry anything)."""
    return value if isinstance(value, str) and CALL_SID_PATTERN.match(value) else None


# -------------------------------------------------------------- webhooks (incoming)

def webhook_started() -> None:
    """Note when a webhook arrived (before_request of Twilio's routes)."""
    g.webhook_started = time.perf_counter()


def record_webhook(response, kind: str, signature: str) -> None:
    """Queue the webhook this request was, with our response (after_request). This runs on
    every webhook, so it only gathers what is at hand: the body as it arrived (already read,
    urlencoded), our answer's bytes, the clock."""
    req, context = request._get_current_object(), g._get_current_object()
    post = req.method == "POST"
    try:
        raw = req.get_data() if post else req.query_string
        call_sid = (req.form if post else req.args).get("CallSid")
    except Exception:  # a body refused unread (413): log the exchange without it
        raw, call_sid = b"", None
    started = getattr(context, "webhook_started", None)
    current_app.extensions[_EXTENSION].add({
        "at": time.time(), "kind": kind,
        "call_sid": call_sid if signature in ("valid", "unchecked") else None,
        "method": req.method, "url": getattr(context, "signature_url", None) or req.url,
        "params": raw, "signature": signature, "status": response.status_code,
        "response": None if response.direct_passthrough else response.get_data(),
        "duration_ms": (time.perf_counter() - started) * 1000 if started else None,
    })


# -------------------------------------------------------------- REST (outgoing)

def record_exchange(method: str, url: str, data, status: int | None, body: str | None,
                    duration_ms: float, error_code: int | None) -> None:
    """Note one REST request the SDK made; an operator action claims it (`claim_exchanges`),
    else it is queued unclaimed when the request ends (or at once outside a request)."""
    entry = {"at": time.time(), "kind": "rest", "call_sid": call_sid_in(url), "method": method,
             "url": url, "params": urlencode(data or {}, doseq=True), "status": status,
             "response": body,
             "duration_ms": duration_ms, "error_code": error_code}
    try:
        g.setdefault(_EXCHANGES, []).append(entry)
    except RuntimeError:  # no app context: nothing will claim it
        pass


def claim_exchanges(action_id: int, call_sid: str | None) -> None:
    """Queue this request's REST exchanges about `call_sid` (or about no call yet: a create)
    as made for the operator action `action_id`; others wait for their own action."""
    exchanges = g.get(_EXCHANGES)
    if not exchanges:
        return
    for entry in [e for e in exchanges if e["call_sid"] in (None, call_sid)]:
        exchanges.remove(entry)
        entry["action_id"] = action_id
        entry["call_sid"] = entry["call_sid"] or call_sid
        log().add(entry)


_CALL_IN_PATH = re.compile(r"/Calls/(CA[0-9a-fA-F]{32})")


def call_sid_in(url: str) -> str | None:
    """The CallSid in a Calls resource URL (…/Calls/CA….json), if any."""
    found = _CALL_IN_PATH.search(url)
    return found.group(1) if found else None
