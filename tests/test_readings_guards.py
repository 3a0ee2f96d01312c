"""The door of the public readings table, on SQLite and PostgreSQL: bad rows are refused with a
message naming the column, every accepted form is accepted and reads back as the right UTC instant."""
import sqlite3
from contextlib import closing
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from pg import shell
from sqlalchemy import select

from readings import create_db_app
from readings.models import Reading, db, parse_utc

GOOD = {"sensor_id": "sensor-1", "taken_at": "2026-11-29 12:00:00", "temperature_c": 21.5}

BAD_SQLITE = [
    ("sensor_id", b"alpha"),
    ("sensor_id", ""),
    ("sensor_id", "   "),
    ("sensor_id", None),
    ("temperature_c", float("inf")),
    ("temperature_c", float("-inf")),
    ("temperature_c", "abc"),
    ("temperature_c", ""),
    ("temperature_c", b"\x00"),
    ("temperature_c", 150.01),
    ("temperature_c", -50.01),
    ("temperature_c", None),
    ("taken_at", "garbage"),
    ("taken_at", ""),
    ("taken_at", "now"),
    ("taken_at", 2461008.5),  # a Julian day number, which SQLite's date functions would take
    ("taken_at", b"2026-11-29 12:00:00"),
    ("taken_at", None),
    ("taken_at", "2026-13-45 12:00:00"),
    ("taken_at", "2026-02-30 12:00:00"),
    ("taken_at", "2026-11-29 24:00:00"),
    ("taken_at", "2026-11-29 12:60:00"),
    ("taken_at", "0000-01-01 00:00:00"),
    ("taken_at", "2026-11-29"),
    ("taken_at", "2026-11-29T12:00"),
    ("taken_at", "2026-11-29 12:00:00."),
    ("taken_at", "2026-11-29 12:00:00.1234567"),
    ("taken_at", "2026-11-29 12:00:00Z"),  # the space form is UTC, without a zone
    ("taken_at", "2026-11-29T12:00:00+0100"),
    ("taken_at", "2026-11-29T12:00:00+24:00"),
    ("taken_at", "2026-11-29T12:00:00z"),
    ("taken_at", " 2026-11-29 12:00:00"),
    ("taken_at", "2026-11-29 12:00:00 "),
    ("taken_at", "2026-11-29T12:00:00.5.5Z"),
]

UTC = timezone.utc
NOON = datetime(2026, 11, 29, 12, tzinfo=UTC)
ACCEPTED = [
    ("2026-11-29 12:00:00", NOON),
    ("2026-11-29 12:00:00.5", NOON.replace(microsecond=500000)),
    ("2026-11-29 12:00:00.123", NOON.replace(microsecond=123000)),
    ("2026-11-29 12:00:00.123456", NOON.replace(microsecond=123456)),
    ("2026-11-29T12:00:00", NOON),
    ("2026-11-29T12:00:00Z", NOON),
    ("2026-11-29T12:00:00.25Z", NOON.replace(microsecond=250000)),
    ("2026-11-29T13:30:00+01:30", NOON),
    ("2026-11-29T07:00:00.000001-05:00", NOON.replace(microsecond=1)),
    ("2026-11-30T00:30:00+12:30", NOON),
    ("2026-11-29T12:00:00+00:00", NOON),
    ("2024-02-29 23:59:59", datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC)),
]


# PostgreSQL's types refuse BLOB ids, text temperatures and every unreadable time themselves.
BAD_POSTGRES = [
    ("sensor_id", ""),
    ("sensor_id", "   "),
    ("sensor_id", None),
    ("temperature_c", float("inf")),
    ("temperature_c", float("-inf")),
    ("temperature_c", float("nan")),
    ("temperature_c", 150.01),
    ("temperature_c", -50.01),
    ("temperature_c", None),
    ("taken_at", None),
]
BAD = [("sqlite", *case) for case in BAD_SQLITE] + [("postgresql", *case) for case in BAD_POSTGRES]
REFUSED = (sqlite3.IntegrityError, psycopg.IntegrityError)


class Door:
    """The app's database as a person with the sqlite3 shell or psql sees it (autocommit)."""

    def __init__(self, dialect, connection):
        self.dialect, self.connection = dialect, connection

    def execute(self, sql, params=()):
        if self.dialect == "postgresql":
            sql = sql.replace("?", "%s")
        return self.connection.execute(sql, params)

    def insert(self, **row):
        placeholders = ", ".join("?" * len(row))
        return self.execute(f"INSERT INTO readings ({', '.join(row)}) VALUES ({placeholders}) RETURNING id",
                            tuple(row.values())).fetchone()[0]

    def snapshot(self):
        return [repr(self.execute(f"SELECT * FROM {table} ORDER BY id").fetchall())
                for table in ("readings", "reading_changes")]


@pytest.fixture(params=["sqlite", "postgresql"])
def door(request, tmp_path):
    """A started app (migrated database, app context) and a person's connection to its database."""
    url = (f"sqlite:///{tmp_path / 'door.db'}" if request.param == "sqlite"
           else request.getfixturevalue("pg_url"))
    app = create_db_app({"SQLALCHEMY_DATABASE_URI": url})
    with app.app_context(), closing(shell(url)) as connection:
        yield Door(request.param, connection)
        db.session.remove()


