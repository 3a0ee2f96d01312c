"""readings.store's reads on rows as people write them by hand: ISO 8601 text with an offset or a
Z (SQLite keeps it as written, so its text order is not time order), and old poison rows."""
from datetime import datetime, timedelta, timezone

from conftest import both_databases
from sqlalchemy import event, text

from readings import store
from readings.models import db

NOW = datetime(2026, 11, 29, 10, 30, tzinfo=timezone.utc)

# As written with the sqlite3 shell or psql, and the UTC instant each one is.
BY_HAND = {
    "2026-11-29T10:00:00+02:00": "2026-11-29T08:00:00.000Z",  # sorts after 09:30 as text
    "2026-11-28T23:45:00-10:00": "2026-11-29T09:45:00.000Z",  # the day before, as text
    "2026-11-29T09:40:00Z": "2026-11-29T09:40:00.000Z",
    "2026-11-29 09:50:00.5": "2026-11-29T09:50:00.500Z",
    "2026-11-29 09:00:00": "2026-11-29T09:00:00.000Z",
}


def insert_by_hand(taken_at, temperature_c=20.0, sensor_id="sensor-1"):
    db.session.execute(text("INSERT INTO readings (sensor_id, taken_at, temperature_c) "
                            "VALUES (:sensor, :taken_at, :temperature)"),
                       {"sensor": sensor_id, "taken_at": taken_at, "temperature": temperature_c})
    db.session.commit()


@both_databases
def test_window_takes_a_time_with_an_offset_as_the_instant_it_names(db_app):
    for taken_at in BY_HAND:
        insert_by_hand(taken_at)

    got = [r["taken_at"] for r in store.window("sensor-1", 3600, now=NOW)]

    assert got == ["2026-11-29T09:40:00.000Z", "2026-11-29T09:45:00.000Z",
                   "2026-11-29T09:50:00.500Z"]


@both_databases
def test_window_starts_at_its_cutoff_to_the_millisecond(db_app):
    cutoff = NOW - timedelta(seconds=60)
    for offset_ms in (-1, 0, 1):
        store.write_reading("sensor-1", 20.0, cutoff + timedelta(milliseconds=offset_ms))
    got = [r["taken_at"] for r in store.window("sensor-1", 60, now=NOW)]
    assert got == ["2026-11-29T10:29:00.000Z", "2026-11-29T10:29:00.001Z"]


@both_databases
def test_buckets_take_a_time_with_an_offset_as_the_instant_it_names(db_app):
    for value, taken_at in enumerate(BY_HAND):
        insert_by_hand(taken_at, 20.0 + value)

    got = store.buckets("sensor-1", NOW - timedelta(hours=3), NOW, 3600)

    hour_ms = lambda hour: int(datetime(2026, 11, 29, hour, tzinfo=timezone.utc).timestamp() * 1000)
    assert [(b["t"], b["n"], b["min"], b["max"]) for b in got] == [
        (hour_ms(8), 1, 20.0, 20.0), (hour_ms(9), 4, 21.0, 24.0)]


@both_databases
def test_sensor_ids_lists_configured_sensors_first_then_the_others_by_name(db_app):
    for sensor in ("zeta", "alpha", "sensor-1", "alpha"):
        store.write_reading(sensor, 20.0, NOW)
    assert store.sensor_ids() == ["sensor-1", "alpha", "zeta"]


