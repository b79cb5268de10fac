"""Real servers on loopback: fresh-database boot races, and shuffled webhooks from many threads."""
from __future__ import annotations

import multiprocessing
import random
import sqlite3
from concurrent.futures import ThreadPoolExecutor

import requests
from twilio.request_validator import RequestValidator

from servers import gunicorn
from support import ACCOUNT_SID, ADMIN_PASSWORD, AUTH_TOKEN, OUR_NUMBER, new_call_sid


def app_env(db_path) -> dict:
    """Environment for a gunicorn-served app on its own SQLite file."""
    return {
        "DATABASE_URL": f"sqlite:///{db_path}",
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_PHONE_NUMBER": OUR_NUMBER,
        "TWILIO_VALIDATE_SIGNATURES": "true",
        "TWILIO_API_BASE_URL": "",
        "PUBLIC_URL": "",
        "SECRET_KEY": "test-secret",
        "ADMIN_USERNAME": "admin",
        "ADMIN_PASSWORD": ADMIN_PASSWORD,
        "EMULATOR_URL": "",
    }


def _boot(db_uri: str, start, errors) -> None:
    """One worker's start-up: build the app on the shared file when everyone is ready."""
    from app import create_app
    start.wait()
    try:
        create_app({"SQLALCHEMY_DATABASE_URI": db_uri, "SECRET_KEY": "x"})
    except Exception as error:  # reported to the test, which fails on any
        errors.put(f"{type(error).__name__}: {error}")


def test_many_processes_create_a_fresh_database_at_once(tmp_path):
    context = multiprocessing.get_context("fork")
    for attempt in range(8):
        db_uri = f"sqlite:///{tmp_path / f'race{attempt}.db'}"
        start, errors = context.Event(), context.Queue()
        workers = [context.Process(target=_boot, args=(db_uri, start, errors)) for _ in range(6)]
        for worker in workers:
            worker.start()
        start.set()
        for worker in workers:
            worker.join(30)
        assert [w.exitcode for w in workers] == [0] * 6
        assert errors.empty(), errors.get()
        with sqlite3.connect(tmp_path / f"race{attempt}.db") as connection:
            assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            tables = {r[0] for r in connection.execute("SELECT name FROM sqlite_master")}
        assert {"calls", "call_events", "operator_actions"} <= tables


def test_gunicorn_workers_boot_on_a_fresh_database(tmp_path):
    for attempt in range(3):
        log = tmp_path / f"gunicorn{attempt}.log"
        with gunicorn(app_env(tmp_path / f"boot{attempt}.db"), workers=4, log_path=log) as (url, _):
            for _ in range(8):  # requests spread over the workers
                assert requests.get(url + "/healthz", timeout=5).status_code == 200
        text = log.read_text()
        assert text.count("Booting worker") == 4, text
        for trouble in ("Traceback", "database is locked", "already exists", "Worker failed"):
            assert trouble not in text, text


LIFE = ["initiated", "ringing", "in-progress", "completed"]


def test_shuffled_webhooks_from_many_threads(tmp_path):
    """Hundreds of signed webhooks, retried and reordered, from 16 threads to 3 workers."""
    db_path = tmp_path / "load.db"
    validator = RequestValidator(AUTH_TOKEN)
    inbound = [new_call_sid() for _ in range(30)]
    outbound = [new_call_sid() for _ in range(30)]
    requests_to_send = []
    for sid in inbound:
        base = {"AccountSid": ACCOUNT_SID, "CallSid": sid, "From": "+15555550123",
                "To": OUR_NUMBER, "Direction": "inbound"}
        requests_to_send.append(("/voice", {**base, "CallStatus": "ringing"}))
        requests_to_send.append(("/voice/hold", {**base, "CallStatus": "in-progress"}))
        end = {**base, "CallStatus": "completed", "SequenceNumber": "0", "CallDuration": "30"}
        requests_to_send += [("/status", end)] * 2  # Twilio retried it
    for sid in outbound:
        for seq, status in enumerate(LIFE):
            params = {"AccountSid": ACCOUNT_SID, "CallSid": sid, "From": OUR_NUMBER,
                      "To": "+15555550142", "Direction": "outbound-api",
                      "CallStatus": status, "SequenceNumber": str(seq)}
            if status == "completed":
                params["CallDuration"] = "12"
            requests_to_send += [("/status", params)] * (2 if seq % 2 else 1)
    random.Random(7).shuffle(requests_to_send)
    assert len(requests_to_send) >= 300

    with gunicorn(app_env(db_path), workers=3, log_path=tmp_path / "load.log") as (url, _):
        session_per_thread = {}

        def send(item):
            path, params = item
            session = session_per_thread.setdefault(
                __import__("threading").get_ident(), requests.Session())
            signature = validator.compute_signature(url + path, params)
            response = session.post(url + path, data=params,
                                    headers={"X-Twilio-Signature": signature}, timeout=30)
            return response.status_code

        with ThreadPoolExecutor(max_workers=16) as pool:
            codes = list(pool.map(send, requests_to_send))
    assert set(codes) <= {200, 204}, sorted(set(codes))
    assert "Traceback" not in (tmp_path / "load.log").read_text()

    with sqlite3.connect(db_path) as connection:
        statuses = dict(connection.execute("SELECT sid, status FROM calls"))
        durations = dict(connection.execute("SELECT sid, duration FROM calls"))
        events = connection.execute(
            "SELECT call_sid, source, status, sequence_number FROM call_events").fetchall()
    assert len(statuses) == 60
    assert all(statuses[sid] == "completed" for sid in inbound + outbound)
    assert all(durations[sid] == 30 for sid in inbound)
    assert all(durations[sid] == 12 for sid in outbound)
    # Every event exactly once: one answer and one callback per inbound call, four per outbound.
    assert len(events) == len(set(events)) == 30 * 2 + 30 * 4
    for sid in outbound:
        assert sorted(seq for s, _, _, seq in events if s == sid) == [0, 1, 2, 3]
