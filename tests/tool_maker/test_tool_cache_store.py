"""The tool cache on both of its databases (an SQLite file, and a real PostgreSQL server started by
``pg_cluster``): the tables made by the schema's Alembic migrations, tool caches of the code before
migrations upgraded with every tool, use and verified request kept, versions of one name stored by
two processes at once all distinct, uses written by two processes at once all counted, and bad
databases refused clearly."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pg_cluster import database_url as pg_database_url
from sqlalchemy import create_engine, text

from agent.db import migrate
from agent.errors import InputError
from tool_maker.cache import ToolCache
from tool_maker.sandbox import Sandbox
from tool_maker.tool import Tool, ToolCall

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "tools.sqlite")
    return pg_database_url()


@pytest.fixture
def caches() -> Iterator[list[ToolCache]]:
    opened: list[ToolCache] = []
    yield opened
    for c in opened:
        c.close()


def open_cache(caches: list[ToolCache], db: str) -> ToolCache:
    c = ToolCache(db)
    caches.append(c)
    return c


def double(name: str = "double", answer: int = 8, created: float = 1.0e9) -> Tool:
    call = ToolCall("What is twice 4?", [4], {}, answer)
    return Tool(
        name,
        "double",
        "doubling",
        "Twice x.",
        "double(x: int) -> int",
        "def double(x: int) -> int:\n    return 2 * x\n",
        (call,),
        (call,),
        "m",
        created=created,
        kind="milp",
    )


def untested(name: str) -> Tool:
    """A tool with no demos or tests: a new version of it has nothing to pass, so storing one
    runs nothing in the sandbox."""
    return Tool(name, "f", "t", "d", "f() -> int", "def f() -> int:\n    return 1\n", (), (), "m")


def test_tools_uses_and_verified_requests_round_trip(db: str, caches: list[ToolCache]) -> None:
    cache = open_cache(caches, db)
    assert cache.latest() == [] and cache.get("double") is None and cache.versions("x") == []
    stored = cache.put(double())
    assert stored.version == 1 and cache.get("double") == stored
    assert cache.put(untested("other")).version == 1
    assert [t.name for t in cache.latest()] == ["double", "other"]
    cache.record_use(stored, True, request="r1", at=10.0)
    cache.record_use(stored, False, "did not verify", "r2", at=20.0)
    cache.record_use(stored, False, "same time, written later", "r3", at=20.0)
    record = cache.use_record("double")
    assert (record["uses"], record["successes"], record["failures"]) == (3, 1, 2)
    assert record["by_version"] == {"1": [1, 2]}
    assert [f["request"] for f in record["last_failures"]] == ["r3", "r2"]
    cache.note_verified("milp", "first", {"variables": []}, 3.5)
    cache.note_verified("milp", "second", "text artifact", None)
    cache.note_verified("pddl", "plan", {}, None)
    assert cache.verified_requests("milp") == [
        {"request": "second", "artifact": "text artifact", "objective": None},
        {"request": "first", "artifact": {"variables": []}, "objective": 3.5},
    ]
    assert [r["request"] for r in cache.verified_requests("milp", limit=1)] == ["second"]
    # another process opening the same cache finds everything, at the newest schema
    again = open_cache(caches, db)
    assert again.get("double", 1) == stored and again.use_record("double") == record
    assert again._engine is not None
    with again._engine.connect() as conn:
        assert migrate.current(conn) == migrate.head()
    assert again.remove("double") == 1 and cache.get("double") is None
    assert cache.use_record("double")["uses"] == 0
    assert [t.name for t in cache.latest()] == ["other"]


def test_a_version_stored_meanwhile_is_checked_and_the_next_one_taken(
    db: str, caches: list[ToolCache]
) -> None:
    """``put`` checks a new version against the latest one, outside any lock (the sandbox takes
    seconds); another writer storing a version in that time makes it check again, against the
    winner, and take the version after it."""
    a, b = open_cache(caches, db), open_cache(caches, db)
    a.put(double())
    checked: list[int] = []

    def check(tool: Tool, old: Tool, sandbox: Sandbox | None, judge: Any) -> None:
        checked.append(old.version)
        if len(checked) == 1:  # while a checks against version 1, b stores version 2
            assert b.put(double(answer=8), Sandbox()).version == 2

    b._check_against = lambda *args: None  # type: ignore[method-assign]
    a._check_against = check  # type: ignore[method-assign]
    stored = a.put(double(created=2.0e9), Sandbox())
    assert checked == [1, 2] and stored.version == 3
    assert a.versions("double") == [1, 2, 3]
    assert a.get("double") == stored


WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from tool_maker.cache import ToolCache
    from tool_maker.sandbox import Sandbox
    from tool_maker.tool import Tool

    db, go, who, n = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    cache = ToolCache(db)
    tool = Tool("shared", "f", who, "d", "f() -> int", "def f() -> int:\\n    return 1\\n",
                (), (), who)
    Path(f"{go}-{who}").touch()  # ready
    while not go.exists():
        time.sleep(0.001)
    got = []
    for i in range(n):
        stored = cache.put(tool, Sandbox())
        got.append(stored.version)
        cache.record_use(stored, i % 2 == 0, request=who)
        time.sleep(0.003)  # the other writer's turn: their puts interleave
    cache.close()
    print(" ".join(map(str, got)))
    """
)


