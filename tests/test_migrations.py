"""Schema migrations (Alembic through Flask-Migrate), on both engines: a fresh database, one
made by `create_all()` before migrations existed, every step up and down, and the models
matching what the migrations build."""
from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from database import BASELINE_REVISION, migrate
from models import db
from support import inbound_params, new_call_sid

DATA = Path(__file__).parent / "data"


@pytest.fixture
def database_url(new_database_url) -> str:
    """Here every database starts empty: migrating it is what these tests are about."""
    return new_database_url()


def revision_of(database_url: str) -> str | None:
    """The migration the database is at (None: never migrated)."""
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def head(app) -> str:
    with app.app_context():
        return ScriptDirectory.from_config(migrate.get_config()).get_current_head()


def run_sql(database_url: str, script: str) -> None:
    """Run a script of `;`-separated statements in one transaction."""
    engine = sa.create_engine(database_url)
    try:
        with engine.begin() as connection:
            code = "\n".join(line for line in script.splitlines() if not line.startswith("--"))
            for statement in code.split(";"):
                if statement.strip():
                    connection.exec_driver_sql(statement)
    finally:
        engine.dispose()


def test_a_fresh_database_is_migrated_at_start(app, database_url):
    assert revision_of(database_url) == head(app)


def test_upgrade_from_the_command_line_is_safe_to_run_twice(app, database_url):
    runner = app.test_cli_runner()
    for _ in range(2):
        result = runner.invoke(args=["db", "upgrade"])
        assert result.exit_code == 0, result.output
    assert revision_of(database_url) == head(app)


def test_models_match_what_the_migrations_build(app):
    """A model change without its migration fails here (what `flask db check` reports)."""
    with app.app_context(), db.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), db.metadata)
    assert differences == []


def test_a_database_made_before_migrations_is_adopted_with_its_data(
        make_app, database_url, engine_name, twilio_for):
    """An existing `instance/switchboard.db` (or PostgreSQL database) made by `create_all()`:
    stamped as the baseline, upgraded, and every row kept."""
    run_sql(database_url, (DATA / f"legacy_schema_{engine_name}.sql").read_text())
    sid = new_call_sid()
    run_sql(database_url, f"""
        INSERT INTO calls (sid, from_number, to_number, direction, status, status_rank,
                           created_at, updated_at)
        VALUES ('{sid}', '+15555550123', '+15555550100', 'inbound', 'in-progress', 3,
                '2026-11-20 10:00:00', '2026-11-20 10:00:00');
        INSERT INTO call_events (call_sid, dedupe_key, source, status, params, received_at)
        VALUES ('{sid}', 'voice:answered', 'voice', 'in-progress', '{{}}', '2026-11-20 10:00:00');
        INSERT INTO operator_actions (call_sid, operator, action, params, ok, result, created_at)
        VALUES ('{sid}', 'admin', 'redirect', '{{}}', true, 'ok', '2026-11-20 10:01:00')
    """)
    assert revision_of(database_url) is None

    app = make_app(database_url)
    assert revision_of(database_url) == head(app)
    twilio = twilio_for(app)
    assert twilio.post("/status", inbound_params(sid, "completed", SequenceNumber="0",
                                                 CallDuration="61")).status_code == 204
    response = app.test_client().get(f"/api/calls/{sid}", headers=twilio.api_auth)
    assert response.status_code == 200
    call = response.get_json()
    assert call["status"] == "completed" and call["from"] == "+15555550123"
    assert [e["status"] for e in call["events"]] == ["in-progress", "completed"]
    assert [a["action"] for a in call["actions"]] == ["redirect"]


def test_every_migration_steps_up_and_down_keeping_calls(app, database_url):
    """From nothing to the newest version one step at a time, back down, and up again; a call
    recorded at the baseline survives every step up."""
    with app.app_context():
        config = migrate.get_config()
        config.attributes["configure_logging"] = False
        revisions = [r.revision for r in
                     reversed(list(ScriptDirectory.from_config(config).walk_revisions()))]
        assert revisions[0] == BASELINE_REVISION
        command.downgrade(config, "base")
        assert revision_of(database_url) is None
        sid = new_call_sid()
        for number, revision in enumerate(revisions):
            command.upgrade(config, revision)
            assert revision_of(database_url) == revision
            if number == 0:
                run_sql(database_url, f"""
                    INSERT INTO calls (sid, status, status_rank, created_at, updated_at)
                    VALUES ('{sid}', 'ringing', 2, '2026-11-20 10:00:00', '2026-11-20 10:00:00')
                """)
        engine = sa.create_engine(database_url)
        with engine.connect() as connection:
            assert connection.execute(sa.text("SELECT status FROM calls WHERE sid = :sid"),
                                      {"sid": sid}).scalar() == "ringing"
        engine.dispose()
        for revision in reversed(revisions[:-1]):
            command.downgrade(config, revision)
            assert revision_of(database_url) == revision
        command.downgrade(config, "base")
        command.upgrade(config, "head")
    assert revision_of(database_url) == revisions[-1]


def test_auto_migrate_off_leaves_the_schema_to_the_deploy_step(make_app, database_url, caplog):
    app = make_app(database_url, AUTO_MIGRATE=False)
    assert revision_of(database_url) is None
    assert "AUTO_MIGRATE is off" in caplog.text
    result = app.test_cli_runner().invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert revision_of(database_url) == head(app)


