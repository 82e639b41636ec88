"""The tool cache: verified tools in SQLite, as JSON text, versioned.

Table ``tools(name, version, task, description, record, created)``: ``record`` is the tool's JSON
(``Tool.to_json``); nothing is pickled, so reading the cache never runs code. Storing a tool under
a name that exists makes a new version, and only if the new code passes every test and demo of
the latest version (run in the sandbox): a change may fix or extend a tool, not break what it did.

Table ``uses(name, version, ok, detail, request, at)``: each time the agent used a tool, whether
the artifact it built was solved and verified, and if not, why (the tool's record of successes and
failures). Table ``verified(kind, request, artifact, at)``: requests in words the agent solved and
verified directly (no tool): the solved examples a tool can later be made from, and what
``similar_verified`` counts to propose making one.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from agent.errors import ArtifactError, Diagnostic, InputError
from tool_maker.sandbox import Sandbox
from tool_maker.tool import Judge, Tool, run_calls

DEFAULT_DB = "~/.cache/formalist/tools.sqlite"


def default_path() -> Path:
    """``FORMALIST_TOOLS_DB`` or ``~/.cache/formalist/tools.sqlite``."""
    return Path(os.environ.get("FORMALIST_TOOLS_DB") or DEFAULT_DB).expanduser()


class ToolRejected(ArtifactError):
    """A new version of a tool fails tests that the version before it passed."""


class ToolCache:
    """Versioned tools in one SQLite file (WAL); safe to share between threads.

    Reading never creates anything: a cache file that does not exist yet (nor its folder) reads as
    empty and is made by the first ``put``. A path that is a folder, or a file that is not a
    formalist tool cache (not SQLite, or SQLite with other tables), is an ``InputError`` naming it,
    and the file is left exactly as it was.
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path).expanduser() if path else default_path()
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._ready = False  # the tools table exists
        self._extra = False  # the uses and verified tables exist
        try:
            if self.path.is_dir():
                raise InputError(f"{self.path} is a folder, not a formalist tool cache")
            exists = self.path.exists()
        except OSError as e:
            raise InputError(f"cannot use the tool cache {self.path}: {e.strerror or e}") from e
        if exists:
            self._open()

    def _open(self) -> sqlite3.Connection:
        """Connect to the existing (or just-made) file and check that it is a tool cache."""
        try:
            db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
        except sqlite3.Error as e:
            raise InputError(f"cannot open the tool cache {self.path}: {e}") from e
        try:
            tables = {
                r[0]
                for r in db.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table'"
                ).fetchall()
            }
        except sqlite3.Error as e:
            db.close()
            raise _unusable(self.path, e) from e
        if tables and "tools" not in tables:
            db.close()
            raise InputError(
                f"{self.path} is not a formalist tool cache (an SQLite file with other tables: "
                f"{', '.join(sorted(tables)[:5])}); it was left as it is: choose another --db"
            )
        self._db, self._ready = db, "tools" in tables
        self._extra = {"uses", "verified"} <= tables
        return db

    def _reader(self) -> sqlite3.Connection | None:
        """The connection to read with, or ``None`` while there is no cache (call under the lock)."""
        if self._db is None:
            if not self.path.is_file():
                return None
            self._open()
        if not self._ready:
            assert self._db is not None
            try:
                self._ready = (
                    self._db.execute(
                        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'tools'"
                    ).fetchone()
                    is not None
                )
            except sqlite3.Error as e:
                raise _unusable(self.path, e) from e
        return self._db if self._ready else None

    def _writer(self) -> sqlite3.Connection:
        """The connection to write with, making the file, its folder and the table when missing
        (call under the lock)."""
        if self._db is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise InputError(
                    f"cannot create the tool cache {self.path}: {e.strerror or e}"
                ) from e
            self._open()
        assert self._db is not None
        if not self._ready:
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute(
                    "CREATE TABLE IF NOT EXISTS tools (name TEXT NOT NULL, version INTEGER NOT NULL, "
                    "task TEXT NOT NULL, description TEXT NOT NULL, record TEXT NOT NULL, "
                    "created REAL NOT NULL, PRIMARY KEY (name, version))"
                )
                self._db.commit()
            except sqlite3.Error as e:
                raise _unusable(self.path, e) from e
            self._ready = True
        if not self._extra:
            try:
                self._db.execute(
                    "CREATE TABLE IF NOT EXISTS uses (name TEXT NOT NULL, version INTEGER NOT NULL, "
                    "ok INTEGER NOT NULL, detail TEXT NOT NULL, request TEXT NOT NULL, "
                    "at REAL NOT NULL)"
                )
                self._db.execute(
                    "CREATE TABLE IF NOT EXISTS verified (kind TEXT NOT NULL, request TEXT NOT NULL, "
                    "artifact TEXT NOT NULL, objective REAL, at REAL NOT NULL)"
                )
                self._db.commit()
            except sqlite3.Error as e:
                raise _unusable(self.path, e) from e
            self._extra = True
        return self._db

    def _rows(
        self, sql: str, params: tuple[object, ...] = (), extra: bool = False
    ) -> list[tuple[object, ...]]:
        """Rows of ``sql``; ``extra``: it reads the ``uses`` or ``verified`` table (none yet in
        a cache made before they were: no rows)."""
        with self._lock:
            db = self._reader()
            if db is None or (extra and not self._has_extra(db)):
                return []
            try:
                return list(db.execute(sql, params).fetchall())
            except sqlite3.DatabaseError as e:
                raise _unusable(self.path, e) from e

    def put(self, tool: Tool, sandbox: Sandbox | None = None, judge: Judge | None = None) -> Tool:
        """Store ``tool`` as version 1 of a new name, or as the next version of an existing one.

        For an existing name the new code must pass the latest version's demos and tests in
        ``sandbox`` (required then), judged by ``judge`` when given (a tool that builds artifacts:
        by what they solve to) and else by their known answers; otherwise ``ToolRejected`` lists
        what it broke. Returns the tool as stored (with its version).
        """
        old = self.get(tool.name)
        version = 1
        if old is not None:
            if sandbox is None:
                raise ValueError("a sandbox is needed to check a new version against the old tests")
            failed = [
                o
                for o in run_calls(
                    sandbox, tool.code, tool.function, [*old.demos, *old.tests], judge
                )
                if not o.passed
            ]
            if failed:
                raise ToolRejected(
                    "verification",
                    [
                        Diagnostic(f"old test {o.call.question[:80]!r}", o.describe())
                        for o in failed
                    ],
                    f"version {old.version + 1} of {tool.name} fails {len(failed)} test(s) that version {old.version} passes",
                )
            version = old.version + 1
        stored = tool.with_version(version)
        text = json.dumps(stored.to_json(), ensure_ascii=False)
        with self._lock:
            db = self._writer()
            try:
                db.execute(
                    "INSERT INTO tools (name, version, task, description, record, created) VALUES (?, ?, ?, ?, ?, ?)",
                    (stored.name, version, stored.task, stored.description, text, stored.created),
                )
                db.commit()
            except sqlite3.IntegrityError:
                raise
            except sqlite3.DatabaseError as e:
                raise _unusable(self.path, e) from e
        return stored

    def get(self, name: str, version: int | None = None) -> Tool | None:
        """The latest version of ``name`` (or that ``version``); ``None`` when there is none."""
        if version is None:
            rows = self._rows(
                "SELECT record FROM tools WHERE name = ? ORDER BY version DESC LIMIT 1", (name,)
            )
        else:
            rows = self._rows(
                "SELECT record FROM tools WHERE name = ? AND version = ?", (name, version)
            )
        return _load(str(rows[0][0])) if rows else None

    def latest(self) -> list[Tool]:
        """The latest version of every tool, by name."""
        rows = self._rows(
            "SELECT t.record FROM tools t JOIN (SELECT name, MAX(version) AS v FROM tools GROUP BY name) m "
            "ON t.name = m.name AND t.version = m.v ORDER BY t.name"
        )
        return [_load(str(r[0])) for r in rows]

    def versions(self, name: str) -> list[int]:
        rows = self._rows("SELECT version FROM tools WHERE name = ? ORDER BY version", (name,))
        return [int(str(r[0])) for r in rows]

    def remove(self, name: str) -> int:
        """Delete every version of ``name``; returns how many rows went (0, and nothing made,
        when there is no cache)."""
        with self._lock:
            db = self._reader()
            if db is None:
                return 0
            try:
                n = db.execute("DELETE FROM tools WHERE name = ?", (name,)).rowcount
                if self._has_extra(db):
                    db.execute("DELETE FROM uses WHERE name = ?", (name,))
                db.commit()
            except sqlite3.DatabaseError as e:
                raise _unusable(self.path, e) from e
        return int(n)

    def _has_extra(self, db: sqlite3.Connection) -> bool:
        if not self._extra:
            try:
                found = db.execute(
                    "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' "
                    "AND name IN ('uses', 'verified')"
                ).fetchone()
            except sqlite3.Error as e:
                raise _unusable(self.path, e) from e
            self._extra = bool(found and found[0] == 2)
        return self._extra

    def _write(self, sql: str, params: tuple[object, ...]) -> None:
        with self._lock:
            db = self._writer()
            try:
                db.execute(sql, params)
                db.commit()
            except sqlite3.DatabaseError as e:
                raise _unusable(self.path, e) from e

    def record_use(
        self, tool: Tool, ok: bool, detail: str = "", request: str = "", at: float | None = None
    ) -> None:
        """Note one use of ``tool`` (its version): ``ok`` when the artifact it built was solved and
        verified; otherwise ``detail`` says what failed (the tool's run, the artifact's check...)."""
        self._write(
            "INSERT INTO uses (name, version, ok, detail, request, at) VALUES (?, ?, ?, ?, ?, ?)",
            (
                tool.name,
                tool.version,
                int(ok),
                detail[:2000],
                request[:2000],
                time.time() if at is None else at,
            ),
        )

    def use_record(self, name: str) -> dict[str, Any]:
        """How ``name`` has done, all versions together: ``uses``, ``successes``, ``failures``,
        ``by_version`` (version -> [successes, failures]) and the ``last_failures`` (up to 5,
        newest first: version, detail, request)."""
        rows = self._rows(
            "SELECT version, ok, detail, request FROM uses WHERE name = ? ORDER BY at DESC, rowid DESC",
            (name,),
            extra=True,
        )
        by_version: dict[int, list[int]] = {}
        fails: list[dict[str, Any]] = []
        for version, ok, detail, request in rows:
            counts = by_version.setdefault(int(str(version)), [0, 0])
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
        self._write(
            "INSERT INTO verified (kind, request, artifact, objective, at) VALUES (?, ?, ?, ?, ?)",
            (
                kind,
                request,
                json.dumps(artifact, ensure_ascii=False),
                objective,
                time.time(),
            ),
        )

    def verified_requests(self, kind: str, limit: int = 1000) -> list[dict[str, Any]]:
        """The newest ``limit`` verified requests of ``kind``: ``request``, ``artifact``,
        ``objective``."""
        rows = self._rows(
            "SELECT request, artifact, objective FROM verified WHERE kind = ? "
            "ORDER BY at DESC, rowid DESC LIMIT ?",
            (kind, limit),
            extra=True,
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
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
                self._ready = False


def _unusable(path: Path, e: sqlite3.Error) -> InputError:
    """The error for a cache file SQLite cannot use: not a database, damaged, locked, read-only."""
    if isinstance(e, sqlite3.OperationalError):
        return InputError(f"cannot use the tool cache {path}: {e}")
    return InputError(
        f"{path} is not a formalist tool cache ({e}); it was left as it is: choose another --db"
    )


def _load(text: str) -> Tool:
    try:
        return Tool.from_json(json.loads(text))
    except (ValueError, KeyError, TypeError) as e:
        raise InputError(f"a tool record in the cache is damaged: {e}") from e
