"""Alembic environment: the Flask app's database, migrated under one lock per database.

The lock (SQLite's write lock, PostgreSQL's advisory lock) is taken here, so the upgrade at start
(readings.migrate.upgrade) and `flask db upgrade` serialise alike: processes that start together
migrate once, and the others find the database at head.
"""
from alembic import context
from flask import current_app

from readings.migrate import locked_connection

target_db = current_app.extensions["migrate"].db


def run_offline():
    """`flask db upgrade --sql`: print the DDL instead of running it."""
    context.configure(url=target_db.engine.url, target_metadata=target_db.metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online():
    with locked_connection(target_db.engine) as connection:
        context.configure(connection=connection, target_metadata=target_db.metadata)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