@pytest.fixture
def twilio_for():
    """Twilio-style signing for an app built inside the test, with the API's credentials."""
    import base64

    from support import ADMIN_PASSWORD, Twilio

    def make(app):
        twilio = Twilio(app.test_client())
        token = base64.b64encode(f"admin:{ADMIN_PASSWORD}".encode()).decode()
        twilio.api_auth = {"Authorization": f"Basic {token}"}
        return twilio

    return make


def test_operators_migration_splits_the_api_marker_from_the_username(app, database_url):
    """b2c0ffee0002: actions recorded as "admin (API)" become operator "admin", via "api"."""
    with app.app_context():
        config = migrate.get_config()
        config.attributes["configure_logging"] = False
        command.downgrade(config, BASELINE_REVISION)
        sid = new_call_sid()
        run_sql(database_url, f"""
            INSERT INTO calls (sid, status, status_rank, created_at, updated_at)
            VALUES ('{sid}', 'completed', 4, '2026-11-20 10:00:00', '2026-11-20 10:00:00');
            INSERT INTO operator_actions (call_sid, operator, action, params, ok, result, created_at)
            VALUES ('{sid}', 'admin (API)', 'hangup', '{{}}', true, 'ok', '2026-11-20 10:01:00');
            INSERT INTO operator_actions (call_sid, operator, action, params, ok, result, created_at)
            VALUES ('{sid}', 'admin', 'redirect', '{{}}', true, 'ok', '2026-11-20 10:02:00')
        """)
        command.upgrade(config, "b2c0ffee0002")
    engine = sa.create_engine(database_url)
    with engine.connect() as connection:
        rows = connection.execute(sa.text(
            "SELECT operator, via, action FROM operator_actions WHERE call_sid = :sid ORDER BY id"),
            {"sid": sid}).all()
    engine.dispose()
    assert [tuple(row) for row in rows] == [("admin", "api", "hangup"), ("admin", "panel", "redirect")]


def test_live_changes_migration_dates_each_call_from_when_it_was_last_heard(app, database_url):
    """d4ca11ed0004: an existing call's changed_at starts as its updated_at, not stale."""
    with app.app_context():
        config = migrate.get_config()
        config.attributes["configure_logging"] = False
        command.downgrade(config, "c3decade0003")
        sid = new_call_sid()
        run_sql(database_url, f"""
            INSERT INTO calls (sid, status, status_rank, created_at, updated_at)
            VALUES ('{sid}', 'in-progress', 3, '2026-11-20 10:00:00', '2026-11-20 10:05:00')
        """)
        command.upgrade(config, "d4ca11ed0004")
    engine = sa.create_engine(database_url)
    with engine.connect() as connection:
        row = connection.execute(sa.text(
            "SELECT changed_at, shown_stale FROM calls WHERE sid = :sid"), {"sid": sid}).one()
    engine.dispose()
    assert str(row[0]).startswith("2026-11-20 10:05:00") and not row[1]


def test_a_failed_sqlite_migration_leaves_the_database_as_it_was(make_app, tmp_path):
    """SQLite migrations run in one transaction: when one fails half-way (here: a row that
    refers to a call that does not exist, found by the foreign key check at the end), no
    table it made is left behind and the version stays where it was."""
    import sqlite3
    path = tmp_path / "old.db"
    run_sql(f"sqlite:///{path}", (DATA / "legacy_schema_sqlite.sql").read_text())
    with sqlite3.connect(path) as connection:  # foreign keys are off in a bare connection
        connection.execute(
            "INSERT INTO call_events (call_sid, dedupe_key, source, status, params, received_at)"
            " VALUES ('CA00000000000000000000000000000000', 'x', 'voice', 'ringing', '{}', "
            "'2026-11-20 10:00:00')")
    with pytest.raises(RuntimeError, match="Rows refer to missing rows"):
        make_app(f"sqlite:///{path}")
    with sqlite3.connect(path) as connection:
        tables = {row[0] for row in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {"calls", "call_events", "operator_actions"}  # exactly as it was


def test_call_results_migration_steps_down_and_up_keeping_calls(app, database_url, twilio):
    """c3decade0003: the recordings and <Gather> answers tables go with a step down (calls
    stay) and come back empty with the steps up; webhooks fill them again."""
    sid = new_call_sid()
    assert twilio.post("/voice", inbound_params(sid)).status_code == 200
    assert twilio.post("/voice/gathered", inbound_params(sid, "in-progress", Digits="7")
                       ).status_code == 200
    with app.app_context():
        config = migrate.get_config()
        config.attributes["configure_logging"] = False
        command.downgrade(config, "b2c0ffee0002")
        engine = sa.create_engine(database_url)
        with engine.connect() as connection:
            tables = set(sa.inspect(connection).get_table_names())
            assert connection.execute(sa.text("SELECT count(*) FROM calls")).scalar() == 1
        engine.dispose()
        assert not tables & {"call_recordings", "gather_results"}
        command.upgrade(config, "head")  # the app's webhooks need every later revision too
    assert revision_of(database_url) == head(app)
    assert twilio.post("/voice/gathered", inbound_params(sid, "in-progress", Digits="8")
                       ).status_code == 200
    engine = sa.create_engine(database_url)
    with engine.connect() as connection:
        digits = connection.execute(sa.text("SELECT digits FROM gather_results")).scalars().all()
    engine.dispose()
    assert digits == ["8"]
