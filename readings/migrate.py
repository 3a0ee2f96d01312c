"""Schema migrations (Alembic via Flask-Migrate), applied at start under one lock per database.

The web app and the worker both call upgrade() when they start; so may `flask db upgrade`. The
lock is taken in migrations/env.py through locked_connection(), so whichever starts first
migrates and the others wait, then find the database at head.
"""
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from flask import current_app
from flask_migrate import Migrate
from sqlalchemy import text

# Absolute, so the app migrates from any working directory.
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"

# pg_advisory_lock key that serialises migrations on a PostgreSQL database (any constant will do,
# as long as nothing else uses it): "wattson" as bytes, read as an integer.
PG_LOCK_KEY = int.from_bytes(b"wattson", "big")

# How long a starting process waits for SQLite's write lock (another starter migrating, or a
# long outside transaction) before it gives up.
SQLITE_LOCK_WAIT_MS = 120_000
SQLITE_BUSY_MS = 5000  # the app's usual busy timeout (see models._sqlite_pragmas)


def init_app(app, db):
    """Register Flask-Migrate (the `flask db` commands) on app with our migrations directory."""
    Migrate(app, db, directory=str(MIGRATIONS_DIR))


def upgrade(revision="head"):
    """Bring the current app's database to revision (in an app context)."""
    command.upgrade(_config(), revision)


def _config():
    return current_app.extensions["migrate"].migrate.get_config(str(MIGRATIONS_DIR))


@contextmanager
def locked_connection(engine):
    """A connection holding the database's migration lock, in a transaction committed on success."""
    locking = _sqlite_write_lock if engine.dialect.name == "sqlite" else _pg_advisory_lock
    with engine.connect() as connection, locking(connection):
        yield connection
        connection.commit()


@contextmanager
def _sqlite_write_lock(connection):
    # BEGIN IMMEDIATE takes the write lock now, not at the first write, and the migration runs
    # inside that transaction: atomic, and no other writer (or starter) can interleave.
    connection.exec_driver_sql(f"PRAGMA busy_timeout={SQLITE_LOCK_WAIT_MS}")
    connection.exec_driver_sql("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        connection.rollback()  # a no-op after a commit
        connection.exec_driver_sql(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")


@contextmanager
def _pg_advisory_lock(connection):
    # A session-level lock: it survives the migration's commit and is released explicitly, since
    # the pool keeps the connection open.
    connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": PG_LOCK_KEY})
    try:
        yield
    finally:
        connection.rollback()
        connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": PG_LOCK_KEY})
        connection.commit()
