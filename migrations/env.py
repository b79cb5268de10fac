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
    """Run the migrations on a connection of the app's engine, one transaction for all.

    On SQLite, a batch migration rebuilds a table (copy, drop, rename): with foreign keys
    enforced, dropping a table other rows refer to fails, so they are off meanwhile (the
    pragma only changes outside a transaction) and checked once the migrations are done."""
    with migrate.db.engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            connection.exec_driver_sql("PRAGMA foreign_keys = OFF")
            connection.commit()
        try:
            context.configure(connection=connection, target_metadata=migrate.db.metadata,
                              **migrate.configure_args)
            with context.begin_transaction():
                context.run_migrations()
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"Rows refer to missing rows after migrating: {broken[:5]}")
        finally:
            if sqlite:
                connection.rollback()
                connection.exec_driver_sql("PRAGMA foreign_keys = ON")
                connection.commit()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
