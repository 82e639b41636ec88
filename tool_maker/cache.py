"""The tool cache: verified tools in SQLite, as JSON text, versioned.

Table ``tools(name, version, task, description, record, created)``: ``record`` is the tool's JSON
(``Tool.to_json``); nothing is pickled, so reading the cache never runs code. Storing a tool under
a name that exists makes a new version, and only if the new code passes every test and demo of
the latest version (run in the sandbox): a change may fix or extend a tool, not break what it did.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from pathlib import Path

from agent.errors import ArtifactError, Diagnostic, InputError
from tool_maker.sandbox import Sandbox
from tool_maker.tool import Tool, run_calls

DEFAULT_DB = "~/.cache/formalist/tools.sqlite"


def default_path() -> Path:
    """``FORMALIST_TOOLS_DB`` or ``~/.cache/formalist/tools.sqlite``."""
    return Path(os.environ.get("FORMALIST_TOOLS_DB") or DEFAULT_DB).expanduser()


class ToolRejected(ArtifactError):
    """A new version of a tool fails tests that the version before it passed."""


class ToolCache:
    """Versioned tools in one SQLite file (WAL); safe to share between threads."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path).expanduser() if path else default_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS tools (name TEXT NOT NULL, version INTEGER NOT NULL, "
            "task TEXT NOT NULL, description TEXT NOT NULL, record TEXT NOT NULL, "
            "created REAL NOT NULL, PRIMARY KEY (name, version))"
        )
        self._db.commit()

    def put(self, tool: Tool, sandbox: Sandbox | None = None) -> Tool:
        """Store ``tool`` as version 1 of a new name, or as the next version of an existing one.

        For an existing name the new code must pass the latest version's demos and tests in
        ``sandbox`` (required then); otherwise ``ToolRejected`` lists what it broke. Returns the
        tool as stored (with its version).
        """
        old = self.get(tool.name)
        version = 1
        if old is not None:
            if sandbox is None:
                raise ValueError("a sandbox is needed to check a new version against the old tests")
            failed = [
                o
                for o in run_calls(sandbox, tool.code, tool.function, [*old.demos, *old.tests])
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
            self._db.execute(
                "INSERT INTO tools (name, version, task, description, record, created) VALUES (?, ?, ?, ?, ?, ?)",
                (stored.name, version, stored.task, stored.description, text, stored.created),
            )
            self._db.commit()
        return stored

    def get(self, name: str, version: int | None = None) -> Tool | None:
        """The latest version of ``name`` (or that ``version``); ``None`` when there is none."""
        with self._lock:
            if version is None:
                row = self._db.execute(
                    "SELECT record FROM tools WHERE name = ? ORDER BY version DESC LIMIT 1", (name,)
                ).fetchone()
            else:
                row = self._db.execute(
                    "SELECT record FROM tools WHERE name = ? AND version = ?", (name, version)
                ).fetchone()
        return _load(row[0]) if row else None

    def latest(self) -> list[Tool]:
        """The latest version of every tool, by name."""
        with self._lock:
            rows = self._db.execute(
                "SELECT t.record FROM tools t JOIN (SELECT name, MAX(version) AS v FROM tools GROUP BY name) m "
                "ON t.name = m.name AND t.version = m.v ORDER BY t.name"
            ).fetchall()
        return [_load(r[0]) for r in rows]

    def versions(self, name: str) -> list[int]:
        with self._lock:
            rows = self._db.execute(
                "SELECT version FROM tools WHERE name = ? ORDER BY version", (name,)
            ).fetchall()
        return [int(r[0]) for r in rows]

    def remove(self, name: str) -> int:
        """Delete every version of ``name``; returns how many rows went."""
        with self._lock:
            n = self._db.execute("DELETE FROM tools WHERE name = ?", (name,)).rowcount
            self._db.commit()
        return int(n)

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _load(text: str) -> Tool:
    try:
        return Tool.from_json(json.loads(text))
    except (ValueError, KeyError, TypeError) as e:
        raise InputError(f"a tool record in the cache is damaged: {e}") from e
