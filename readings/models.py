"""The readings table, its change log, and the database set-up (SQLite WAL or PostgreSQL).

`readings` is a public interface: people and other programs write to it directly. Triggers copy
every INSERT, UPDATE and DELETE into `reading_changes`, whose increasing ids are what clients
remember and replay from.
"""
import time
from datetime import datetime, timezone

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import DateTime, String, event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.types import TypeDecorator

db = SQLAlchemy()

# SQLite keeps timestamps as text in the same shape as CURRENT_TIMESTAMP, so rows written by the
# app and by a person with the sqlite3 shell sort and compare alike.
SQLITE_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


def parse_utc(value):
    """A datetime (aware, UTC) from a datetime or any ISO-8601-ish text; None if unreadable."""
    if value is None or isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value).strip())
        except ValueError:
            return None
    if moment is not None and moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc) if moment else None


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
    """One row per change to readings, written only by the triggers below."""

    __tablename__ = "reading_changes"
    # AUTOINCREMENT: SQLite never reuses an id, so "changes after id N" stays meaningful.
    __table_args__ = {"sqlite_autoincrement": True}
    id = db.Column(db.Integer, primary_key=True)
    op = db.Column(db.String(6), nullable=False)
    reading_id = db.Column(db.Integer, nullable=False)
    sensor_id = db.Column(db.Text)
    taken_at = db.Column(UTCDateTime)
    temperature_c = db.Column(db.Float)


_LOG_COLUMNS = "op, reading_id, sensor_id, taken_at, temperature_c"

SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER IF NOT EXISTS readings_log_{op.lower()} AFTER {op} ON readings
        BEGIN INSERT INTO reading_changes ({_LOG_COLUMNS})
        VALUES ('{op}', {row}.id, {row}.sensor_id, {row}.taken_at, {row}.temperature_c); END"""
    for op, row in (("INSERT", "NEW"), ("UPDATE", "NEW"), ("DELETE", "OLD"))
]

POSTGRES_TRIGGERS = [
    f"""CREATE OR REPLACE FUNCTION readings_log_change() RETURNS trigger AS $$
    DECLARE r readings%ROWTYPE;
    BEGIN
        IF TG_OP = 'DELETE' THEN r := OLD; ELSE r := NEW; END IF;
        INSERT INTO reading_changes ({_LOG_COLUMNS})
        VALUES (TG_OP, r.id, r.sensor_id, r.taken_at, r.temperature_c);
        PERFORM pg_notify('reading_changes', '');
        RETURN NULL;
    END $$ LANGUAGE plpgsql""",
    """CREATE OR REPLACE TRIGGER readings_log AFTER INSERT OR UPDATE OR DELETE ON readings
       FOR EACH ROW EXECUTE FUNCTION readings_log_change()""",
]


def _sqlite_pragmas(dbapi_connection, _record):
    # WAL lets the web app read while the worker writes; the busy timeout rides out short locks.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def init_db(app, attempts=3):
    """Bind db to app, then create the tables and the change-log triggers if they are missing."""
    db.init_app(app)
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            event.listen(db.engine, "connect", _sqlite_pragmas)
        # The web app and the worker start together; the loser of a create race just tries again.
        for attempt in range(attempts):
            try:
                _create_schema()
                return
            except DBAPIError:
                if attempt == attempts - 1:
                    raise
                time.sleep(0.2 * (attempt + 1))


def _create_schema():
    db.create_all()
    triggers = SQLITE_TRIGGERS if db.engine.dialect.name == "sqlite" else POSTGRES_TRIGGERS
    with db.engine.begin() as connection:
        for ddl in triggers:
            connection.execute(text(ddl))
