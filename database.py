"""Database setup: SQLite pragmas for durable concurrent writes, and race-free schema creation."""
from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager

from flask import Flask, current_app
from sqlalchemy import event

from models import db

_WRITER_QUEUE = "switchboard.writer_queue"
# How long a writer waits for another worker's transaction before SQLite gives up.
SQLITE_BUSY_TIMEOUT_MS = 10_000


def init_db(app: Flask) -> None:
    """Bind the models to the app's database and make sure its schema exists."""
    db.init_app(app)
    with app.app_context():
        engine = db.engine
        sqlite_file = None
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
            if engine.url.database and engine.url.database != ":memory:":
                sqlite_file = engine.url.database
        with _file_lock(sqlite_file and sqlite_file + ".init-lock"):
            db.create_all()
    app.extensions[_WRITER_QUEUE] = sqlite_file and sqlite_file + ".write-lock"


@contextmanager
def writers_in_turn():
    """Let webhook writers of every worker take turns on a file lock, so a waiting worker wakes
    the moment the writer before it commits. Without it, each waits in SQLite's busy handler,
    which sleeps 1, 2, 5, 10… ms between tries whatever the lock's holder is doing."""
    path = current_app.extensions.get(_WRITER_QUEUE)
    if path is None:
        yield
        return
    # This runs on every webhook: a bare descriptor, and its directory exists since init_db.
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # closing releases the lock


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """Set WAL (readers never block the writer), a busy timeout, and fsync on every commit."""
    cursor = dbapi_connection.cursor()
    # The timeout comes first so that the WAL switch itself waits for other workers.
    cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = FULL")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


@contextmanager
def _file_lock(path: str | None):
    """Hold an exclusive lock on `path` (no-op without one) so one worker creates the schema."""
    if path is None:
        yield
        return
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
