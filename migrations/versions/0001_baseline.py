"""Baseline: the schema as main created it before migrations (readings, change log, triggers).

Every statement creates only what is missing, so a database made by the old create_all() start-up
(tables and triggers, no alembic_version) is adopted as this revision with its rows and ids, and
upgraded from here. Frozen: later changes go in later revisions.

Revision ID: 0001_baseline
Revises:
"""
from alembic import op

revision = "0001_baseline"
down_revision = None
branch_labels = None
depends_on = None

_LOG_COLUMNS = "op, reading_id, sensor_id, taken_at, temperature_c"

SQLITE = [
    """CREATE TABLE IF NOT EXISTS readings (
        id INTEGER NOT NULL,
        sensor_id TEXT NOT NULL,
        taken_at VARCHAR DEFAULT CURRENT_TIMESTAMP NOT NULL,
        temperature_c FLOAT NOT NULL,
        PRIMARY KEY (id))""",
    "CREATE INDEX IF NOT EXISTS readings_sensor_time ON readings (sensor_id, taken_at)",
    # AUTOINCREMENT: SQLite never reuses an id, so "changes after id N" stays meaningful.
    """CREATE TABLE IF NOT EXISTS reading_changes (
        id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
        op VARCHAR(6) NOT NULL,
        reading_id INTEGER NOT NULL,
        sensor_id TEXT,
        taken_at VARCHAR,
        temperature_c FLOAT)""",
] + [
    f"""CREATE TRIGGER IF NOT EXISTS readings_log_{op.lower()} AFTER {op} ON readings
        BEGIN INSERT INTO reading_changes ({_LOG_COLUMNS})
        VALUES ('{op}', {row}.id, {row}.sensor_id, {row}.taken_at, {row}.temperature_c); END"""
    for op, row in (("INSERT", "NEW"), ("UPDATE", "NEW"), ("DELETE", "OLD"))
]

POSTGRES = [
    """CREATE TABLE IF NOT EXISTS readings (
        id SERIAL NOT NULL,
        sensor_id TEXT NOT NULL,
        taken_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP NOT NULL,
        temperature_c FLOAT NOT NULL,
        PRIMARY KEY (id))""",
    "CREATE INDEX IF NOT EXISTS readings_sensor_time ON readings (sensor_id, taken_at)",
    """CREATE TABLE IF NOT EXISTS reading_changes (
        id SERIAL NOT NULL,
        op VARCHAR(6) NOT NULL,
        reading_id INTEGER NOT NULL,
        sensor_id TEXT,
        taken_at TIMESTAMP WITH TIME ZONE,
        temperature_c FLOAT,
        PRIMARY KEY (id))""",
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


def upgrade():
    for ddl in SQLITE if op.get_context().dialect.name == "sqlite" else POSTGRES:
        op.execute(ddl)


def downgrade():
    if op.get_context().dialect.name == "sqlite":
        for name in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS readings_log_{name}")
    else:
        op.execute("DROP TRIGGER IF EXISTS readings_log ON readings")
        op.execute("DROP FUNCTION IF EXISTS readings_log_change()")
    op.execute("DROP TABLE IF EXISTS reading_changes")
    op.execute("DROP TABLE IF EXISTS readings")