# Rows from before the guards (migration 0003), or from a writer that went around them: only
# literals, as a person would type them.
OLD_POISON = {
    "sqlite": ["DROP TRIGGER readings_guard_insert"] + [
        f"INSERT INTO readings (sensor_id, taken_at, temperature_c) VALUES ({row})" for row in (
            "'sensor-1', 'now', 20", "'sensor-1', 'garbage', 20", "'sensor-1', '', 20",
            "'sensor-1', 2461008.9, 20", "'sensor-1', X'323032362d31312d3239', 20",
            "'sensor-1', '2026-11-29 10:00:00', 'abc'", "'sensor-1', '2026-11-29 10:00:00', 1e999",
            "'sensor-1', '2026-11-29 10:00:00', X'00'", "X'616c706861', '2026-11-29 10:00:00', 20",
            "'', '2026-11-29 10:00:00', 20")],
    "postgresql": ["ALTER TABLE readings DROP CONSTRAINT readings_sensor_id_check",
                   "ALTER TABLE readings DROP CONSTRAINT readings_temperature_c_check"] + [
        f"INSERT INTO readings (sensor_id, taken_at, temperature_c) VALUES ({row})" for row in (
            "'sensor-1', '2026-11-29 10:00:00Z', 'NaN'",
            "'sensor-1', '2026-11-29 10:00:00Z', 'Infinity'",
            "'sensor-1', '2026-11-29 10:00:00Z', '-Infinity'",
            "'', '2026-11-29 10:00:00Z', 20")],
}


@both_databases
def test_old_poison_rows_are_left_out_of_the_chart_and_never_break_it(db_app):
    store.write_reading("sensor-1", 21.0, NOW - timedelta(minutes=10))
    for statement in OLD_POISON[db.engine.dialect.name]:
        db.session.execute(text(statement))
    db.session.commit()

    assert [r["temperature_c"] for r in store.window("sensor-1", 3600, now=NOW)] == [21.0]
    (bucket,) = store.buckets("sensor-1", NOW - timedelta(hours=1), NOW, 3600)
    assert (bucket["n"], bucket["mean"]) == (1, 21.0)
    assert store.sensor_ids() == ["sensor-1"]
    assert store.freshest(["sensor-1"]) == {"sensor-1": "2026-11-29T10:20:00.000Z"}


@both_databases
def test_latest_is_the_newest_by_the_instant_not_by_the_text(db_app):
    for taken_at in BY_HAND:  # 10:00+02:00 is the oldest, but the last as text
        insert_by_hand(taken_at)

    got = [r["taken_at"] for r in store.latest("sensor-1", 3)]

    assert got == ["2026-11-29T09:50:00.500Z", "2026-11-29T09:45:00.000Z",
                   "2026-11-29T09:40:00.000Z"]


@both_databases
def test_latest_keeps_old_poison_rows_behind_every_readable_one(db_app):
    for minutes in (3, 2, 1):
        store.write_reading("sensor-1", 20.0 + minutes, NOW - timedelta(minutes=minutes))
    for statement in OLD_POISON[db.engine.dialect.name]:
        db.session.execute(text(statement))
    db.session.commit()

    newest = store.latest("sensor-1", 3)

    assert [(r["taken_at"], r["temperature_c"]) for r in newest] == [
        ("2026-11-29T10:29:00.000Z", 21.0), ("2026-11-29T10:28:00.000Z", 22.0),
        ("2026-11-29T10:27:00.000Z", 23.0)]
    everything = store.latest("sensor-1", 50)  # still listed, as invalid, after them
    assert len(everything) > 3 and not any(r["valid"] for r in everything[3:])


@both_databases
def test_freshest_gives_each_sensors_newest_valid_reading_in_one_statement(db_app):
    store.write_reading("a", 20.0, NOW - timedelta(minutes=5))
    store.write_reading("a", 20.0, NOW - timedelta(seconds=30, milliseconds=250))
    insert_by_hand("2026-11-29T12:29:00+02:00", sensor_id="b")  # 10:29Z, the newest, sorts first
    insert_by_hand("2026-11-29 10:28:00", sensor_id="b")
    statements = []
    event.listen(db.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))

    got = store.freshest(["a", "b", "silent", "a"])

    assert got == {"a": "2026-11-29T10:29:29.750Z", "b": "2026-11-29T10:29:00.000Z", "silent": None}
    assert len(statements) == 1

