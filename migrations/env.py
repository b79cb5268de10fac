"""Alembic's environment: migrations run on the app's own engine (Flask-Migrate)."""
from logging.config import fileConfig

from alembic import context
from flask import current_app

config = context.config
# Configure logging only for the command line (`flask db …`): when the app migrates itself at
# start (database.upgrade_schema), the app's logging must not be replaced.
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

migrate = current_app.extensions["migrate"]


def run_migrations_offline() -> None:
    """Print the SQL for a database URL instead of running it (`flask db upgrade --sql`)."""
    url = migrate.db.engine.url.render_as_string(hide_password=False)
    context.configure(url=url, target_metadata=migrate.db.metadata, literal_binds=True,
                      **migrate.configure_args)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the migrations on a connection of the app's engine, in one transaction: a migration
    that fails leaves the database as it was."""
    with migrate.db.engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            _run_on_sqlite(connection)
            return
        context.configure(connection=connection, target_metadata=migrate.db.metadata,
                          **migrate.configure_args)
        with context.begin_transaction():
            context.run_migrations()


def _run_on_sqlite(connection) -> None:
    """SQLite can roll DDL back, but Python's sqlite3 commits before DDL on its own, so Alembic
    treats SQLite as non-transactional: a failure half-way left some tables made and the
    version unchanged. Here we hold the transaction ourselves (BEGIN … COMMIT on the driver).

    A batch migration rebuilds a table (copy, drop, rename): with foreign keys enforced,
    dropping a table other rows refer to fails, so they are off meanwhile (the pragma only
    changes outside a transaction) and checked before the commit."""
    driver = connection.connection.driver_connection
    saved_isolation = driver.isolation_level
    driver.isolation_level = None  # sqlite3 leaves transactions to us
    try:
        driver.execute("PRAGMA foreign_keys = OFF")
        driver.execute("BEGIN IMMEDIATE")
        logical = connection.begin()  # so Alembic sees a transaction it must not manage
        try:
            context.configure(connection=connection, target_metadata=migrate.db.metadata,
                              **migrate.configure_args)
            with context.begin_transaction():
                context.run_migrations()
            broken = driver.execute("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"Rows refer to missing rows after migrating: {broken[:5]}")
            driver.execute("COMMIT")
        except BaseException:
            driver.execute("ROLLBACK")
            raise
        finally:
            logical.rollback()  # nothing left to roll back on the driver: bookkeeping only
    finally:
        driver.execute("PRAGMA foreign_keys = ON")
        driver.isolation_level = saved_isolation


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
