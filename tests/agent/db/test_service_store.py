"""The sessions store on both of its databases (SQLite, and a real PostgreSQL server started by
``pg_cluster``): the schema made by Alembic migrations, databases of the code before migrations
kept with every turn, turns of one session held one at a time across stores (as two processes
hold them), a released hold that records nothing, and bad database names refused clearly."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pg_cluster import database_url as pg_database_url
from sqlalchemy import text

from agent.db import migrate
from agent.errors import InputError
from agent.session import SessionStore, database_url


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "sessions.sqlite")
    return pg_database_url()


@pytest.fixture
def stores(db: str) -> Iterator[list[SessionStore]]:
    opened: list[SessionStore] = []
    yield opened
    for s in opened:
        s.close()


def open_store(stores: list[SessionStore], db: str) -> SessionStore:
    s = SessionStore(db)
    stores.append(s)
    return s


def test_the_schema_is_migrated_to_head_and_turns_are_numbered(
    db: str, stores: list[SessionStore]
) -> None:
    store = open_store(stores, db)
    with store.engine.connect() as conn:
        assert migrate.current(conn) == migrate.head()
    assert not store.exists("s1") and store.turns("s1") == []
    assert store.append("s1", "first", {"status": "OPTIMAL", "x": [1, 2]}) == 1
    assert store.append("s1", "second", {"status": "FEASIBLE"}) == 2
    assert store.append("s2", "other", {}) == 1
    assert store.exists("s1")
    turns = store.turns("s1")
    assert [(t.n, t.text, t.answer) for t in turns] == [
        (1, "first", {"status": "OPTIMAL", "x": [1, 2]}),
        (2, "second", {"status": "FEASIBLE"}),
    ]
    assert store.sessions() == ["s2", "s1"]
    # a second store (another process) opening the migrated database finds everything
    again = open_store(stores, db)
    assert [t.text for t in again.turns("s1")] == ["first", "second"]


def test_two_stores_starting_at_once_on_an_empty_database_both_open(
    db: str, stores: list[SessionStore]
) -> None:
    opened: list[SessionStore | BaseException] = []

    def go() -> None:
        try:
            opened.append(SessionStore(db))
        except BaseException as e:
            opened.append(e)

    threads = [threading.Thread(target=go) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    errors = [o for o in opened if isinstance(o, BaseException)]
    stores.extend(o for o in opened if isinstance(o, SessionStore))
    assert not errors and len(stores) == 4
    assert stores[0].append("s", "t", {}) == 1


def test_a_held_session_waits_for_the_other_holder_across_stores(
    db: str, stores: list[SessionStore]
) -> None:
    """Two stores stand for two processes. On PostgreSQL the database orders the turns; on SQLite
    the process does (``Session``'s lock), so there the stores share nothing and the test only
    checks that a hold reads and records."""
    a, b = open_store(stores, db), open_store(stores, db)
    a.append("s", "turn one", {})
    first = a.hold("s")
    assert [t.n for t in first.turns()] == [1]
    if a.dialect != "postgresql":
        assert first.append("turn two", {}) == 2
        first.release()
        return
    seen: list[int] = []
    got = threading.Event()

    def second() -> None:
        hold = b.hold("s")  # waits for ``first``
        got.set()
        seen.extend(t.n for t in hold.turns())
        seen.append(hold.append("turn three", {}))
        hold.release()

    t = threading.Thread(target=second)
    t.start()
    assert not got.wait(1.0), "the second holder did not wait"
    assert first.append("turn two", {}) == 2
    first.release()
    t.join(30)
    assert seen == [1, 2, 3]
    assert [x.text for x in a.turns("s")] == ["turn one", "turn two", "turn three"]


def test_a_released_hold_records_nothing_and_frees_the_session(
    db: str, stores: list[SessionStore]
) -> None:
    a, b = open_store(stores, db), open_store(stores, db)
    hold = a.hold("s")
    hold.release()
    hold.release()  # twice is harmless
    assert not a.exists("s")
    started = time.monotonic()
    other = b.hold("s")
    assert time.monotonic() - started < 5
    assert other.append("kept", {}) == 1
    other.release()
    assert [t.text for t in a.turns("s")] == ["kept"]


def test_a_database_of_the_code_before_migrations_keeps_every_turn(
    tmp_path: Path, stores: list[SessionStore]
) -> None:
    path = tmp_path / "old.sqlite"
    old = sqlite3.connect(path, isolation_level=None)  # exactly what the earlier code made
    old.execute("PRAGMA journal_mode=WAL")
    old.execute(
        "CREATE TABLE IF NOT EXISTS sessions (id TEXT PRIMARY KEY, created REAL NOT NULL, "
        "updated REAL NOT NULL)"
    )
    old.execute(
        "CREATE TABLE IF NOT EXISTS turns (session_id TEXT NOT NULL, n INTEGER NOT NULL, "
        "text TEXT NOT NULL, answer TEXT NOT NULL, created REAL NOT NULL, "
        "PRIMARY KEY (session_id, n))"
    )
    old.execute("INSERT INTO sessions VALUES ('abc', 1.0, 2.0)")
    old.execute("INSERT INTO turns VALUES ('abc', 1, 'hello', '{\"status\": \"NEEDS_INFO\"}', 1.0)")
    old.execute("INSERT INTO turns VALUES ('abc', 2, 'world', '{\"status\": \"OPTIMAL\"}', 2.0)")
    old.close()
    store = open_store(stores, str(path))
    with store.engine.connect() as conn:
        assert migrate.current(conn) == migrate.head()
        tables = {r[0] for r in conn.execute(text("SELECT name FROM sqlite_master"))}
    assert {"sessions", "turns", "alembic_version"} <= tables
    assert [(t.n, t.text, t.answer["status"]) for t in store.turns("abc")] == [
        (1, "hello", "NEEDS_INFO"),
        (2, "world", "OPTIMAL"),
    ]
    assert store.append("abc", "more", {}) == 3
    store.close()
    assert [t.n for t in SessionStore(path).turns("abc")] == [1, 2, 3]


@pytest.mark.parametrize(
    "where, says",
    [
        ("mysql://u@h/db", "a file (SQLite) or a postgresql:// URL"),
        ("postgresql+psycopg2://u@h/db", "psycopg 3"),
        ("postgresql://u:secret@127.0.0.1:1/db", "cannot use the sessions database"),
    ],
)
def test_bad_database_urls_are_refused_clearly(where: str, says: str) -> None:
    with pytest.raises(InputError) as e:
        SessionStore(where)
    assert says in str(e.value) and "secret" not in str(e.value)


def test_database_urls_are_read() -> None:
    assert database_url("postgres://u@h:5/d").drivername == "postgresql+psycopg"
    assert database_url("postgresql://u@h/d").render_as_string() == "postgresql+psycopg://u@h/d"
    assert database_url("postgresql+psycopg://u@h/d").database == "d"
