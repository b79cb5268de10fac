"""Shared fixtures: the app on a real database (a SQLite file, then a PostgreSQL database on
a throwaway server), a test client, and Twilio-style signing.

Every test that uses `database_url` (and so every test of the app) runs on both engines;
`pytest -m "not postgresql"` (`make test-sqlite`) runs the SQLite half alone.
"""
from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import pytest
from sqlalchemy import make_url

from app import create_app
from emulator import ManualClock
from postgres import PostgresServer
from support import ACCOUNT_SID, ADMIN_PASSWORD, AUTH_TOKEN, OUR_NUMBER, Twilio, dispose, wire

ENGINES = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgresql),
]


@pytest.fixture(scope="session")
def postgres_server():
    """One throwaway PostgreSQL server for the whole run (started only if a test needs it)."""
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session", params=ENGINES)
def engine_name(request) -> str:
    """The database engine this test runs on."""
    return request.param


@pytest.fixture
def postgres_scratch(postgres_server) -> PostgresServer:
    """The server, for databases of this test's own: those of earlier tests (done with them)
    are dropped first; this test's go when the next one starts."""
    postgres_server.drop_scratch_databases()
    return postgres_server


@pytest.fixture
def new_database_url(engine_name, request, tmp_path):
    """A factory of fresh, empty databases on this test's engine: each call gives a new URL."""
    counter = itertools.count(1)
    if engine_name == "postgresql":
        server = request.getfixturevalue("postgres_scratch")
        return lambda: server.new_database(scratch=True)
    return lambda: f"sqlite:///{tmp_path / f'switchboard{next(counter)}.db'}"


@pytest.fixture(scope="session")
def schema_template(engine_name, request, tmp_path_factory) -> str:
    """A database at the newest migration and without rows, made once per engine: each test's
    `database_url` is a copy (migrating a database for every test cost a tenth of a second)."""
    if engine_name == "postgresql":
        url = request.getfixturevalue("postgres_server").new_database()
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('template') / 'switchboard.db'}"
    dispose(create_app(app_config(url, ADMIN_PASSWORD="")))  # no admin account: no rows
    return url


@pytest.fixture
def database_url(engine_name, schema_template, request, tmp_path) -> str:
    """A database of this test's own, at the newest schema and empty (a copy of the template).
    Tests of migrations override it with `new_database_url()`."""
    if engine_name == "postgresql":
        return request.getfixturevalue("postgres_scratch").new_database(schema_template,
                                                                        scratch=True)
    template = Path(make_url(schema_template).database)
    assert not template.with_name(template.name + "-wal").exists()  # all in the file itself
    copy = shutil.copyfile(template, tmp_path / "switchboard.db")
    return f"sqlite:///{copy}"


def app_config(database_url: str, **overrides) -> dict:
    """The settings of a test app: signatures checked as in production, no emulator."""
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_PHONE_NUMBER": OUR_NUMBER,
        "TWILIO_VALIDATE_SIGNATURES": True,
        "TWILIO_API_BASE_URL": "",
        "PUBLIC_URL": "",
        "ADMIN_USERNAME": "admin",
        "ADMIN_PASSWORD": ADMIN_PASSWORD,
        "EMULATOR_URL": "",
        **overrides,
    }


@pytest.fixture
def make_app():
    """Build apps with `make_app(database_url, **settings)`; their pools close at the end."""
    apps = []

    def make(database_url: str, **overrides):
        apps.append(create_app(app_config(database_url, **overrides)))
        return apps[-1]

    yield make
    for built in apps:
        dispose(built)


@pytest.fixture
def app(make_app, database_url):
    """The app on its own database, with signatures checked as in production."""
    return make_app(database_url)


@pytest.fixture
def client(app):
    """A test client for the app."""
    return app.test_client()


@pytest.fixture
def twilio(client):
    """Sign and post webhooks like Twilio."""
    return Twilio(client)


@pytest.fixture
def wired(app):
    """The app and a new emulator on loopback, wired to each other (support.wire); the
    emulator's clock is manual."""
    stack = wire(app, EMULATOR_CLOCK=ManualClock())
    yield stack
    stack.stop()
