"""labelling_jobs: NILM uploads and their results, shared by every web process and worker.

One row per upload (labelling/store.py): the compressed upload until the job ends, then the
compressed analysis and labelled CSV, or the error to show. Rows expire (NILM_JOB_TTL_S) and are
pruned by created_at.

Revision ID: 0004_labelling_jobs
Revises: 0003_reading_guards
"""
import sqlalchemy as sa
from alembic import op

revision = "0004_labelling_jobs"
down_revision = "0003_reading_guards"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "labelling_jobs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("started_at", sa.Float()),
        sa.Column("finished_at", sa.Float()),
        sa.Column("error", sa.Text()),
        sa.Column("upload", sa.LargeBinary()),
        sa.Column("analysis", sa.LargeBinary()),
        sa.Column("labelled", sa.LargeBinary()),
    )
    op.create_index("labelling_jobs_created", "labelling_jobs", ["created_at"])


def downgrade():
    op.drop_index("labelling_jobs_created", "labelling_jobs")
    op.drop_table("labelling_jobs")