def test_two_processes_putting_one_name_get_distinct_versions_and_lose_no_use(
    db: str, caches: list[ToolCache], tmp_path: Path
) -> None:
    n = 10
    open_cache(caches, db).put(untested("seed"))  # the schema exists before the race
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, db, str(go), who, str(n)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for who in ("a", "b")
    ]
    deadline = time.monotonic() + 60
    while not all(Path(f"{go}-{who}").exists() for who in "ab"):  # both connected
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs)
        time.sleep(0.01)
    go.touch()  # then they start together
    outs = []
    for p in procs:
        try:
            out, err = p.communicate(timeout=120)
        finally:
            p.kill()
        assert p.returncode == 0, err
        outs.append([int(v) for v in out.split()])
    assert all(len(o) == n for o in outs)
    versions = sorted(outs[0] + outs[1])
    assert versions == list(range(1, 2 * n + 1))
    cache = open_cache(caches, db)
    assert cache.versions("shared") == versions
    by_writer = {v: t for v in versions if (t := cache.get("shared", v)) is not None}
    assert sorted(v for v, t in by_writer.items() if t.task == "a") == sorted(outs[0])
    record = cache.use_record("shared")
    assert record["uses"] == 2 * n and record["successes"] == n


# -- caches written before migrations (SQLite only) --------------------------------------------------
OLD_TOOLS = (
    "CREATE TABLE tools (name TEXT NOT NULL, version INTEGER NOT NULL, task TEXT NOT NULL, "
    "description TEXT NOT NULL, record TEXT NOT NULL, created REAL NOT NULL, "
    "PRIMARY KEY (name, version))"
)
OLD_USES = (
    "CREATE TABLE uses (name TEXT NOT NULL, version INTEGER NOT NULL, ok INTEGER NOT NULL, "
    "detail TEXT NOT NULL, request TEXT NOT NULL, at REAL NOT NULL)"
)
OLD_VERIFIED = (
    "CREATE TABLE verified (kind TEXT NOT NULL, request TEXT NOT NULL, artifact TEXT NOT NULL, "
    "objective REAL, at REAL NOT NULL)"
)


def old_cache(path: Path, with_history: bool) -> list[Tool]:
    """A cache as the code before migrations wrote it (its SQL), with two tools (one of them in
    two versions) and, ``with_history``, uses and verified requests (written with equal times, so
    only the order they were written in tells them apart)."""
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(OLD_TOOLS)
    tools = [double(), double(created=2.0e9).with_version(2), untested("other")]
    for t in tools:
        db.execute(
            "INSERT INTO tools (name, version, task, description, record, created) VALUES (?, ?, ?, ?, ?, ?)",
            (t.name, t.version, t.task, t.description, json.dumps(t.to_json()), t.created),
        )
    if with_history:
        db.execute(OLD_USES)
        db.execute(OLD_VERIFIED)
        for i, ok in enumerate([1, 0, 0, 1]):
            db.execute(
                "INSERT INTO uses (name, version, ok, detail, request, at) VALUES (?, ?, ?, ?, ?, ?)",
                ("double", 1 + i % 2, ok, f"d{i}", f"r{i}", 5.0),
            )
        for i in range(3):
            db.execute(
                "INSERT INTO verified (kind, request, artifact, objective, at) VALUES (?, ?, ?, ?, ?)",
                ("milp", f"q{i}", json.dumps({"n": i}), float(i), 7.0),
            )
    db.commit()
    db.close()
    return tools


@pytest.mark.parametrize("with_history", [True, False], ids=["tools-uses-verified", "tools-only"])
def test_a_cache_of_the_code_before_migrations_is_upgraded_with_everything_kept(
    with_history: bool, tmp_path: Path, caches: list[ToolCache]
) -> None:
    path = tmp_path / "old.sqlite"
    tools = old_cache(path, with_history)
    cache = open_cache(caches, str(path))
    assert cache.get("double", 1) == tools[0] and cache.get("double") == tools[1]
    assert [t.label for t in cache.latest()] == ["double@v2", "other@v1"]
    record = cache.use_record("double")
    if with_history:
        assert record["uses"] == 4 and record["by_version"] == {"1": [1, 1], "2": [1, 1]}
        assert [f["request"] for f in record["last_failures"]] == ["r2", "r1"]  # newest first
        assert [r["request"] for r in cache.verified_requests("milp")] == ["q2", "q1", "q0"]
    else:
        assert record["uses"] == 0 and cache.verified_requests("milp") == []
    # it goes on working as a cache: new rows come after the old ones
    cache.record_use(tools[1], False, "new", "r-new", at=5.0)
    assert cache.use_record("double")["last_failures"][0]["request"] == "r-new"
    assert cache.put(untested("other"), Sandbox()).version == 2  # no old tests: nothing runs
    con = sqlite3.connect(path)
    assert con.execute("SELECT version_num FROM alembic_version").fetchone() == (migrate.head(),)
    con.close()


