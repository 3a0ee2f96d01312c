"""Schema migrations, on SQLite and PostgreSQL: from an empty database, from a database made by
the pre-migration main (poison rows included), and with several processes starting together."""
import os
import shutil
import sqlite3
import subprocess
import time
from contextlib import closing, contextmanager
from pathlib import Path

import psycopg
import pytest
from alembic import command
from conftest import PYTHON, REPO, wait_until
from flask import current_app
from pg import shell

from readings.migrate import PG_LOCK_KEY

HEAD = "0008_reading_epoch"

# Frozen fixtures: the schema that main's create_all() + trigger DDL wrote before migrations
# existed (sqlite3 .schema / pg_dump of such a database). Never update them: they are what old
# databases look like.
MAIN_SCHEMA_SQLITE = """
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
MAIN_ROWS_SQLITE = """
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


MAIN_SCHEMA_POSTGRES = """
CREATE TABLE readings (
	id SERIAL NOT NULL,
	sensor_id TEXT NOT NULL,
	taken_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP NOT NULL,
	temperature_c FLOAT NOT NULL,
	PRIMARY KEY (id)
);
CREATE TABLE reading_changes (
	id SERIAL NOT NULL,
	op VARCHAR(6) NOT NULL,
	reading_id INTEGER NOT NULL,
	sensor_id TEXT,
	taken_at TIMESTAMP WITH TIME ZONE,
	temperature_c FLOAT,
	PRIMARY KEY (id)
);
CREATE INDEX readings_sensor_time ON readings (sensor_id, taken_at);
CREATE OR REPLACE FUNCTION readings_log_change() RETURNS trigger AS $$
    DECLARE r readings%ROWTYPE;
    BEGIN
        IF TG_OP = 'DELETE' THEN r := OLD; ELSE r := NEW; END IF;
        INSERT INTO reading_changes (op, reading_id, sensor_id, taken_at, temperature_c)
        VALUES (TG_OP, r.id, r.sensor_id, r.taken_at, r.temperature_c);
        PERFORM pg_notify('reading_changes', '');
        RETURN NULL;
    END $$ LANGUAGE plpgsql;
CREATE OR REPLACE TRIGGER readings_log AFTER INSERT OR UPDATE OR DELETE ON readings
       FOR EACH ROW EXECUTE FUNCTION readings_log_change();
"""

# PostgreSQL's types already refuse BLOB ids, text temperatures and unreadable times; what gets
# through is an empty sensor id and non-finite temperatures.
MAIN_ROWS_POSTGRES = """
INSERT INTO readings (sensor_id, taken_at, temperature_c) VALUES ('sensor-1', '2026-11-29 12:00:00Z', 21.5);
INSERT INTO readings (sensor_id, temperature_c) VALUES ('sensor-1', 22.0);
INSERT INTO readings (sensor_id, taken_at, temperature_c) VALUES ('gone', '2026-11-29 12:00:01Z', 1);
DELETE FROM readings WHERE sensor_id = 'gone';
INSERT INTO readings VALUES (DEFAULT, '', '2026-11-29 12:00:02Z', 20);
INSERT INTO readings VALUES (DEFAULT, 'sensor-1', '2026-11-29 12:00:03Z', 'Infinity');
INSERT INTO readings VALUES (DEFAULT, 'sensor-1', '2026-11-29 12:00:04Z', '-Infinity');
INSERT INTO readings VALUES (DEFAULT, 'sensor-1', '2026-11-29 12:00:05Z', 'NaN');
UPDATE readings SET temperature_c = 23.0 WHERE id = 2;
"""


