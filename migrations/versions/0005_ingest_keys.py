"""ingest_keys: the ingest API's Idempotency-Key record, one row per key for 24 hours.

Written in the same transaction as the readings a POST /api/readings stores, so a retried request
with the same key stores nothing twice and gets the first answer back. `request_sha256` lets a key
reused for a different body be refused instead of silently answered with another request's ids.
Like sample_slots it lives outside the public readings table and has no foreign key to it.

Revision ID: 0005_ingest_keys
Revises: 0003_reading_guards
"""
import sqlalchemy as sa
from alembic import op

revision = "0005_ingest_keys"
down_revision = "0004_labelling_jobs"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "ingest_keys",
        sa.Column("key", sa.Text(), nullable=False),
        # UTC: text on SQLite in the readings table's format, timestamptz on PostgreSQL.
        sa.Column("created_at", sa.DateTime(timezone=True).with_variant(sa.String(), "sqlite"),
                  nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("response", sa.Text(), nullable=False),
        sa.Column("request_sha256", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    # Expired keys are pruned by age on every ingest.
    op.create_index("ingest_keys_created_at", "ingest_keys", ["created_at"])


def downgrade():
    op.drop_index("ingest_keys_created_at", table_name="ingest_keys")
    op.drop_table("ingest_keys")
