"""Change order: reading_changes.seq, the position in which clients receive a change.

On PostgreSQL ids are handed out when a row is inserted but become visible when its transaction
commits, so a lower id can appear after a higher one has been delivered. `seq` is NULL until a
relay assigns it (readings/pg.py) to rows that are already committed, in one short transaction at
a time, so seq grows in the order changes become visible and "changes after seq N" never skips
one. On SQLite one writer commits at a time, so seq is simply the id (set by a trigger).
Existing rows keep seq = id, so a client's remembered id stays meaningful across the upgrade.

Revision ID: 0007_change_order
Revises: 0005_ingest_keys
"""
from alembic import op

revision = "0007_change_order"
down_revision = "0006_alerts"
branch_labels = None
depends_on = None

SQLITE = [
    "ALTER TABLE reading_changes ADD COLUMN seq INTEGER",
    "UPDATE reading_changes SET seq = id",
    """CREATE TRIGGER reading_changes_seq AFTER INSERT ON reading_changes
       BEGIN UPDATE reading_changes SET seq = NEW.id WHERE id = NEW.id; END""",
    "CREATE UNIQUE INDEX reading_changes_seq_key ON reading_changes (seq)",
]

POSTGRES = [
    "ALTER TABLE reading_changes ADD COLUMN seq BIGINT",
    "CREATE SEQUENCE reading_changes_seq",
    "UPDATE reading_changes SET seq = id",
    "SELECT setval('reading_changes_seq', coalesce(max(seq), 0) + 1, false) FROM reading_changes",
    "CREATE UNIQUE INDEX reading_changes_seq_key ON reading_changes (seq)",
    # What the assigner looks for on every wake-up: small, since rows leave it once assigned.
    "CREATE INDEX reading_changes_unsequenced ON reading_changes (id) WHERE seq IS NULL",
]


def upgrade():
    for ddl in SQLITE if op.get_context().dialect.name == "sqlite" else POSTGRES:
        op.execute(ddl)


def downgrade():
    if op.get_context().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS reading_changes_seq")
        op.execute("DROP INDEX IF EXISTS reading_changes_seq_key")
    else:
        op.execute("DROP INDEX IF EXISTS reading_changes_unsequenced")
        op.execute("DROP INDEX IF EXISTS reading_changes_seq_key")
        op.execute("DROP SEQUENCE IF EXISTS reading_changes_seq")
    op.execute("ALTER TABLE reading_changes DROP COLUMN seq")
