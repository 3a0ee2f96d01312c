"""Alerts: per-sensor thresholds, the alert log, and where the change log was pruned up to.

- sensor_thresholds: a low and a high limit per sensor (either may be absent).
- alerts: one row per alert (kind high, low or stale); ended_at is NULL while it is open. A unique
  partial index allows at most one open alert of a kind per sensor, so a retried or redelivered
  evaluation can never open a second one.
- log_retention: one row, the highest reading_changes id retention has pruned (0: none). A client
  whose last id is below it must resync from a fresh snapshot.

Revision ID: 0006_alerts
Revises: 0003_reading_guards (the integrator re-chains this after the other branches' revisions)
"""
import sqlalchemy as sa
from alembic import op

revision = "0006_alerts"
down_revision = "0005_ingest_keys"
branch_labels = None
depends_on = None

OPEN = sa.text("ended_at IS NULL")


def _moment():
    # As readings.taken_at: text on SQLite (readings.models.UTCDateTime), timestamptz on PostgreSQL.
    return sa.DateTime(timezone=True).with_variant(sa.String(), "sqlite")


def upgrade():
    op.create_table(
        "sensor_thresholds",
        sa.Column("sensor_id", sa.Text(), primary_key=True),
        sa.Column("low_c", sa.Float()),
        sa.Column("high_c", sa.Float()),
        sa.Column("updated_at", _moment(), nullable=False),
        sa.CheckConstraint("low_c IS NULL OR high_c IS NULL OR low_c < high_c",
                           name="sensor_thresholds_band_check"),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("sensor_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("started_at", _moment(), nullable=False),
        sa.Column("ended_at", _moment()),
        sa.Column("value", sa.Float()),
        sa.Column("details", sa.Text()),
        sa.CheckConstraint("kind IN ('high', 'low', 'stale')", name="alerts_kind_check"),
    )
    op.create_index("alerts_one_open", "alerts", ["sensor_id", "kind"], unique=True,
                    sqlite_where=OPEN, postgresql_where=OPEN)
    op.create_index("alerts_started", "alerts", ["started_at"])
    op.create_table(
        "log_retention",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("pruned_through_id", sa.Integer(), nullable=False),
        sa.CheckConstraint("id = 1", name="log_retention_one_row"),
    )
    op.execute("INSERT INTO log_retention (id, pruned_through_id) VALUES (1, 0)")


def downgrade():
    op.drop_table("log_retention")
    op.drop_index("alerts_started", "alerts")
    op.drop_index("alerts_one_open", "alerts")
    op.drop_table("alerts")
    op.drop_table("sensor_thresholds")
