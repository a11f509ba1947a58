"""Serving control plane: routing tables and feature flags.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table, key in (("routing_tables", "model"), ("flags", "name")):
        op.create_table(
            table,
            sa.Column(key, sa.String(100), nullable=False),
            sa.Column("spec", sa.JSON, nullable=False),
            sa.Column("revision", sa.BigInteger, nullable=False),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("updated_by", sa.String(200), nullable=False),
            sa.PrimaryKeyConstraint(key, name=f"pk_{table}"),
        )
        op.create_index(f"ix_{table}_revision", table, ["revision"])


def downgrade() -> None:
    op.drop_table("flags")
    op.drop_table("routing_tables")
