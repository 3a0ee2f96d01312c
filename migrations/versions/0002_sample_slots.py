"""sample_slots: the sampler's idempotency key, one row per (sensor, period slot).

Written in the same transaction as the sampled reading, so a second beat, a redelivery or a retry
cannot store a second reading for the same slot. It lives outside the public readings table and
has no foreign key to it: rows written by hand are never refused, and deleting a reading by hand
is never blocked.

Revision ID: 0002_sample_slots
Revises: 0001_baseline
"""
import sqlalchemy as sa
from alembic import op

revision = "0002_sample_slots"
down_revision = "0001_baseline"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "sample_slots",
        sa.Column("sensor_id", sa.Text(), nullable=False),
        # A slot counts periods since the epoch: 64-bit on PostgreSQL so short periods never overflow.
        sa.Column("slot", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("reading_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("sensor_id", "slot"),
    )


def downgrade():
    op.drop_table("sample_slots")
