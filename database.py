"""Database setup: SQLite pragmas for durable concurrent writes, and race-free schema creation."""
from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager

from flask import Flask
from sqlalchemy import event

from models import db

# How long a writer waits for another worker's transaction before SQLite gives up.
SQLITE_BUSY_TIMEOUT_MS = 10_000


def init_db(app: Flask) -> None:
    """Bind the models to the app's database and make sure its schema exists."""
    db.init_app(app)
    with app.app_context():
        engine = db.engine
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
            database = engine.url.database
            lock_path = (database + ".init-lock") if database and database != ":memory:" else None
        else:
            lock_path = None
        with _file_lock(lock_path):
            db.create_all()


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