class Database:
    """A database to migrate, reached as a person with the sqlite3 shell or psql would (autocommit)."""

    def __init__(self, url):
        self.url = url
        self.dialect = "sqlite" if url.startswith("sqlite") else "postgresql"

    def connect(self):
        return shell(self.url)

    def run(self, *statements):
        """Run each statement; the rows of the last one."""
        with closing(self.connect()) as connection:
            for sql in statements:
                cursor = connection.execute(sql)
            return cursor.fetchall() if cursor.description else []

    def script(self, sql):
        with closing(self.connect()) as connection:
            if self.dialect == "sqlite":
                connection.executescript(sql)
            else:
                connection.execute(sql)  # several statements: fine without parameters

    def versions(self):
        return [row[0] for row in self.run("SELECT version_num FROM alembic_version")]

    def objects(self):
        """Names of the tables, indexes, triggers and constraints."""
        if self.dialect == "sqlite":
            return {row[0] for row in self.run("SELECT name FROM sqlite_master")}
        return {row[0] for row in self.run(
            "SELECT relname FROM pg_class JOIN pg_namespace n ON n.oid = relnamespace "
            "WHERE nspname = 'public' UNION SELECT tgname FROM pg_trigger WHERE NOT tgisinternal "
            "UNION SELECT conname FROM pg_constraint")}

    def dump(self, table, columns="*"):
        """The rows as text, so that a NaN compares equal to itself."""
        return [repr(row) for row in self.run(f"SELECT {columns} FROM {table} ORDER BY id")]

    @contextmanager
    def migration_lock_held(self):
        """Hold what a migrating process must take: SQLite's write lock, or the advisory lock."""
        with closing(self.connect()) as holder:
            if self.dialect == "sqlite":
                holder.execute("BEGIN IMMEDIATE")
                holder.execute("INSERT INTO readings (sensor_id, temperature_c) VALUES ('held', 20)")
                yield
                holder.execute("COMMIT")
            else:
                holder.execute("SELECT pg_advisory_lock(%s)", (PG_LOCK_KEY,))
                holder.execute("INSERT INTO readings (sensor_id, temperature_c) VALUES ('held', 20)")
                yield
                holder.execute("SELECT pg_advisory_unlock(%s)", (PG_LOCK_KEY,))


MAIN_COLUMNS = "id, sensor_id, taken_at, temperature_c"
MAIN = {"sqlite": MAIN_SCHEMA_SQLITE + MAIN_ROWS_SQLITE,
        "postgresql": MAIN_SCHEMA_POSTGRES + MAIN_ROWS_POSTGRES}
NEW_POISON = {
    "sqlite": [("sensor_id", "X'616c706861'"), ("temperature_c", "1e999"), ("temperature_c", "'abc'"),
               ("taken_at", "'garbage'")],
    "postgresql": [("sensor_id", "''"), ("temperature_c", "'Infinity'"), ("temperature_c", "'NaN'")],
}
SCHEMA = {
    "sqlite": {"readings", "reading_changes", "readings_sensor_time", "readings_sensor_epoch",
               "sample_slots",
               "readings_log_insert", "readings_log_update", "readings_log_delete",
               "readings_guard_insert", "readings_guard_update",
               "reading_changes_seq", "reading_changes_seq_key"},
    "postgresql": {"readings", "reading_changes", "readings_sensor_time", "readings_sensor_epoch",
                   "sample_slots", "readings_log",
                   "readings_sensor_id_check", "readings_temperature_c_check",
                   "reading_changes_seq", "reading_changes_seq_key", "reading_changes_unsequenced"},
}


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path):
    if request.param == "sqlite":
        return Database(f"sqlite:///{tmp_path / 'wattson.db'}")
    return Database(request.getfixturevalue("pg_url"))


def start(url):
    """Start in this process the way the web app and the worker do."""
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


def test_an_empty_database_gets_the_whole_schema(database):
    start(database.url)
    assert database.versions() == [HEAD]
    assert SCHEMA[database.dialect] <= database.objects()
    database.run("INSERT INTO readings VALUES (DEFAULT, 'sensor-1', '2026-11-29 12:00:00', 21.5)"
                 if database.dialect == "postgresql" else
                 "INSERT INTO readings VALUES (NULL, 'sensor-1', '2026-11-29 12:00:00', 21.5)")
    assert database.run("SELECT op, reading_id FROM reading_changes") == [("INSERT", 1)]