def read_back(reading_id):
    """The reading as the app reads it."""
    db.session.expire_all()
    return db.session.execute(select(Reading).where(Reading.id == reading_id)).scalar_one()


@pytest.mark.parametrize("door, column, value", BAD, indirect=["door"])
def test_a_bad_value_is_refused_on_insert_naming_the_column(door, column, value):
    before = door.snapshot()
    with pytest.raises(REFUSED, match=column):
        door.insert(**dict(GOOD, **{column: value}))
    assert door.snapshot() == before


@pytest.mark.parametrize("door, column, value", BAD, indirect=["door"])
def test_a_bad_value_is_refused_on_update_naming_the_column(door, column, value):
    reading_id = door.insert(**GOOD)
    before = door.snapshot()
    with pytest.raises(REFUSED, match=column):
        door.execute(f"UPDATE readings SET {column} = ? WHERE id = ?", (value, reading_id))
    assert door.snapshot() == before


@pytest.mark.parametrize("door", ["sqlite"], indirect=True)
def test_a_value_given_as_sql_text_is_refused_too(door):
    """The issue's rows, exactly as typed into the sqlite3 shell."""
    for column, literal in [("sensor_id", "X'616c706861'"), ("temperature_c", "1e999"),
                            ("temperature_c", "-1e999"), ("temperature_c", "'abc'"),
                            ("taken_at", "'garbage'"), ("taken_at", "''"), ("taken_at", "'now'"),
                            ("taken_at", "julianday('now')")]:
        values = dict(sensor_id="'s'", taken_at="'2026-11-29 12:00:00'", temperature_c="20")
        values[column] = literal
        with pytest.raises(sqlite3.IntegrityError, match=column):
            door.execute(f"INSERT INTO readings (sensor_id, taken_at, temperature_c) "
                         f"VALUES ({values['sensor_id']}, {values['taken_at']}, {values['temperature_c']})")
    assert door.snapshot() == ["[]", "[]"]


@pytest.mark.parametrize("text, instant", ACCEPTED)
def test_every_accepted_form_is_accepted_and_reads_back_in_utc(door, text, instant):
    reading_id = door.insert(**dict(GOOD, taken_at=text))
    if door.dialect == "sqlite":  # stored as written: no rewrite in storage
        assert door.execute("SELECT taken_at FROM readings WHERE id = ?", (reading_id,)).fetchone() == (text,)
    assert parse_utc(text) == instant
    assert read_back(reading_id).taken_at == instant
    door.execute("UPDATE readings SET taken_at = ? WHERE id = ?", ("2026-01-01 00:00:00", reading_id))
    door.execute("UPDATE readings SET taken_at = ? WHERE id = ?", (text, reading_id))
    assert read_back(reading_id).taken_at == instant


@pytest.mark.parametrize("value", [-50, 150, 20, 21.5, "21.5", -0.0])
def test_finite_temperatures_in_range_are_accepted(door, value):
    reading_id = door.insert(**dict(GOOD, temperature_c=value))
    assert read_back(reading_id).temperature_c == float(value)


@pytest.mark.parametrize("door", ["sqlite"], indirect=True)
def test_sqlite_own_timestamps_are_accepted(door):
    door.execute("INSERT INTO readings (sensor_id, taken_at, temperature_c) "
                 "VALUES ('s', strftime('%Y-%m-%d %H:%M:%f', 'now'), 20), ('s', CURRENT_TIMESTAMP, 21), "
                 "('s', datetime('now'), 22)")
    assert door.execute("SELECT count(*) FROM readings").fetchone() == (3,)


def test_a_default_taken_at_works(door):
    before = datetime.now(UTC).replace(microsecond=0)
    reading_id = door.insert(sensor_id="s", temperature_c=20)
    after = datetime.now(UTC)
    assert before <= read_back(reading_id).taken_at <= after


def test_a_positional_insert_works(door):
    door.execute("INSERT INTO readings VALUES (DEFAULT, 'sensor-1', '2026-11-29 12:00:00', 21.5)"
                 if door.dialect == "postgresql" else
                 "INSERT INTO readings VALUES (NULL, 'sensor-1', '2026-11-29 12:00:00', 21.5)")
    reading = read_back(1)
    assert (reading.sensor_id, reading.taken_at, reading.temperature_c) == ("sensor-1", NOON, 21.5)
    assert door.execute("SELECT op, reading_id FROM reading_changes").fetchall() == [("INSERT", 1)]


def test_the_app_own_writes_pass_the_door(door):
    from readings.store import write_reading

    moment = datetime(2026, 11, 29, 13, 0, 0, 123456, tzinfo=timezone(timedelta(hours=1)))
    reading_id = write_reading("sensor-1", 20.5, moment)
    assert read_back(reading_id).taken_at == moment


@pytest.mark.parametrize("value", [
    "garbage", "", "now", b"alpha", 2461008.5, 7, object(), "2026-11-29 24:00:00",
    "0001-01-01T00:00:00+01:00", "2026-13-45 12:00:00", "\x00",
])
def test_parse_utc_gives_none_for_anything_unreadable(value):
    assert parse_utc(value) is None
