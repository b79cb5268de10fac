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
    """Run the migrations on a connection of the app's engine, one transaction for all."""
    with migrate.db.engine.connect() as connection:
        context.configure(connection=connection, target_metadata=migrate.db.metadata,
                          **migrate.configure_args)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
