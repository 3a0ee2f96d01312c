"""Schema migrations: from an empty database, from a database made by the pre-migration main, and
with several processes starting together."""
import sqlite3
import subprocess
import time

from conftest import PYTHON, REPO, wait_until

HEAD = "0003_reading_guards"

# Frozen fixture: the schema that main's create_all() + trigger DDL wrote before migrations existed
# (sqlite3 .schema of such a database). Never update it: it is what old databases look like.
MAIN_SCHEMA = """
CREATE TABLE readings (
	id INTEGER NOT NULL,
	sensor_id TEXT NOT NULL,
	taken_at VARCHAR DEFAULT CURRENT_TIMESTAMP NOT NULL,
	temperature_c FLOAT NOT NULL,
	PRIMARY KEY (id)
);
CREATE INDEX readings_sensor_time ON readings (sensor_id, taken_at);
CREATE TABLE reading_changes (
	id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
	op VARCHAR(6) NOT NULL,
	reading_id INTEGER NOT NULL,
	sensor_id TEXT,
	taken_at VARCHAR,
	temperature_c FLOAT
);
CREATE TRIGGER readings_log_insert AFTER INSERT ON readings
        BEGIN INSERT INTO reading_changes (op, reading_id, sensor_id, taken_at, temperature_c)
        VALUES ('INSERT', NEW.id, NEW.sensor_id, NEW.taken_at, NEW.temperature_c); END;
CREATE TRIGGER readings_log_update AFTER UPDATE ON readings
        BEGIN INSERT INTO reading_changes (op, reading_id, sensor_id, taken_at, temperature_c)
        VALUES ('UPDATE', NEW.id, NEW.sensor_id, NEW.taken_at, NEW.temperature_c); END;
CREATE TRIGGER readings_log_delete AFTER DELETE ON readings
        BEGIN INSERT INTO reading_changes (op, reading_id, sensor_id, taken_at, temperature_c)
        VALUES ('DELETE', OLD.id, OLD.sensor_id, OLD.taken_at, OLD.temperature_c); END;
"""

# What a person could write into main's database with the sqlite3 shell: good rows, a deleted one,
# and the poison rows of issue 7 (BLOB sensor id, infinite and text temperatures, bad timestamps).
MAIN_ROWS = """
INSERT INTO readings (sensor_id, taken_at, temperature_c) VALUES ('sensor-1', '2026-11-29 12:00:00', 21.5);
INSERT INTO readings (sensor_id, temperature_c) VALUES ('sensor-1', 22.0);
INSERT INTO readings (sensor_id, taken_at, temperature_c) VALUES ('gone', '2026-11-29 12:00:01', 1);
DELETE FROM readings WHERE sensor_id = 'gone';
INSERT INTO readings (sensor_id, taken_at, temperature_c) VALUES (X'616c706861', '2026-11-29 12:00:02', 20);
INSERT INTO readings (sensor_id, taken_at, temperature_c) VALUES ('sensor-1', '2026-11-29 12:00:03', 1e999);
INSERT INTO readings (sensor_id, taken_at, temperature_c) VALUES ('sensor-1', '2026-11-29 12:00:04', 'abc');
INSERT INTO readings (sensor_id, taken_at, temperature_c) VALUES ('sensor-1', 'garbage', 20);
UPDATE readings SET temperature_c = 23.0 WHERE id = 2;
"""


def shell(path):
    """The database as a person with the sqlite3 shell sees it (autocommit)."""
    return sqlite3.connect(path, timeout=30, isolation_level=None)


def start(url):
    """A fresh process starting the way the web app and the worker do."""
    from readings import create_db_app

    return create_db_app({"SQLALCHEMY_DATABASE_URI": url})


# A separate process that imports everything, waits for the file `go` to exist (so that several
# start at the same moment), then starts the app as the web app and the worker do.
STARTER = ("import logging, os, sys, time\n"
           "logging.basicConfig(level=logging.INFO)\n"
           "from readings import create_db_app\n"
           "while not os.path.exists(sys.argv[2]): time.sleep(0.01)\n"
           "create_db_app({'SQLALCHEMY_DATABASE_URI': sys.argv[1]})\n")