def test_an_old_cache_put_in_the_place_of_an_open_one_is_upgraded_too(
    tmp_path: Path, caches: list[ToolCache]
) -> None:
    """A file replaced by an old cache (restored from a backup, say) is not taken for the one this
    process saw at the newest revision (its inode may well be the same)."""
    path = tmp_path / "tools.sqlite"
    first = open_cache(caches, str(path))
    first.put(untested("new"))
    first.close()
    for f in tmp_path.iterdir():
        f.unlink()
    old_cache(path, True)
    again = open_cache(caches, str(path))
    assert again.use_record("double")["uses"] == 4 and again.get("new") is None


def test_a_cache_at_a_revision_we_do_not_know_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "future.sqlite"
    old_cache(path, True)
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
    con.execute("INSERT INTO alembic_version VALUES ('9999')")
    con.commit()
    con.close()
    before = path.read_bytes()
    with pytest.raises(InputError, match="revision '9999'"):
        ToolCache(path)
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    "where, said",
    [
        ("mysql://u@localhost/tools", "a file (SQLite) or a postgresql:// URL"),
        ("postgresql+asyncpg://u@localhost/tools", "psycopg 3"),
    ],
)
def test_a_database_of_another_kind_is_refused_clearly(where: str, said: str) -> None:
    with pytest.raises(InputError, match=said.replace("(", r"\(").replace(")", r"\)")):
        ToolCache(where)


def test_a_postgresql_server_that_does_not_answer_is_a_clear_error() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(InputError, match="cannot use the tool cache postgresql") as e:
        ToolCache(f"postgresql://nobody:secret@127.0.0.1:{port}/tools")
    assert "secret" not in str(e.value)


def test_the_tool_tables_are_one_schema_with_the_sessions(db: str, caches: list[ToolCache]) -> None:
    """The sessions store and the tool cache can share one database: both migrate it to the same
    head, and each finds its tables there."""
    from agent.session import SessionStore

    cache = open_cache(caches, db)
    cache.put(double())
    store = SessionStore(db)
    try:
        assert store.append("s", "hello", {}) == 1
        assert ToolCache(db).get("double") is not None
    finally:
        store.close()
    url = db if "://" in db else f"sqlite:///{db}"
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM turns")).scalar() == 1
        assert conn.execute(text("SELECT COUNT(*) FROM tools")).scalar() == 1
    engine.dispose()


def test_where_the_tool_cache_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    from agent.config import Config

    url = "postgresql://u:p@db.example:5432/formalist"
    monkeypatch.delenv("FORMALIST_TOOLS_DB", raising=False)
    assert Config().tools_db == ""  # ~/.cache/formalist/tools.sqlite
    assert Config(db="sessions.sqlite").tools_db == ""  # a sessions file keeps only sessions
    assert Config(db=url).tools_db == url  # sessions and tools in one PostgreSQL database
    assert Config(db=url, tools={"cache": "t.sqlite"}).tools_db == "t.sqlite"
    monkeypatch.setenv("FORMALIST_TOOLS_DB", "/x/tools.sqlite")
    assert Config(db=url).tools_db == "/x/tools.sqlite"


def test_the_db_of_the_configuration_keeps_the_agents_tools_in_postgresql(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agent.agent import Agent
    from agent.config import Config
    from agent.tools_flow import tools_cache

    monkeypatch.delenv("FORMALIST_TOOLS_DB", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # the default file would be made here
    url = pg_database_url()
    cache = tools_cache(Agent(config=Config(cache="", db=url)))
    try:
        assert cache.path is None and cache.where.startswith("postgresql")
        cache.put(double())
        assert ToolCache(url).get("double") == double()
    finally:
        cache.close()
    assert not (tmp_path / ".cache").exists()


@pytest.mark.parametrize("start", ["sqlite", "postgresql", "old-cache"])
def test_the_migrations_give_exactly_the_tables_of_the_schema(
    start: str, caches: list[ToolCache], tmp_path: Path
) -> None:
    """What the migrations made (from nothing, or from a cache of the code before them) is what
    ``agent.db.schema`` declares: Alembic's comparison finds no difference."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from agent.db.schema import metadata

    db = pg_database_url() if start == "postgresql" else str(tmp_path / "tools.sqlite")
    if start == "old-cache":
        old_cache(Path(db), True)
    cache = open_cache(caches, db)
    cache.put(untested("x"))
    assert cache._engine is not None
    # SQLite's REAL, written by the old code, and FLOAT are one type there: compare types only
    # where the migrations wrote every column
    opts = {"compare_type": start != "old-cache"}
    with cache._engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn, opts=opts), metadata) == []
