"""The sessions schema, as SQLAlchemy Core tables: the same on SQLite and PostgreSQL.

``sessions``: one row per conversation (its id, when it began and when its last turn was recorded);
``turns``: one row per recorded turn, numbered 1, 2, ... within its session (the number is assigned
while the session is held, so two turns never share one). Times are seconds since the epoch; an
answer is its JSON text. Changing a table here needs a migration in ``migrations/versions``.
"""

from __future__ import annotations

from sqlalchemy import Column, Float, Integer, MetaData, PrimaryKeyConstraint, Table, Text

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
