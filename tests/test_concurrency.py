"""Real servers on loopback, on both engines: fresh-database boot races (workers and whole
instances starting at once), and shuffled, retried webhooks from many threads to one or two
gunicorn instances sharing a database."""
from __future__ import annotations

import multiprocessing
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import pytest
import requests
import sqlalchemy as sa
from twilio.request_validator import RequestValidator

from servers import gunicorn, wait_until_up
from support import (
    ACCOUNT_SID,
    ADMIN_PASSWORD,
    AUTH_TOKEN,
    OUR_NUMBER,
    Twilio,
    inbound_params,
    new_call_sid,
)

TABLES = {"calls", "call_events", "operator_actions", "alembic_version"}


def app_env(database_url: str) -> dict:
    """Environment for a gunicorn-served app on `database_url`."""
    return {
        "DATABASE_URL": database_url,
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


def _boot(database_url: str, start, errors) -> None:
    """One worker's start-up: build the app on the shared database when everyone is ready."""
    from app import create_app
    start.wait()
    try:
        create_app({"SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": "x"})
    except Exception as error:  # reported to the test, which fails on any
        errors.put(f"{type(error).__name__}: {error}")


def test_many_processes_migrate_a_fresh_database_at_once(new_database_url):
    context = multiprocessing.get_context("fork")
    for _attempt in range(8):
        database_url = new_database_url()
        start, errors = context.Event(), context.Queue()
        workers = [context.Process(target=_boot, args=(database_url, start, errors))
                   for _ in range(6)]
        for worker in workers:
            worker.start()
        start.set()
        for worker in workers:
            worker.join(60)
        assert [w.exitcode for w in workers] == [0] * 6
        assert errors.empty(), errors.get()
        engine = sa.create_engine(database_url)
        try:
            assert TABLES <= set(sa.inspect(engine).get_table_names())
            with engine.connect() as connection:
                versions = connection.execute(sa.text("SELECT version_num FROM alembic_version"))
                assert len(versions.all()) == 1
                if engine.dialect.name == "sqlite":
                    mode = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
                    assert mode == "wal"
        finally:
            engine.dispose()


def test_gunicorn_instances_boot_on_a_fresh_database(new_database_url, tmp_path):
    """Two instances of four workers each, started at once on one new database, three times."""
    for attempt in range(3):
        env = app_env(new_database_url())
        logs = [tmp_path / f"boot{attempt}-{i}.log" for i in range(2)]
        with ExitStack() as stack:
            servers = [stack.enter_context(gunicorn(env, workers=4, log_path=log, wait=False))
                       for log in logs]
            for url, process in servers:
                wait_until_up(url + "/healthz", process, timeout=60)
                for _ in range(8):  # requests spread over the workers
                    assert requests.get(url + "/healthz", timeout=5).status_code == 200
        for log in logs:
            text = log.read_text()
            assert text.count("Booting worker") == 4, text
            for trouble in ("Traceback", "database is locked", "already exists",
                            "Worker failed", "UniqueViolation"):
                assert trouble not in text, text


LIFE = ["initiated", "ringing", "in-progress", "completed"]


def webhook_load(seed: int):
    """Signed webhooks for 30 inbound and 30 outbound calls: every one a retry or two, shuffled."""
    inbound = [new_call_sid() for _ in range(30)]
    outbound = [new_call_sid() for _ in range(30)]
    load = []
    for sid in inbound:
        base = {"AccountSid": ACCOUNT_SID, "CallSid": sid, "From": "+15555550123",
                "To": OUR_NUMBER, "Direction": "inbound"}
        load.append(("/voice", {**base, "CallStatus": "ringing"}))
        load.append(("/voice/hold", {**base, "CallStatus": "in-progress"}))
        end = {**base, "CallStatus": "completed", "SequenceNumber": "0", "CallDuration": "30"}
        load += [("/status", end)] * 2  # Twilio retried it
    for sid in outbound:
        for seq, status in enumerate(LIFE):
            params = {"AccountSid": ACCOUNT_SID, "CallSid": sid, "From": OUR_NUMBER,
                      "To": "+15555550142", "Direction": "outbound-api",
                      "CallStatus": status, "SequenceNumber": str(seq)}
            if status == "completed":
                params["CallDuration"] = "12"
            load += [("/status", params)] * (2 if seq % 2 else 1)
    random.Random(seed).shuffle(load)
    return inbound, outbound, load


def send_all(urls: list[str], load) -> list[int]:
    """Post every webhook from 16 threads, each to one of `urls` in turn, signed for it."""
    validator = RequestValidator(AUTH_TOKEN)
    sessions = threading.local()

    def send(numbered):
        number, (path, params) = numbered
        url = urls[number % len(urls)]
        if not hasattr(sessions, "session"):
            sessions.session = requests.Session()
        signature = validator.compute_signature(url + path, params)
        response = sessions.session.post(url + path, data=params, timeout=30,
                                         headers={"X-Twilio-Signature": signature})
        return response.status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        return list(pool.map(send, enumerate(load)))


def assert_recorded_exactly_once(database_url: str, inbound, outbound) -> None:
    """Every call ended right, and every event is stored exactly once."""
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            calls = connection.execute(sa.text("SELECT sid, status, duration FROM calls")).all()
            events = connection.execute(sa.text(
                "SELECT call_sid, source, status, sequence_number FROM call_events")).all()
    finally:
        engine.dispose()
    statuses = {sid: status for sid, status, _ in calls}
    durations = {sid: duration for sid, _, duration in calls}
    assert len(statuses) == 60
    assert all(statuses[sid] == "completed" for sid in inbound + outbound)
    assert all(durations[sid] == 30 for sid in inbound)
    assert all(durations[sid] == 12 for sid in outbound)
    # One answer and one callback per inbound call, four callbacks per outbound call.
    assert len(events) == len(set(events)) == 30 * 2 + 30 * 4
    for sid in outbound:
        assert sorted(seq for s, _, _, seq in events if s == sid) == [0, 1, 2, 3]


def test_shuffled_webhooks_from_many_threads(database_url, tmp_path):
    """Hundreds of signed webhooks, retried and reordered, from 16 threads to 3 workers."""
    inbound, outbound, load = webhook_load(seed=7)
    assert len(load) >= 300
    log = tmp_path / "load.log"
    with gunicorn(app_env(database_url), workers=3, log_path=log) as (url, _):
        codes = send_all([url], load)
    assert set(codes) <= {200, 204}, sorted(set(codes))
    assert "Traceback" not in log.read_text()
    assert_recorded_exactly_once(database_url, inbound, outbound)


def test_two_instances_share_one_database(database_url, tmp_path):
    """Several app instances on one database (how a team outgrows one machine): two gunicorn
    masters of two workers each get the same shuffled, duplicated load, alternately."""
    inbound, outbound, load = webhook_load(seed=11)
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    with ExitStack() as stack:
        urls = [stack.enter_context(gunicorn(app_env(database_url), workers=2, log_path=log))[0]
                for log in logs]
        codes = send_all(urls, load)
    assert set(codes) <= {200, 204}, sorted(set(codes))
    for log in logs:
        assert "Traceback" not in log.read_text()
    assert_recorded_exactly_once(database_url, inbound, outbound)


def test_each_process_keeps_a_connection_per_thread(make_app, database_url):
    """SQLAlchemy's default pool kept 5 connections and closed any other as it came back, so
    under load requests kept opening connections (on PostgreSQL a connection costs more than
    the webhook). Now as many as a worker has threads stay open: a second round of that many
    requests at once opens none."""
    from models import db
    app = make_app(database_url)
    size = app.config["DATABASE_POOL_SIZE"]
    with app.app_context():
        opened = []
        sa.event.listen(db.engine, "connect", lambda *_: opened.append(1))
        for _round in range(2):
            held = [db.engine.raw_connection() for _ in range(size)]
            for connection in held:
                connection.close()
            if _round == 0:
                first_round = len(opened)
        assert len(opened) == first_round
        assert db.engine.pool.checkedin() == size


def test_webhooks_write_on_kept_connections_not_through_the_pool(make_app, database_url):
    """Under a worker's threads, the pool's checkout and checkin contend (bench/webhooks.py):
    webhook writes keep the pool's connections they used checked out instead. Many webhooks
    check one out, once; however many writers ran at once, at most the pool's size stay
    kept, and they count against the pool; a connection whose transaction failed is closed,
    not kept; disposing of the engine closes the kept ones."""
    from database import driver_transaction
    from models import db
    app = make_app(database_url)
    twilio = Twilio(app.test_client())
    with app.app_context():
        engine = db.engine
    driver = engine.dialect.loaded_dbapi
    checkouts = []
    sa.event.listen(engine, "checkout", lambda *_: checkouts.append(1))
    for _ in range(10):
        sid = new_call_sid()
        assert twilio.post("/voice", inbound_params(sid)).status_code == 200
        assert twilio.post("/status", inbound_params(
            sid, "completed", SequenceNumber="0", CallDuration="3")).status_code == 204
    writers = app.extensions["switchboard.writer_connections"]
    assert writers.keep == app.config["DATABASE_POOL_SIZE"]
    assert len(checkouts) == 1
    assert len(writers.free) == 1 and engine.pool.checkedout() == 1

    many = [writers.take() for _ in range(writers.keep + 3)]  # writers at once
    for held in many:
        writers.give_back(held, healthy=True)
    assert len(writers.free) == writers.keep
    assert engine.pool.checkedout() == writers.keep

    with app.app_context():
        kept = writers.free[-1].dbapi_connection
        with pytest.raises(driver.IntegrityError), driver_transaction() as cursor:
            cursor.execute("INSERT INTO calls (sid) VALUES (NULL)")
        assert len(writers.free) == writers.keep - 1
        with pytest.raises(driver.Error):  # closed
            kept.cursor().execute("SELECT 1")
        still_kept = [held.dbapi_connection for held in writers.free]
        db.engine.dispose()
        assert writers.free == []
        for connection in still_kept:
            with pytest.raises(driver.Error):
                connection.cursor().execute("SELECT 1")