def test_a_second_start_changes_nothing(database):
    start(database.url)
    database.run("INSERT INTO readings (sensor_id, temperature_c) VALUES ('sensor-1', 20)")
    before = database.objects()
    start(database.url)
    assert database.objects() == before and database.versions() == [HEAD]
    assert len(database.dump("readings")) == 1


def test_a_database_made_by_main_is_adopted_with_its_rows_and_ids(database):
    database.script(MAIN[database.dialect])
    readings, changes = database.dump("readings", MAIN_COLUMNS), database.dump("reading_changes")
    assert len(readings) == 6 and len(changes) == 9
    [(last_change,)] = database.run("SELECT max(id) FROM reading_changes")

    start(database.url)

    assert database.versions() == [HEAD]
    assert database.dump("readings", MAIN_COLUMNS) == readings
    after = database.run("SELECT * FROM reading_changes ORDER BY id")
    # The rows as they were, each with its delivery position seq = id: remembered ids still hold.
    assert [repr(row[:-1]) for row in after] == changes and all(row[-1] == row[0] for row in after)
    database.run("INSERT INTO readings (sensor_id, temperature_c) VALUES ('sensor-1', 24)")
    assert database.run("SELECT max(id) FROM reading_changes") == [(last_change + 1,)]  # the feed goes on
    # The door is shut for new poison, and the old poison can still be deleted.
    for column, literal in NEW_POISON[database.dialect]:
        with pytest.raises((sqlite3.IntegrityError, psycopg.IntegrityError), match=column):
            database.run(f"UPDATE readings SET {column} = {literal} WHERE id = 2")
    database.run("DELETE FROM readings WHERE id = 4")
    assert database.run("SELECT count(*) FROM readings") == [(6,)]


def test_processes_starting_together_migrate_once(database, tmp_path):
    go = tmp_path / "go"
    procs = [starter(database.url, go) for _ in range(4)]
    time.sleep(3)  # let them reach the barrier (a late one only makes the test easier)
    go.touch()
    outputs = [proc.communicate(timeout=120)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * 4, "\n".join(outputs)
    assert database.versions() == [HEAD]
    assert sum(out.count("Running upgrade  -> 0001_baseline") for out in outputs) == 1, outputs


def test_a_start_on_a_new_file_waits_while_another_starter_holds_its_write_lock(tmp_path):
    """Switching to WAL is refused at once ("locked", no busy wait) while a writer holds a new
    file in rollback mode; two gunicorn processes starting together on a new file met that."""
    path = tmp_path / "new.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE held (x)")
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO held VALUES (1)")
    proc = starter(f"sqlite:///{path}", go=tmp_path)
    time.sleep(1.5)
    assert proc.poll() is None, proc.communicate()[0]  # waiting, not failed
    holder.execute("COMMIT")
    holder.close()
    assert proc.wait(timeout=60) == 0, proc.communicate()[0]


def test_a_start_waits_for_whoever_holds_the_migration_lock(database, tmp_path):
    start(database.url)
    with database.migration_lock_held():
        proc = starter(database.url, go=tmp_path)
        time.sleep(6)  # past the app's usual 5 s busy timeout
        assert proc.poll() is None, proc.communicate()[0]
    assert proc.wait(timeout=120) == 0, proc.communicate()[0]
    wait_until(lambda: database.versions() == [HEAD], what="the migration after the holder")
    assert database.run("SELECT sensor_id FROM readings") == [("held",)]


