"""The door of the public readings table: bad rows are refused with a message naming the column,
every accepted form is accepted and reads back as the right UTC instant."""
import sqlite3
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from readings.models import Reading, db, parse_utc

GOOD = {"sensor_id": "sensor-1", "taken_at": "2026-11-29 12:00:00", "temperature_c": 21.5}

BAD = [
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


@pytest.fixture
def shell(db_app):
    """The app's database as a person with the sqlite3 shell sees it (autocommit)."""
    path = db_app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///")
    with sqlite3.connect(path, isolation_level=None) as connection:
        yield connection


def insert(shell, **row):
    columns = ", ".join(row)
    shell.execute(f"INSERT INTO readings ({columns}) VALUES ({', '.join('?' * len(row))})",
                  tuple(row.values()))
    return shell.execute("SELECT max(id) FROM readings").fetchone()[0]


def snapshot(shell):
    return (shell.execute("SELECT *, typeof(taken_at) FROM readings ORDER BY id").fetchall(),
            shell.execute("SELECT * FROM reading_changes ORDER BY id").fetchall())


def read_back(reading_id):
    """The reading as the app reads it."""
    db.session.expire_all()
    return db.session.execute(select(Reading).where(Reading.id == reading_id)).scalar_one()


@pytest.mark.parametrize("column, value", BAD)
def test_a_bad_value_is_refused_on_insert_naming_the_column(shell, column, value):
    before = snapshot(shell)
    with pytest.raises(sqlite3.IntegrityError, match=column):
        insert(shell, **dict(GOOD, **{column: value}))
    assert snapshot(shell) == before


@pytest.mark.parametrize("column, value", BAD)
def test_a_bad_value_is_refused_on_update_naming_the_column(shell, column, value):
    reading_id = insert(shell, **GOOD)
    before = snapshot(shell)
    with pytest.raises(sqlite3.IntegrityError, match=column):
        shell.execute(f"UPDATE readings SET {column} = ? WHERE id = ?", (value, reading_id))
    assert snapshot(shell) == before


def test_a_value_given_as_sql_text_is_refused_too(shell):
    """The issue's rows, exactly as typed into the sqlite3 shell."""
    for column, literal in [("sensor_id", "X'616c706861'"), ("temperature_c", "1e999"),
                            ("temperature_c", "-1e999"), ("temperature_c", "'abc'"),
                            ("taken_at", "'garbage'"), ("taken_at", "''"), ("taken_at", "'now'"),
                            ("taken_at", "julianday('now')")]:
        values = dict(sensor_id="'s'", taken_at="'2026-11-29 12:00:00'", temperature_c="20")
        values[column] = literal
        with pytest.raises(sqlite3.IntegrityError, match=column):
            shell.execute(f"INSERT INTO readings (sensor_id, taken_at, temperature_c) "
                          f"VALUES ({values['sensor_id']}, {values['taken_at']}, {values['temperature_c']})")
    assert snapshot(shell) == ([], [])


@pytest.mark.parametrize("text, instant", ACCEPTED)
def test_every_accepted_form_is_stored_as_written_and_reads_back_in_utc(shell, text, instant):
    reading_id = insert(shell, **dict(GOOD, taken_at=text))
    assert shell.execute("SELECT taken_at FROM readings WHERE id = ?", (reading_id,)).fetchone() == (text,)
    assert parse_utc(text) == instant
    assert read_back(reading_id).taken_at == instant
    shell.execute("UPDATE readings SET taken_at = ? WHERE id = ?", ("2026-01-01 00:00:00", reading_id))
    shell.execute("UPDATE readings SET taken_at = ? WHERE id = ?", (text, reading_id))
    assert read_back(reading_id).taken_at == instant


@pytest.mark.parametrize("value", [-50, 150, 20, 21.5, "21.5", -0.0])
def test_finite_temperatures_in_range_are_accepted(shell, value):
    reading_id = insert(shell, **dict(GOOD, temperature_c=value))
    assert read_back(reading_id).temperature_c == float(value)


def test_sqlite_own_timestamps_are_accepted(shell):
    shell.execute("INSERT INTO readings (sensor_id, taken_at, temperature_c) "
                  "VALUES ('s', strftime('%Y-%m-%d %H:%M:%f', 'now'), 20), ('s', CURRENT_TIMESTAMP, 21), "
                  "('s', datetime('now'), 22)")
    assert shell.execute("SELECT count(*) FROM readings").fetchone() == (3,)


def test_a_default_taken_at_works(shell):
    before = datetime.now(UTC).replace(microsecond=0)
    reading_id = insert(shell, sensor_id="s", temperature_c=20)
    after = datetime.now(UTC)
    assert before <= read_back(reading_id).taken_at <= after


def test_a_positional_insert_works(shell):
    shell.execute("INSERT INTO readings VALUES (NULL, 'sensor-1', '2026-11-29 12:00:00', 21.5)")
    reading = read_back(1)
    assert (reading.sensor_id, reading.taken_at, reading.temperature_c) == ("sensor-1", NOON, 21.5)
    assert shell.execute("SELECT op, reading_id FROM reading_changes").fetchall() == [("INSERT", 1)]


def test_the_app_own_writes_pass_the_door(db_app):
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
