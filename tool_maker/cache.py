"""The tool cache: verified tools, as JSON text, versioned; in an SQLite file (the default) or in
PostgreSQL (a ``postgresql://`` URL, shared by every process and host that names it).

The tables are part of formalist's one schema (``agent.db.schema``), reached through SQLAlchemy
Core and created or upgraded by its Alembic migrations (revision 0002): a SQLite cache written by
the code before migrations is upgraded in place with every tool, use and verified request kept.

Table ``tools(name, version, task, description, record, created)``: ``record`` is the tool's JSON
(``Tool.to_json``); nothing is pickled, so reading the cache never runs code. Storing a tool under
a name that exists makes a new version, and only if the new code passes every test and demo of
the latest version (run in the sandbox): a change may fix or extend a tool, not break what it did.
The primary key (name, version) decides between writers: two processes storing one name at once
cannot both take a version; the one that loses checks its code against the winner's tests and
takes the next version.

Table ``uses(id, name, version, ok, detail, request, at)``: each time the agent used a tool, whether
the artifact it built was solved and verified, and if not, why (the tool's record of successes and
failures). Table ``verified(id, kind, request, artifact, objective, at)``: requests in words the
agent solved and verified directly (no tool): the solved examples a tool can later be made from,
and what ``similar_verified`` counts to propose making one. Each is one row per insert, so
concurrent writers lose none.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.errors import ArtifactError, Diagnostic, InputError
from tool_maker.sandbox import Sandbox
from tool_maker.tool import Judge, Tool, run_calls

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine, Executable
    from sqlalchemy.exc import SQLAlchemyError

DEFAULT_DB = "~/.cache/formalist/tools.sqlite"
WHAT = "the tool cache"
MAX_RACES = 20
"""How many times ``put`` re-checks a new version against one that another writer stored first."""


def default_path() -> str | Path:
    """``FORMALIST_TOOLS_DB`` (a file or a ``postgresql://`` URL) or
    ``~/.cache/formalist/tools.sqlite``."""
    from agent.db.engine import is_url

    where = os.environ.get("FORMALIST_TOOLS_DB") or DEFAULT_DB
    return where if is_url(where) else Path(where).expanduser()


class ToolRejected(ArtifactError):
    """A new version of a tool fails tests that the version before it passed."""


class ToolCache:
    """Versioned tools in one SQLite file (WAL) or a PostgreSQL database; safe to share between
    threads, and between processes (on PostgreSQL, hosts) that open the same cache.

    Reading never creates anything: a cache file that does not exist yet (nor its folder) reads as
    empty and is made by the first ``put``. A path that is a folder, or a file that is not a
    formalist database (not SQLite, or SQLite with none of our tables), is an ``InputError``
    naming it, and the file is left exactly as it was. A cache of an older schema is upgraded
    when opened; a PostgreSQL database gets the schema when the cache is opened.
    """

    def __init__(self, path: str | Path | None = None) -> None:
        from agent.db.engine import database_url

        url = database_url(path if path else default_path(), WHAT)
        self._lock = threading.Lock()
        self._engine: Engine | None = None
        if url.drivername == "sqlite":
            self.path: Path | None = Path(url.database or "")
            self.where = str(self.path)
            try:
                if self.path.is_dir():
                    raise InputError(f"{self.path} is a folder, not a formalist tool cache")
                exists = self.path.exists()
            except OSError as e:
                raise InputError(f"cannot use the tool cache {self.path}: {e.strerror or e}") from e
            if exists:
                self._open()
        else:
            self.path = None
            self.where = url.render_as_string(hide_password=True)
            key = (os.getpid(), url.render_as_string(hide_password=False))
            with _SHARED_LOCK:
                engine = _SHARED.get(key)
                if engine is None:
                    from agent.db.engine import postgres_engine

                    engine = self._open(postgres_engine(url, WHAT, pool_size=2, max_overflow=8))
                    _SHARED[key] = engine
            self._engine = engine

    def _open(self, engine: Engine | None = None) -> Engine:
        """Make the engine (on SQLite after checking, reading only, that the file is ours) and
        bring the database to the newest schema."""
        from sqlalchemy import exc as sa_exc

        from agent.db import migrate
        from agent.db.engine import check_sqlite_file, sqlite_engine

        if engine is None:
            assert self.path is not None
            if self.path.exists():
                check_sqlite_file(self.path, WHAT)
            engine = sqlite_engine(self.path, WHAT)
        try:
            key = "" if self.path else engine.url.render_as_string(hide_password=False)
            migrate.upgrade(engine, WHAT, key)
        except sa_exc.SQLAlchemyError as e:
            engine.dispose()
            raise self._unusable(e) from e
        except BaseException:
            engine.dispose()
            raise
        self._engine = engine
        return engine

    def _reader(self) -> Engine | None:
        """The engine to read with, or ``None`` while there is no cache file."""
        with self._lock:
            if self._engine is None:
                assert self.path is not None
                if not self.path.is_file():
                    return None
                self._open()
            return self._engine

    def _writer(self) -> Engine:
        """The engine to write with, making the file and its folder when missing."""
        with self._lock:
            if self._engine is None:
                assert self.path is not None
                try:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                except OSError as e:
                    raise InputError(
                        f"cannot create the tool cache {self.path}: {e.strerror or e}"
                    ) from e
                self._open()
            assert self._engine is not None
            return self._engine

    def _rows(self, stmt: Executable) -> list[tuple[Any, ...]]:
        from sqlalchemy import exc as sa_exc

        engine = self._reader()
        if engine is None:
            return []
        try:
            with engine.connect() as conn:
                return [tuple(r) for r in conn.execute(stmt)]
        except sa_exc.SQLAlchemyError as e:
            raise self._unusable(e) from e

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        """A write transaction (committed at the end, rolled back on an error); database errors
        but a broken key become ``InputError``."""
        from sqlalchemy import exc as sa_exc

        engine = self._writer()
        try:
            with engine.connect() as conn, conn.begin():
                yield conn
        except sa_exc.IntegrityError:
            raise
        except sa_exc.SQLAlchemyError as e:
            raise self._unusable(e) from e

    def _unusable(self, e: SQLAlchemyError) -> InputError:
        """The error for a cache that cannot be used: unreachable, locked, read-only, damaged."""
        from sqlalchemy import exc as sa_exc

        from agent.db.engine import reason

        if self.path is None or isinstance(e, sa_exc.OperationalError):
            return InputError(f"cannot use the tool cache {self.where}: {reason(e)}")
        return InputError(
            f"{self.where} is not a formalist tool cache ({reason(e)}); it was left as it is: "
            "choose another --db"
        )

    def put(self, tool: Tool, sandbox: Sandbox | None = None, judge: Judge | None = None) -> Tool:
        """Store ``tool`` as version 1 of a new name, or as the next version of an existing one.

        For an existing name the new code must pass the latest version's demos and tests in
        ``sandbox`` (required then), judged by ``judge`` when given (a tool that builds artifacts:
        by what they solve to) and else by their known answers; otherwise ``ToolRejected`` lists
        what it broke. When another writer stores a version of the name meanwhile, the code is
        checked against that one too and takes the version after it. Returns the tool as stored
        (with its version).
        """
        from sqlalchemy import exc as sa_exc
        from sqlalchemy import insert

        from agent.db.schema import tools

        for _ in range(MAX_RACES):
            old = self.get(tool.name)
            if old is not None:
                self._check_against(tool, old, sandbox, judge)
            stored = tool.with_version(1 if old is None else old.version + 1)
            text = json.dumps(stored.to_json(), ensure_ascii=False)
            try:
                with self._writing() as conn:
                    conn.execute(
                        insert(tools).values(
                            name=stored.name,
                            version=stored.version,
                            task=stored.task,
                            description=stored.description,
                            record=text,
                            created=stored.created,
                        )
                    )
            except sa_exc.IntegrityError:
                continue  # another writer took this version first: check against theirs
            return stored
        raise InputError(
            f"the tool cache {self.where}: {tool.name} was not stored, other writers stored "
            f"{MAX_RACES} versions of it meanwhile"
        )

    @staticmethod
    def _check_against(tool: Tool, old: Tool, sandbox: Sandbox | None, judge: Judge | None) -> None:
        if sandbox is None:
            raise ValueError("a sandbox is needed to check a new version against the old tests")
        failed = [
            o
            for o in run_calls(sandbox, tool.code, tool.function, [*old.demos, *old.tests], judge)
            if not o.passed
        ]
        if failed:
            raise ToolRejected(
                "verification",
                [Diagnostic(f"old test {o.call.question[:80]!r}", o.describe()) for o in failed],
                f"version {old.version + 1} of {tool.name} fails {len(failed)} test(s) that version {old.version} passes",
            )

    def get(self, name: str, version: int | None = None) -> Tool | None:
        """The latest version of ``name`` (or that ``version``); ``None`` when there is none."""
        from sqlalchemy import select

        from agent.db.schema import tools

        stmt = select(tools.c.record).where(tools.c.name == name)
        if version is None:
            stmt = stmt.order_by(tools.c.version.desc()).limit(1)
        else:
            stmt = stmt.where(tools.c.version == version)
        rows = self._rows(stmt)
        return _load(str(rows[0][0])) if rows else None

    def latest(self) -> list[Tool]:
        """The latest version of every tool, by name."""
        from sqlalchemy import func, select

        from agent.db.schema import tools

        newest = (
            select(tools.c.name, func.max(tools.c.version).label("v"))
            .group_by(tools.c.name)
            .subquery()
        )
        stmt = (
            select(tools.c.record)
            .join(newest, (tools.c.name == newest.c.name) & (tools.c.version == newest.c.v))
            .order_by(tools.c.name)
        )
        return [_load(str(r[0])) for r in self._rows(stmt)]

    def versions(self, name: str) -> list[int]:
        from sqlalchemy import select

        from agent.db.schema import tools

        stmt = select(tools.c.version).where(tools.c.name == name).order_by(tools.c.version)
        return [int(r[0]) for r in self._rows(stmt)]

    def remove(self, name: str) -> int:
        """Delete every version of ``name`` and its uses; returns how many versions went (0, and
        nothing made, when there is no cache)."""
        from sqlalchemy import delete

        from agent.db.schema import tools, uses

        if self._reader() is None:
            return 0
        with self._writing() as conn:
            n = conn.execute(delete(tools).where(tools.c.name == name)).rowcount
            conn.execute(delete(uses).where(uses.c.name == name))
        return int(n)

    def record_use(
        self, tool: Tool, ok: bool, detail: str = "", request: str = "", at: float | None = None
    ) -> None:
        """Note one use of ``tool`` (its version): ``ok`` when the artifact it built was solved and
        verified; otherwise ``detail`` says what failed (the tool's run, the artifact's check...)."""
        from sqlalchemy import insert

        from agent.db.schema import uses

        with self._writing() as conn:
            conn.execute(
                insert(uses).values(
                    name=tool.name,
                    version=tool.version,
                    ok=int(ok),
                    detail=detail[:2000],
                    request=request[:2000],
                    at=time.time() if at is None else at,
                )
            )

    def use_record(self, name: str) -> dict[str, Any]:
        """How ``name`` has done, all versions together: ``uses``, ``successes``, ``failures``,
        ``by_version`` (version -> [successes, failures]) and the ``last_failures`` (up to 5,
        newest first: version, detail, request)."""
        from sqlalchemy import select

        from agent.db.schema import uses

        rows = self._rows(
            select(uses.c.version, uses.c.ok, uses.c.detail, uses.c.request)
            .where(uses.c.name == name)
            .order_by(uses.c.at.desc(), uses.c.id.desc())
        )
        by_version: dict[int, list[int]] = {}
        fails: list[dict[str, Any]] = []
        for version, ok, detail, request in rows:
            counts = by_version.setdefault(int(version), [0, 0])
            counts[0 if ok else 1] += 1
            if not ok and len(fails) < 5:
                fails.append({"version": version, "detail": detail, "request": request})
        good = sum(c[0] for c in by_version.values())
        return {
            "uses": len(rows),
            "successes": good,
            "failures": len(rows) - good,
            "by_version": {str(v): c for v, c in sorted(by_version.items())},
            "last_failures": fails,
        }

    def note_verified(
        self, kind: str, request: str, artifact: Any, objective: float | None = None
    ) -> None:
        """Keep a request in words that was solved and verified without a tool, with its artifact
        (JSON data or text) and objective: the agent's own solved examples."""
        from sqlalchemy import insert

        from agent.db.schema import verified

        with self._writing() as conn:
            conn.execute(
                insert(verified).values(
                    kind=kind,
                    request=request,
                    artifact=json.dumps(artifact, ensure_ascii=False),
                    objective=objective,
                    at=time.time(),
                )
            )

    def verified_requests(self, kind: str, limit: int = 1000) -> list[dict[str, Any]]:
        """The newest ``limit`` verified requests of ``kind``: ``request``, ``artifact``,
        ``objective``."""
        from sqlalchemy import select

        from agent.db.schema import verified

        rows = self._rows(
            select(verified.c.request, verified.c.artifact, verified.c.objective)
            .where(verified.c.kind == kind)
            .order_by(verified.c.at.desc(), verified.c.id.desc())
            .limit(limit)
        )
        out = []
        for request, artifact, objective in rows:
            try:
                data = json.loads(str(artifact))
            except ValueError:
                continue
            out.append({"request": str(request), "artifact": data, "objective": objective})
        return out

    def close(self) -> None:
        """Close the SQLite file; a PostgreSQL pool stays for the next cache the process opens on
        that database (one per request in words: a new connection each would cost ~10 ms)."""
        with self._lock:
            if self._engine is not None and self.path is not None:
                self._engine.dispose()
                self._engine = None


_SHARED: dict[tuple[int, str], Engine] = {}
"""The PostgreSQL engines of this process, by database URL (a forked child makes its own)."""
_SHARED_LOCK = threading.Lock()


def _load(text: str) -> Tool:
    try:
        return Tool.from_json(json.loads(text))
    except (ValueError, KeyError, TypeError) as e:
        raise InputError(f"a tool record in the cache is damaged: {e}") from e