def starter(url, go):
    return subprocess.Popen([PYTHON, "-c", STARTER, url, str(go)], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def dump(path, table):
    with shell(path) as connection:
        return connection.execute(f"SELECT *, typeof(sensor_id) FROM {table} ORDER BY id").fetchall()


def versions(path):
    with shell(path) as connection:
        return [row[0] for row in connection.execute("SELECT version_num FROM alembic_version")]


def objects(path):
    with shell(path) as connection:
        return {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}


def test_an_empty_database_gets_the_whole_schema(tmp_path):
    path = tmp_path / "new.db"
    start(f"sqlite:///{path}")
    assert versions(path) == [HEAD]
    assert {"readings", "reading_changes", "readings_sensor_time", "sample_slots",
            "readings_log_insert", "readings_log_update", "readings_log_delete"} <= objects(path)
    with shell(path) as connection:
        connection.execute("INSERT INTO readings VALUES (NULL, 'sensor-1', '2026-11-29 12:00:00', 21.5)")
        assert connection.execute("SELECT op, reading_id FROM reading_changes").fetchall() == [("INSERT", 1)]


def test_a_second_start_changes_nothing(tmp_path):
    path = tmp_path / "again.db"
    start(f"sqlite:///{path}")
    with shell(path) as connection:
        connection.execute("INSERT INTO readings (sensor_id, temperature_c) VALUES ('sensor-1', 20)")
        before = connection.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall()
    start(f"sqlite:///{path}")
    with shell(path) as connection:
        assert connection.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall() == before
    assert versions(path) == [HEAD] and len(dump(path, "readings")) == 1


def test_a_database_made_by_main_is_adopted_with_its_rows_and_ids(tmp_path):
    path = tmp_path / "main.db"
    with shell(path) as connection:
        connection.executescript(MAIN_SCHEMA + MAIN_ROWS)
    readings, changes = dump(path, "readings"), dump(path, "reading_changes")
    assert len(readings) == 6 and len(changes) == 9

    start(f"sqlite:///{path}")

    assert versions(path) == [HEAD]
    assert dump(path, "readings") == readings and dump(path, "reading_changes") == changes
    with shell(path) as connection:
        connection.execute("INSERT INTO readings (sensor_id, temperature_c) VALUES ('sensor-1', 24)")
        (new_id,) = connection.execute("SELECT max(id) FROM reading_changes").fetchone()
    assert new_id == changes[-1][0] + 1  # the feed goes on from where it was


def test_processes_starting_together_migrate_once(tmp_path):
    path, go = tmp_path / "together.db", tmp_path / "go"
    procs = [starter(f"sqlite:///{path}", go) for _ in range(4)]
    time.sleep(3)  # let them reach the barrier (a late one only makes the test easier)
    go.touch()
    outputs = [proc.communicate(timeout=120)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * 4, "\n".join(outputs)
    assert versions(path) == [HEAD]
    assert sum(out.count("Running upgrade  -> 0001_baseline") for out in outputs) == 1, outputs


def test_a_start_waits_for_a_writer_holding_the_lock(tmp_path):
    path = tmp_path / "busy.db"
    with shell(path) as connection:
        connection.execute("PRAGMA journal_mode=WAL")  # as the app leaves every database
        connection.executescript(MAIN_SCHEMA)
    holder = shell(path)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO readings (sensor_id, temperature_c) VALUES ('held', 20)")
    proc = starter(f"sqlite:///{path}", go=path)
    try:
        time.sleep(6)  # past the app's usual 5 s busy timeout
        assert proc.poll() is None, proc.communicate()[0]
    finally:
        holder.execute("COMMIT")
        holder.close()
    assert proc.wait(timeout=120) == 0, proc.communicate()[0]
    wait_until(lambda: versions(path) == [HEAD], what="the migration after the writer")
    assert [row[1] for row in dump(path, "readings")] == ["held"]
