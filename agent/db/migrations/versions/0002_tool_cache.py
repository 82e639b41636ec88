"""the tool cache: tools, uses, verified

The tool cache joins the schema, so one database (a PostgreSQL server shared by several processes)
holds sessions and tools under one migration history. Tool caches written before migrations
existed (SQLite files) already hold ``tools`` in exactly this shape, and perhaps ``uses`` and
``verified`` without their ``id`` column: those two are rebuilt with SQLite's ``rowid`` as ``id``,
so every row is kept in the order it was written. Tables that are missing are made.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

USES = ("name", "version", "ok", "detail", "request", "at")
VERIFIED = ("kind", "request", "artifact", "objective", "at")


def _uses(name: str) -> None:
    op.create_table(
        name,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("ok", sa.Integer, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("request", sa.Text, nullable=False),
        sa.Column("at", sa.Float, nullable=False),
    )


def _verified(name: str) -> None:
    op.create_table(
        name,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("request", sa.Text, nullable=False),
        sa.Column("artifact", sa.Text, nullable=False),
        sa.Column("objective", sa.Float),
        sa.Column("at", sa.Float, nullable=False),
    )


def _table(name: str, make: object, columns: tuple[str, ...], existing: set[str]) -> None:
    assert callable(make)
    if name not in existing:
        make(name)
        return
    have = {c["name"] for c in sa.inspect(op.get_bind()).get_columns(name)}
    if "id" in have:
        return
    # an SQLite table of the code before migrations: rebuilt with its rowids as ids
    make(f"{name}_new")
    cols = ", ".join(columns)
    op.execute(f"INSERT INTO {name}_new (id, {cols}) SELECT rowid, {cols} FROM {name}")
    op.drop_table(name)
    op.rename_table(f"{name}_new", name)


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "tools" not in existing:
        op.create_table(
            "tools",
            sa.Column("name", sa.Text, nullable=False),
            sa.Column("version", sa.Integer, nullable=False),
            sa.Column("task", sa.Text, nullable=False),
            sa.Column("description", sa.Text, nullable=False),
            sa.Column("record", sa.Text, nullable=False),
            sa.Column("created", sa.Float, nullable=False),
            sa.PrimaryKeyConstraint("name", "version"),
        )
    _table("uses", _uses, USES, existing)
    _table("verified", _verified, VERIFIED, existing)
    op.create_index("ix_uses_name", "uses", ["name"])
    op.create_index("ix_verified_kind", "verified", ["kind"])


def downgrade() -> None:
    op.drop_table("verified")
    op.drop_table("uses")
    op.drop_table("tools")
