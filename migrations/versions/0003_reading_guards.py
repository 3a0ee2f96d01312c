"""Reading guards: the public readings table refuses bad new rows, naming the column.

A row is refused when its sensor_id is not non-empty text, its temperature_c is not a finite
number in -50..150 C, or (SQLite) its taken_at is not UTC text as CURRENT_TIMESTAMP writes it
(`YYYY-MM-DD HH:MM:SS[.ffffff]`) or ISO 8601 (`YYYY-MM-DDTHH:MM:SS[.ffffff][Z|+HH:MM|-HH:MM]`).
Rows already in the table are left as they are (a rebuild would fail on them); readers treat
those as invalid readings. PostgreSQL's timestamptz column already refuses bad timestamps.

Revision ID: 0003_reading_guards
Revises: 0002_sample_slots
"""
from alembic import op

revision = "0003_reading_guards"
down_revision = "0002_sample_slots"
branch_labels = None
depends_on = None

MIN_C, MAX_C = -50, 150
DIGITS = {"Y": "[0-9][0-9][0-9][0-9]", "N": "[0-9][0-9]"}
# Date and time, with a space (UTC) or a T (ISO 8601) between; the fraction and zone follow.
STAMP = "{Y}-{N}-{N}[ T]{N}:{N}:{N}".format(**DIGITS)
OFFSET = "*[+-]{N}:{N}".format(**DIGITS)

SENSOR_ID_OK = "typeof(NEW.sensor_id) = 'text' AND length(trim(NEW.sensor_id)) > 0"
TEMPERATURE_OK = (f"typeof(NEW.temperature_c) IN ('real', 'integer') "
                  f"AND NEW.temperature_c BETWEEN {MIN_C} AND {MAX_C}")  # also excludes +-Inf
# v: the text; core: v without its zone; base: the first 19 characters with a space for the T.
# The strftime round trip refuses what the patterns let through but the calendar does not
# (2026-02-30, 24:00:00), since SQLite would otherwise normalise it silently.
TAKEN_AT_OK = f"""EXISTS (SELECT 1 FROM (
        SELECT v, zone, substr(v, 1, length(v) - zone) AS core,
               replace(substr(v, 1, 19), 'T', ' ') AS base
        FROM (SELECT NEW.taken_at AS v,
                     CASE WHEN typeof(NEW.taken_at) != 'text' THEN 0
                          WHEN NEW.taken_at GLOB '*Z' THEN 1
                          WHEN NEW.taken_at GLOB '{OFFSET}' THEN 6 ELSE 0 END AS zone))
    WHERE typeof(v) = 'text'
      AND core GLOB '{STAMP}*'
      AND (zone = 0 OR substr(core, 11, 1) = 'T')
      AND (length(core) = 19 OR (length(core) BETWEEN 21 AND 26 AND substr(core, 20, 1) = '.'
                                 AND substr(core, 21) NOT GLOB '*[^0-9]*'))
      AND substr(base, 1, 4) != '0000'
      AND strftime('%Y-%m-%d %H:%M:%S', base, '+0 seconds') = base
      AND (zone < 6 OR (substr(v, -5, 2) <= '23' AND substr(v, -2) <= '59')))"""

SQLITE_CHECKS = [
    (SENSOR_ID_OK, "readings.sensor_id must be non-empty text"),
    (TEMPERATURE_OK, f"readings.temperature_c must be a finite number from {MIN_C} to {MAX_C} C"),
    (TAKEN_AT_OK, "readings.taken_at must be UTC text YYYY-MM-DD HH:MM:SS[.ffffff] "
                  "or ISO 8601 YYYY-MM-DDTHH:MM:SS[.ffffff][Z|+HH:MM|-HH:MM]"),
]

POSTGRES_CHECKS = {
    "readings_sensor_id_check": "length(btrim(sensor_id)) > 0",
    # NaN sorts above every number in PostgreSQL, so BETWEEN refuses it as well as +-Infinity.
    "readings_temperature_c_check": f"temperature_c BETWEEN {MIN_C} AND {MAX_C}",
}


def sqlite_guard(event):
    body = "\n".join(f"SELECT RAISE(ABORT, '{message}') WHERE NOT ({check});"
                     for check, message in SQLITE_CHECKS)
    return (f"CREATE TRIGGER readings_guard_{event.lower()} BEFORE {event} ON readings\n"
            f"BEGIN\n{body}\nEND")


def upgrade():
    if op.get_context().dialect.name == "sqlite":
        op.execute(sqlite_guard("INSERT"))
        op.execute(sqlite_guard("UPDATE"))
    else:
        # NOT VALID: checked for every new or changed row, not for the rows already there.
        for name, check in POSTGRES_CHECKS.items():
            op.execute(f"ALTER TABLE readings ADD CONSTRAINT {name} CHECK ({check}) NOT VALID")


def downgrade():
    if op.get_context().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS readings_guard_insert")
        op.execute("DROP TRIGGER IF EXISTS readings_guard_update")
    else:
        for name in POSTGRES_CHECKS:
            op.execute(f"ALTER TABLE readings DROP CONSTRAINT IF EXISTS {name}")
