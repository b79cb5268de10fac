"""Database setup: SQLite pragmas for durable concurrent writes, and schema migrations applied
at start without races between workers and instances."""
from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path

from alembic import command
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask, current_app
from flask_migrate import Migrate
from sqlalchemy import DateTime, Engine, QueuePool, event, inspect, make_url, text

from models import db

MIGRATIONS_DIR = str(Path(__file__).resolve().parent / "migrations")
# The migration that matches the schema `db.create_all()` made before migrations existed.
BASELINE_REVISION = "a1f0c0de0001"
# Any number both sides agree on: PostgreSQL advisory lock that migrating instances queue on.
_MIGRATION_LOCK_KEY = 0x5B0A_4D16

_WRITER_QUEUE = "switchboard.writer_queue"
_WRITER_CONNECTIONS = "switchboard.writer_connections"
# app.extensions[SCHEMA_CURRENT]: False while the database waits for `flask db upgrade`.
SCHEMA_CURRENT = "switchboard.schema_current"
# How long a writer waits for another worker's transaction before SQLite gives up.
SQLITE_BUSY_TIMEOUT_MS = 10_000

# SQLite cannot ALTER most things in place: batch mode rebuilds the table instead.
migrate = Migrate(directory=MIGRATIONS_DIR, render_as_batch=True, compare_type=True)


# Connections beyond DATABASE_POOL_SIZE, opened and closed as needed: for a request that needs
# a second connection (the wire log's flush) while every thread holds one.
POOL_OVERFLOW = 8


def init_db(app: Flask) -> None:
    """Bind the models to the app's database and bring its schema up to date."""
    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", _pool_options(app.config))
    db.init_app(app)
    migrate.init_app(app, db)
    with app.app_context():
        engine = db.engine
        sqlite_file = _sqlite_file(engine)
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
        if app.config["AUTO_MIGRATE"]:
            with _schema_lock(engine, sqlite_file):
                upgrade_schema()
            current = True
        else:
            current = schema_is_current()
            if not current:
                app.logger.error("The database schema is not up to date and AUTO_MIGRATE is "
                                 "off: run `flask --app app db upgrade`.")
    app.extensions[_WRITER_QUEUE] = sqlite_file and sqlite_file + ".write-lock"
    writers = app.extensions[_WRITER_CONNECTIONS] = WriterConnections(engine)
    event.listen(engine, "engine_disposed", writers.close)
    app.extensions[SCHEMA_CURRENT] = current


def upgrade_schema() -> None:
    """Apply every pending migration. A database made by `create_all()` before migrations
    existed is adopted as the baseline first, with its data."""
    config = migrate.get_config()
    config.attributes["configure_logging"] = False  # the app's logging stays as it is
    with db.engine.connect() as connection:
        tables = set(inspect(connection).get_table_names())
    if "calls" in tables and "alembic_version" not in tables:
        current_app.logger.info("Adopting a database made before migrations as %s",
                                BASELINE_REVISION)
        command.stamp(config, BASELINE_REVISION)
    command.upgrade(config, "head")


def schema_is_current() -> bool:
    """True if the database is at the newest migration."""
    head = ScriptDirectory.from_config(migrate.get_config()).get_current_head()
    with db.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision() == head


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


def _pool_options(config) -> dict:
    """Keep up to DATABASE_POOL_SIZE connections open per process. SQLAlchemy's default keeps 5
    and closes any other when it is returned, so under load requests kept opening connections:
    on PostgreSQL a new connection costs more than the webhook (bench/webhooks.py: 0.67 of
    the bare endpoint's throughput with it, about 0.9 without). In-memory SQLite keeps its own
    pool (one database per connection)."""
    url = make_url(config["SQLALCHEMY_DATABASE_URI"])
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        return {}
    return {"pool_size": config["DATABASE_POOL_SIZE"], "max_overflow": POOL_OVERFLOW}


