"""sessions and turns

The first schema. Databases written before migrations existed (SQLite files of earlier versions)
already hold both tables in exactly this shape: they are left as they are, and only the revision is
recorded.

Revision ID: 0001
Revises:
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "sessions" not in existing:
        op.create_table(
            "sessions",
            sa.Column("id", sa.Text, primary_key=True),
            sa.Column("created", sa.Float, nullable=False),
            sa.Column("updated", sa.Float, nullable=False),
        )
    if "turns" not in existing:
        op.create_table(
            "turns",
            sa.Column("session_id", sa.Text, nullable=False),
            sa.Column("n", sa.Integer, nullable=False),
            sa.Column("text", sa.Text, nullable=False),
            sa.Column("answer", sa.Text, nullable=False),
            sa.Column("created", sa.Float, nullable=False),
            sa.PrimaryKeyConstraint("session_id", "n"),
        )


def downgrade() -> None:
    op.drop_table("turns")
    op.drop_table("sessions")