def test_the_readme_migration_commands_work_and_revisions_go_down_and_up(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'cli.db'}")
    env = dict(os.environ, DATABASE_URL=database.url)

    def flask_db(*args):
        done = subprocess.run([str(Path(PYTHON).parent / "flask"), "--app",
                               "readings:create_db_app(upgrade=False)", "db", *args],
                              cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    flask_db("upgrade")
    assert HEAD in flask_db("current") and database.versions() == [HEAD]
    flask_db("downgrade", "0001_baseline")
    assert database.versions() == ["0001_baseline"]
    assert not {"sample_slots", "readings_guard_insert"} & database.objects()
    flask_db("upgrade")
    assert database.versions() == [HEAD] and SCHEMA["sqlite"] <= database.objects()


def test_a_failing_migration_leaves_the_database_as_it_was(database, tmp_path):
    """The upgrade runs in the lock's transaction, so a revision that fails half-way changes nothing
    (SQLite too, whose DDL Alembic would otherwise run outside any transaction)."""
    app = start(database.url)
    directory = tmp_path / "migrations"
    shutil.copytree(REPO / "migrations", directory, ignore=shutil.ignore_patterns("__pycache__"))
    (directory / "versions" / "0004_broken.py").write_text(
        f"from alembic import op\nrevision = '0004_broken'\ndown_revision = {HEAD!r}\n"
        "def upgrade():\n"
        "    op.execute('CREATE TABLE half_done (x INTEGER)')\n"
        "    op.execute('INSERT INTO readings (sensor_id, temperature_c) VALUES (1, 2, 3)')\n")
    before = database.objects()
    with app.app_context(), pytest.raises(Exception, match="(?i)values"):
        command.upgrade(current_app.extensions["migrate"].migrate.get_config(str(directory)), "head")
    assert database.objects() == before and database.versions() == [HEAD]


# 0008: taken_s, the epoch second of taken_at, for rows written before it as well as after.
EPOCH_ROWS = {  # taken_at as a person writes it -> taken_s (None: no readable time)
    "sqlite": {"'2026-11-29 12:00:00'": 1795953600, "'2026-11-29 12:00:00.999'": 1795953600,
               "'2026-11-29T14:00:00+02:00'": 1795953600, "'2026-11-29T12:00:01Z'": 1795953601,
               "'garbage'": None, "'now'": None, "2461008.9": None, "X'32303236'": None},
    "postgresql": {"'2026-11-29 12:00:00Z'": 1795953600, "'2026-11-29 12:00:00.999Z'": 1795953600,
                   "'2026-11-29T14:00:00+02:00'": 1795953600, "'1969-12-31 23:59:59.5Z'": -1},
}


def at_revision(url, revision):
    from readings import create_db_app, migrate

    app = create_db_app({"SQLALCHEMY_DATABASE_URI": url}, upgrade=False)
    with app.app_context():
        if revision == "down":
            command.downgrade(migrate._config(), "0007_change_order")
        else:
            migrate.upgrade(revision)


def test_taken_s_is_the_epoch_second_of_every_old_row_and_goes_down_and_up(database):
    at_revision(database.url, "0007_change_order")
    if database.dialect == "sqlite":  # old poison, from before the guards
        database.run("DROP TRIGGER readings_guard_insert")
    rows = EPOCH_ROWS[database.dialect]
    for taken_at in rows:
        database.run("INSERT INTO readings (sensor_id, taken_at, temperature_c) "  # literals only
                     f"VALUES ('sensor-1', {taken_at}, 20)")
    before = database.dump("readings")

    at_revision(database.url, "head")

    assert database.run("SELECT taken_s FROM readings ORDER BY id") == [(s,) for s in rows.values()]
    database.run("INSERT INTO readings (sensor_id, taken_at, temperature_c) "
                 "VALUES ('sensor-1', '2026-11-29T12:00:02Z', 21)")
    assert database.run("SELECT taken_s FROM readings ORDER BY id DESC LIMIT 1") == [(1795953602,)]
    with pytest.raises((sqlite3.OperationalError, psycopg.errors.GeneratedAlways),
                       match="(?i)generated"):
        database.run("UPDATE readings SET taken_s = 0")
    database.run("DELETE FROM readings WHERE temperature_c = 21")

    at_revision(database.url, "down")
    assert database.dump("readings") == before
    assert "readings_sensor_epoch" not in database.objects()
    at_revision(database.url, "head")
    assert database.versions() == [HEAD]
