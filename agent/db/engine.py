"""Engines on formalist's databases, for every store that keeps its data in them (sessions, the
tool cache): a file path is SQLite (WAL, with the write lock taken at a write transaction's start),
a ``postgresql://`` URL is PostgreSQL through psycopg 3. ``what`` names the store in errors ("the
tool cache"), so a bad name or an unreachable server is said in the store's own words."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Connection, Engine, create_engine, event, make_url
from sqlalchemy import exc as sa_exc
from sqlalchemy.pool import QueuePool

from agent.errors import InputError

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
OURS = frozenset({"sessions", "turns", "tools", "uses", "verified"})
"""Every table of the schema (``schema.py``): a SQLite file holding none of them is not ours."""


def is_url(where: str | Path) -> bool:
    return bool(_URL.match(str(where)))


def database_url(where: str | Path, what: str) -> URL:
    """The SQLAlchemy URL of a database given as a file path or a URL: ``postgresql://`` (or
    ``postgres://``) uses psycopg 3; ``sqlite:///PATH`` is a file. ``InputError`` for any other kind
    of URL. The folder of a file is not made here."""
    raw = str(where)
    if is_url(raw):
        try:
            url = make_url(raw)
        except sa_exc.ArgumentError as e:
            raise InputError(f"not a database URL: {raw!r} ({e})") from e
        backend, _, driver = url.drivername.partition("+")
        if backend in ("postgresql", "postgres"):
            if driver not in ("", "psycopg"):
                raise InputError(
                    f"{what} on PostgreSQL is reached with psycopg 3: write postgresql://... or "
                    f"postgresql+psycopg://..., not {url.drivername}://"
                )
            return url.set(drivername="postgresql+psycopg")
        if backend == "sqlite" and url.database:
            return URL.create("sqlite", database=str(Path(url.database).expanduser()))
        raise InputError(
            f"{what} is a file (SQLite) or a postgresql:// URL, not "
            f"{url.render_as_string(hide_password=True)}"
        )
    return URL.create("sqlite", database=str(Path(where).expanduser()))


def check_sqlite_file(path: Path, what: str, tables: frozenset[str] = OURS) -> set[str]:
    """Refuse, touching nothing (read-only, no journal made), a file that is not SQLite or that
    holds tables but none of ``tables``; return its tables (``alembic_version`` included)."""
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    except sqlite3.Error as e:
        raise InputError(f"cannot open {what} {path}: {e}") from e
    try:
        found = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.OperationalError as e:  # locked, unreadable...
        raise InputError(f"cannot use {what} {path}: {e}") from e
    except sqlite3.DatabaseError as e:  # "file is not a database", a damaged file
        raise InputError(
            f"{path} is not a formalist {_noun(what)} ({e}); it was left as it is: "
            "choose another --db"
        ) from e
    finally:
        db.close()
    mine = found - {"alembic_version"}
    if mine and not mine & tables:
        raise InputError(
            f"{path} is not a formalist {_noun(what)} (an SQLite file with other tables: "
            f"{', '.join(sorted(mine)[:5])}); it was left as it is: choose another --db"
        )
    return found


def _noun(what: str) -> str:
    return what.removeprefix("the ")


def sqlite_engine(path: Path, what: str) -> Engine:
    """An engine on the SQLite file (made on the first connection); ``formalist_write=True`` in a
    connection's execution options makes its transactions ``BEGIN IMMEDIATE``."""

    def connect() -> sqlite3.Connection:
        try:
            return sqlite3.connect(path, check_same_thread=False, timeout=30, isolation_level=None)
        except sqlite3.Error as e:
            raise InputError(f"cannot open {what} {path}: {e}") from e

    engine = create_engine("sqlite://", creator=connect, poolclass=QueuePool, pool_size=8)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.execute("PRAGMA journal_mode=WAL")
        dbapi_conn.execute("PRAGMA synchronous=FULL")

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # The driver leaves transactions to us (isolation_level=None): a write takes SQLite's
        # write lock at its start, so what it reads stays true until it commits.
        immediate = conn.get_execution_options().get("formalist_write")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def postgres_engine(url: URL, what: str, pool_size: int = 8, max_overflow: int = 64) -> Engine:
    try:
        import psycopg  # noqa: F401
    except ImportError as e:
        raise InputError(
            f"{what} on PostgreSQL needs psycopg 3: pip install 'formalist[serve]'"
        ) from e
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=60,
        pool_pre_ping=True,  # a restarted database server costs no failed call
        connect_args={"connect_timeout": 10, "keepalives": 1, "keepalives_idle": 30},
    )


def reason(e: sa_exc.SQLAlchemyError) -> str:
    """The driver's own message, first line (SQLAlchemy's wrapping adds a link and the SQL)."""
    said = str(getattr(e, "orig", None) or e).strip()
    return said.splitlines()[0] if said else type(e).__name__
