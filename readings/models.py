"""The readings table, its change log, and the database set-up (SQLite WAL or PostgreSQL).

`readings` is a public interface: people and other programs write to it directly. Triggers copy
every INSERT, UPDATE and DELETE into `reading_changes`, whose increasing `seq` (the order in which
changes become visible) is what clients remember and replay from.
"""
import sqlite3
import time
from datetime import datetime, timezone

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import DateTime, String, event
from sqlalchemy.types import TypeDecorator

from . import migrate

db = SQLAlchemy()

# SQLite keeps timestamps as text in the same shape as CURRENT_TIMESTAMP, so rows written by the
# app and by a person with the sqlite3 shell sort and compare alike.
SQLITE_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


def parse_utc(value):
    """An aware UTC datetime from a datetime or ISO 8601 text (naive means UTC, an offset is
    converted); None, never an exception, for anything else: the feed shows such rows as invalid.

    Reads every form the readings table accepts: `YYYY-MM-DD HH:MM:SS[.ffffff]` as SQLite's
    CURRENT_TIMESTAMP writes it, and `YYYY-MM-DDTHH:MM:SS[.ffffff][Z|+HH:MM|-HH:MM]`.
    """
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    try:
        return value.astimezone(timezone.utc)
    except OverflowError:  # an offset that moves the instant past year 1 or 9999
        return None


class UTCDateTime(TypeDecorator):
    """UTC timestamps: TIMESTAMPTZ on PostgreSQL, lenient text on SQLite (hand-written rows parse)."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String())
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value, dialect):
        moment = parse_utc(value)
        if moment is None or dialect.name != "sqlite":
            return moment
        return moment.replace(tzinfo=None).strftime(SQLITE_FORMAT)

    def process_result_value(self, value, dialect):
        return parse_utc(value)


class Reading(db.Model):
    __tablename__ = "readings"
    id = db.Column(db.Integer, primary_key=True)
    sensor_id = db.Column(db.Text, nullable=False)
    taken_at = db.Column(UTCDateTime, nullable=False, server_default=db.func.current_timestamp())
    temperature_c = db.Column(db.Float, nullable=False)
    __table_args__ = (db.Index("readings_sensor_time", "sensor_id", "taken_at"),)


class ReadingChange(db.Model):
    """One row per change to readings, written only by the triggers (migrations/versions)."""

    __tablename__ = "reading_changes"
    # AUTOINCREMENT: SQLite never reuses an id, so "changes after id N" stays meaningful.
    __table_args__ = {"sqlite_autoincrement": True}
    id = db.Column(db.Integer, primary_key=True)
    op = db.Column(db.String(6), nullable=False)
    reading_id = db.Column(db.Integer, nullable=False)
    sensor_id = db.Column(db.Text)
    taken_at = db.Column(UTCDateTime)
    temperature_c = db.Column(db.Float)
    # The delivery order, and the id clients see: NULL until committed and assigned (readings/pg.py,
    # migrations/versions/0007_change_order.py); equal to id on SQLite.
    seq = db.Column(db.BigInteger().with_variant(db.Integer(), "sqlite"))


class SampleSlot(db.Model):
    """The sampler's idempotency key: one row per (sensor, period slot), written in the reading's
    transaction (see migrations/versions/0002_sample_slots.py). Not part of the public table."""

    __tablename__ = "sample_slots"
    sensor_id = db.Column(db.Text, primary_key=True)
    slot = db.Column(db.BigInteger().with_variant(db.Integer(), "sqlite"), primary_key=True)
    reading_id = db.Column(db.Integer, nullable=False)


def _sqlite_pragmas(dbapi_connection, _record):
    # WAL lets the web app read while the worker writes; the busy timeout rides out short locks.
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={migrate.SQLITE_BUSY_MS}")
    _switch_to_wal(cursor, migrate.SQLITE_BUSY_MS / 1000)
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _switch_to_wal(cursor, wait_s):
    """Switching a new file to WAL needs it to itself, and SQLite answers "locked" at once,
    without its busy handler, while another starter holds the write lock to migrate (waiting
    could deadlock): try again until that starter is done. Two gunicorn processes starting
    together on a new file hit this."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def init_db(app, upgrade=True):
    """Bind db to app and, unless told otherwise, migrate its database to the newest schema.

    The schema is the migrations' (migrations/versions), not the models': the models only map it.
    """
    db.init_app(app)
    migrate.init_app(app, db)
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            event.listen(db.engine, "connect", _sqlite_pragmas)
        if upgrade:
            migrate.upgrade()