def _sqlite_file(engine: Engine) -> str | None:
    """The SQLite database's file, or None (in-memory SQLite, or another database)."""
    if engine.dialect.name != "sqlite":
        return None
    database = engine.url.database
    return database if database and database != ":memory:" else None


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
def _schema_lock(engine: Engine, sqlite_file: str | None):
    """One migrating process at a time, whatever the number of workers and instances: a file
    lock beside a SQLite file, an advisory lock on PostgreSQL (released if the process dies)."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
            connection.commit()
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"),
                                   {"key": _MIGRATION_LOCK_KEY})
                connection.commit()
        return
    if sqlite_file is None:
        yield
        return
    path = sqlite_file + ".init-lock"
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# -------------------------------------------------------------- statements on the raw driver

@dataclass(frozen=True)
class DriverStatement:
    """A Core statement compiled once for one driver: its SQL, and how its parameters are laid
    out (a list in `positions` order for `?` placeholders, else the dict itself). The hot
    paths (webhook writes, the wire log) run these on a pooled driver connection: per row,
    SQLAlchemy's execution machinery costs more than the write."""

    sql: str
    positions: tuple[str, ...] | None
    # Where a datetime goes in as text (SQLite), in SQLAlchemy's "%Y-%m-%d %H:%M:%S.%f".
    text_dates: tuple[int, ...] = ()

    def parameters(self, values: dict):
        """The values as this driver takes them (this runs for every row of every webhook)."""
        if self.positions is None:
            return values
        row = [values[name] for name in self.positions]
        for index in self.text_dates:
            if isinstance(row[index], datetime):  # isoformat is strftime's format, faster
                row[index] = row[index].isoformat(" ", "microseconds")
        return row


@cache
def driver_statement(dialect, statement, columns: tuple[str, ...]) -> DriverStatement:
    """`statement` (an INSERT built once, at module level) compiled for this engine's driver
    and these columns, once."""
    sql = statement.compile(dialect=dialect, column_keys=list(columns))
    if not sql.positional:
        return DriverStatement(sql.string, None)
    positions = tuple(sql.positiontup)
    table_columns = statement.table.c
    text_dates = tuple(index for index, name in enumerate(positions)
                       if dialect.name == "sqlite" and name in table_columns
                       and isinstance(table_columns[name].type, DateTime))
    return DriverStatement(sql.string, positions, text_dates)


class Discard(Exception):
    """Raised inside driver_transaction() to roll its writes back quietly (not an error)."""


@contextmanager
def driver_transaction():
    """A cursor on a driver connection, the writers' turn taken: what the block wrote is
    committed when it ends, rolled back if it raises (Discard: rolled back, no error). The
    connection is one the worker keeps for these writes (WriterConnections)."""
    writers = current_app.extensions[_WRITER_CONNECTIONS]
    with writers_in_turn():  # SQLite's writers take turns, so a worker needs one or two
        held = writers.take()
        connection = held.dbapi_connection
        cursor, healthy = connection.cursor(), False
        try:
            yield cursor
            connection.commit()
            healthy = True
        except Discard:
            connection.rollback()
            healthy = True
        except BaseException:
            connection.rollback()
            raise
        finally:
            cursor.close()
            writers.give_back(held, healthy)


class WriterConnections:
    """Pool connections that webhook writes keep checked out between one write and the next,
    instead of a checkout and checkin per write: under a worker's 32 threads the pool's
    checkout and checkin contend, and cost a tenth of a webhook on PostgreSQL
    (bench/webhooks.py: throughput 0.81 -> 1.0 of the bare endpoint's, same run). They stay
    the pool's, so a worker still opens at most DATABASE_POOL_SIZE + POOL_OVERFLOW: writers
    keep up to the pool's size (one per thread, as many as ever wrote at once; on SQLite,
    whose writers take turns, one or two), and the ORM always has the overflow, whose
    connections return to the pool after each request."""

    def __init__(self, engine: Engine):
        self.engine = engine
        # In-memory SQLite's pool gives each thread its own connection (and database).
        self.keep = engine.pool.size() if isinstance(engine.pool, QueuePool) else 0
        self.free: list = []  # list.append and list.pop are atomic
        self.pid = os.getpid()

    def take(self):
        """A kept connection, else one from the pool (a _ConnectionFairy)."""
        if self.pid != os.getpid():  # a forked worker never uses its parent's connections
            self.free, self.pid = [], os.getpid()
        try:
            return self.free.pop()
        except IndexError:
            return self.engine.raw_connection()

    def give_back(self, held, healthy: bool) -> None:
        """Keep `held` for the next writer (or return it to the pool); one whose transaction
        failed is closed for good, as it may be broken."""
        if not healthy:
            held.invalidate()
        elif len(self.free) < self.keep:
            self.free.append(held)
        else:
            held.close()

    def close(self, *_) -> None:
        """Close every kept connection (the engine is being disposed)."""
        while self.free:
            self.free.pop().invalidate()
