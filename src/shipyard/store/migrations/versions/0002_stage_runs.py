"""Stage runs: per-stage records of a pipeline run, and the run cache.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stage_runs",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("stage", sa.String(100), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("ended_at", sa.DateTime(timezone=True)),
        sa.Column("exit_code", sa.Integer),
        sa.Column("deps", sa.JSON, nullable=False),
        sa.Column("outs", sa.JSON, nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("metrics", sa.JSON, nullable=False),
        sa.Column("resources", sa.JSON, nullable=False),
        sa.Column("log_oid", sa.String(80)),
        sa.Column("log_tail", sa.Text),
        sa.PrimaryKeyConstraint("id", name="pk_stage_runs"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_stage_runs_run_id_runs"),
    )
    op.create_index("ix_stage_runs_run_id", "stage_runs", ["run_id"])
    op.create_index("ix_stage_runs_fingerprint", "stage_runs", ["fingerprint"])


def downgrade() -> None:
    op.drop_index("ix_stage_runs_fingerprint", "stage_runs")
    op.drop_index("ix_stage_runs_run_id", "stage_runs")
    op.drop_table("stage_runs")
