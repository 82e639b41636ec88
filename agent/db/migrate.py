"""Bring a formalist database (sessions, the tool cache) to the newest schema with Alembic, safely when several processes
start on one database at once: on PostgreSQL the upgrade runs under a transaction-level advisory
lock, on SQLite inside a ``BEGIN IMMEDIATE`` transaction (SQLite's write lock); either way one
process migrates and the others find the work done. DDL is transactional on both, so an upgrade
that fails leaves the database as it was."""

from __future__ import annotations

import functools
import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, text
from sqlalchemy import exc as sa_exc

from agent.errors import InputError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
MIGRATION_LOCK = 0x666F726D  # "form": the advisory lock key of schema upgrades on PostgreSQL


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration for the schema, running on ``connection`` when given."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


@functools.cache
def head() -> str:
    """The newest revision (read from the migration scripts once per process)."""
    rev = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert rev is not None
    return rev


def current(connection: Connection) -> str | None:
    """The revision a database is at (None: never migrated, or empty)."""
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, what: str = "the database", key: str = "") -> None:
    """Upgrade the database behind ``engine`` to the newest revision (nothing when it is there).
    ``InputError`` (naming ``what``) when it is at a revision this code does not know: written by
    a newer formalist, or another program's Alembic history.

    A database at the newest revision costs one read and no lock. Given a ``key`` that names the
    database (its URL), one seen at the newest revision is not looked at again in this process: a
    revision never goes back."""
    seen = (os.getpid(), key)
    if key and seen in _AT_HEAD:
        return
    with engine.connect() as conn:
        try:
            at = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
        except sa_exc.DBAPIError:  # no such table (yet): decided under the lock
            at = None
        conn.rollback()
    if at != head():
        _upgrade(engine, what)
    if key:
        _AT_HEAD.add(seen)


_AT_HEAD: set[tuple[int, str]] = set()
"""The databases (by process and URL) this process has seen at the newest revision."""


def _upgrade(engine: Engine, what: str) -> None:
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.execution_options(formalist_write=True)  # BEGIN IMMEDIATE (see engine.py)
        with conn.begin():
            if engine.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
            at = current(conn)
            if at == head():
                return
            try:
                command.upgrade(alembic_config(conn), "head")
            except CommandError as e:
                raise InputError(
                    f"{what} is at schema revision {at!r}, which this formalist does not know "
                    f"(newest: {head()}); it was left as it is: {e}"
                ) from e
