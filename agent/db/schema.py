"""The sessions schema, as SQLAlchemy Core tables: the same on SQLite and PostgreSQL.

``sessions``: one row per conversation (its id, when it began and when its last turn was recorded);
``turns``: one row per recorded turn, numbered 1, 2, ... within its session (the number is assigned
while the session is held, so two turns never share one). Times are seconds since the epoch; an
answer is its JSON text. Changing a table here needs a migration in ``migrations/versions``.

The tool cache (``tool_maker.cache``, revision 0002): ``tools``, one row per version of a tool (its
JSON record; the primary key makes two writers of one version impossible); ``uses``, one row per
use of a tool and whether its artifact verified; ``verified``, requests solved and verified
without a tool. ``id`` orders uses and verified requests by when they were written.
"""

from __future__ import annotations

from sqlalchemy import Column, Float, Index, Integer, MetaData, PrimaryKeyConstraint, Table, Text

metadata = MetaData()

sessions = Table(
    "sessions",
    metadata,
    Column("id", Text, primary_key=True),
    Column("created", Float, nullable=False),
    Column("updated", Float, nullable=False),
)

turns = Table(
    "turns",
    metadata,
    Column("session_id", Text, nullable=False),
    Column("n", Integer, nullable=False),
    Column("text", Text, nullable=False),
    Column("answer", Text, nullable=False),
    Column("created", Float, nullable=False),
    PrimaryKeyConstraint("session_id", "n"),
)

tools = Table(
    "tools",
    metadata,
    Column("name", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("task", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("record", Text, nullable=False),
    Column("created", Float, nullable=False),
    PrimaryKeyConstraint("name", "version"),
)

uses = Table(
    "uses",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("ok", Integer, nullable=False),
    Column("detail", Text, nullable=False),
    Column("request", Text, nullable=False),
    Column("at", Float, nullable=False),
    Index("ix_uses_name", "name"),
)

verified = Table(
    "verified",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", Text, nullable=False),
    Column("request", Text, nullable=False),
    Column("artifact", Text, nullable=False),
    Column("objective", Float),
    Column("at", Float, nullable=False),
    Index("ix_verified_kind", "kind"),
)
