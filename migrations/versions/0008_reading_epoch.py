"""readings.taken_s: taken_at as whole seconds since the Unix epoch (UTC), and an index on it.

Long windows group a month of readings into buckets (readings/buckets.py). On SQLite taken_at is
text, so comparing it to a time compares text (an ISO 8601 row with an offset falls in the wrong
window) and each row's bucket meant parsing it. taken_s is a generated column, so every writer
gets it for free and existing rows need no backfill: virtual on SQLite (computed on read, kept in
the index), stored on PostgreSQL (which rewrites the table once, here). Whatever no one can read
as a time (old poison rows: 'garbage', a number, a BLOB, 'now') has taken_s NULL, outside every
window. The index (sensor_id, taken_s, temperature_c) answers a window's buckets from the index
alone.

Revision ID: 0008_reading_epoch
Revises: 0007_change_order
"""
from alembic import op

revision = "0008_reading_epoch"
down_revision = "0007_change_order"
branch_labels = None
depends_on = None

# Only text that starts like a date reaches strftime: SQLite refuses 'now' in an index (it is not
# deterministic), and a number would be read as a Julian day.
SQLITE_EPOCH = ("CASE WHEN typeof(taken_at) = 'text' AND taken_at GLOB '[0-9][0-9][0-9][0-9]-*' "
                "THEN CAST(strftime('%s', taken_at) AS INTEGER) END")
# AT TIME ZONE 'UTC' makes the expression immutable (a timestamptz's epoch alone is not, to
# PostgreSQL), as a generated column must be.
POSTGRES_EPOCH = "floor(extract(epoch FROM taken_at AT TIME ZONE 'UTC'))::bigint"

INDEX = "CREATE INDEX readings_sensor_epoch ON readings (sensor_id, taken_s, temperature_c)"


def upgrade():
    if op.get_context().dialect.name == "sqlite":
        column = f"INTEGER GENERATED ALWAYS AS ({SQLITE_EPOCH}) VIRTUAL"
    else:
        column = f"BIGINT GENERATED ALWAYS AS ({POSTGRES_EPOCH}) STORED"
    op.execute(f"ALTER TABLE readings ADD COLUMN taken_s {column}")
    op.execute(INDEX)


def downgrade():
    op.execute("DROP INDEX readings_sensor_epoch")
    op.execute("ALTER TABLE readings DROP COLUMN taken_s")
