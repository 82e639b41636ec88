"""Chat sessions: a conversation of requests, answers and open questions, kept in SQLite.

A turn is one of three things, decided from the session's last answer:

- the answer to an open question (the last answer was NEEDS_INFO): the pending request is solved
  again with the person's reply added to it (for a request over APIs, ``name = value`` pairs in the
  reply are taken as the answers directly);
- a follow-up to a solved request ("now at most 3 trucks", "what if the budget is 5000?"): the agent
  edits the last artifact rather than starting over, and the answer says what changed;
- a new request.

Every turn is written in one transaction after it is answered, so a server killed between turns
loses nothing, and a turn interrupted mid-way is simply not recorded (the client got no answer).
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.agent import Agent
from agent.diff import describe_changes
from agent.errors import InputError
from agent.types import Answer, Request
from solvers.base import Status

DEFAULT_DB = "~/.local/share/formalist/sessions.sqlite"
MAX_SESSION_ID = 128
_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_FOLLOW_UP = re.compile(
    r"^\s*(now|what if|and if|instead|change|make|set|increase|decrease|raise|lower|reduce|add|remove|drop|"
    r"without|only|at most|at least|also|but|suppose|same|try|with)\b",
    re.IGNORECASE,
)
_PAIR = re.compile(r"([a-z][a-z0-9_]*)\s*[=:]\s*([^,;\n]+)")


@dataclass(frozen=True, slots=True)
class Turn:
    """One exchange: the person's ``text`` and the ``answer`` (its JSON, with ``request`` and
    ``mode``: ``new``, ``follow-up`` or ``answer``)."""

    n: int
    text: str
    answer: dict[str, Any]
    created: float


class SessionStore:
    """Sessions in SQLite (WAL mode); safe to share between threads."""

    def __init__(self, path: str | Path = DEFAULT_DB) -> None:
        """Open (or create) the sessions database at ``path``. ``InputError`` when ``path`` is a
        folder, cannot be created, or is a file that is not a formalist sessions database (not
        SQLite, or SQLite with other tables): such a file is left exactly as it was."""
        self.path = Path(path).expanduser()
        self._lock = threading.Lock()
        try:
            if self.path.is_dir():
                raise InputError(f"{self.path} is a folder, not a formalist sessions database")
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise InputError(
                f"cannot create the sessions database {self.path}: {e.strerror or e}"
            ) from e
        try:
            self._db = sqlite3.connect(
                self.path, check_same_thread=False, timeout=30, isolation_level=None
            )
        except sqlite3.Error as e:
            raise InputError(f"cannot open the sessions database {self.path}: {e}") from e
        try:
            # Read before writing anything: a file that is not ours must not be touched.
            tables = {
                r[0]
                for r in self._db.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table'"
                ).fetchall()
            }
            if tables and not tables & {"sessions", "turns"}:
                raise InputError(
                    f"{self.path} is not a formalist sessions database (an SQLite file with "
                    f"other tables: {', '.join(sorted(tables)[:5])}); choose another --db"
                )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS sessions (id TEXT PRIMARY KEY, created REAL NOT NULL, "
                "updated REAL NOT NULL)"
            )
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS turns (session_id TEXT NOT NULL, n INTEGER NOT NULL, "
                "text TEXT NOT NULL, answer TEXT NOT NULL, created REAL NOT NULL, "
                "PRIMARY KEY (session_id, n))"
            )
        except sqlite3.OperationalError as e:  # locked, read-only, out of disk...
            self._db.close()
            raise InputError(f"cannot use the sessions database {self.path}: {e}") from e
        except sqlite3.DatabaseError as e:  # "file is not a database", a damaged file
            self._db.close()
            raise InputError(
                f"{self.path} is not a formalist sessions database ({e}); it was left as it is: "
                "choose another --db"
            ) from e
        except BaseException:
            self._db.close()
            raise

    @staticmethod
    def check_id(session_id: str) -> str:
        if not isinstance(session_id, str) or not _ID.match(session_id):
            raise InputError("a session id is 1 to 128 letters, digits or . _ : -")
        return session_id

    def exists(self, session_id: str) -> bool:
        with self._lock:
            return (
                self._db.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,)).fetchone()
                is not None
            )

    def turns(self, session_id: str) -> list[Turn]:
        with self._lock:
            rows = self._db.execute(
                "SELECT n, text, answer, created FROM turns WHERE session_id = ? ORDER BY n",
                (session_id,),
            ).fetchall()
        return [Turn(n, text, json.loads(answer), created) for n, text, answer, created in rows]

    def append(self, session_id: str, text: str, answer: dict[str, Any]) -> int:
        """Record one turn (and the session, if new) in a single transaction; returns its number."""
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "INSERT OR IGNORE INTO sessions (id, created, updated) VALUES (?, ?, ?)",
                    (session_id, now, now),
                )
                self._db.execute("UPDATE sessions SET updated = ? WHERE id = ?", (now, session_id))
                n = self._db.execute(
                    "SELECT COALESCE(MAX(n), 0) + 1 FROM turns WHERE session_id = ?", (session_id,)
                ).fetchone()[0]
                self._db.execute(
                    "INSERT INTO turns (session_id, n, text, answer, created) VALUES (?, ?, ?, ?, ?)",
                    (session_id, n, text, json.dumps(answer, default=str), now),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return int(n)

    def sessions(self) -> list[str]:
        with self._lock:
            return [
                r[0]
                for r in self._db.execute(
                    "SELECT id FROM sessions ORDER BY updated DESC"
                ).fetchall()
            ]

    def close(self) -> None:
        with self._lock:
            self._db.close()


class Session:
    """One conversation. ``ask`` answers a turn and records it."""

    _locks: dict[str, threading.Lock] = {}
    _locks_guard = threading.Lock()

    def __init__(self, store: SessionStore, agent: Agent, session_id: str | None = None) -> None:
        self.store = store
        self.agent = agent
        self.id = SessionStore.check_id(session_id) if session_id else uuid.uuid4().hex[:16]

    def _lock(self) -> threading.Lock:
        with Session._locks_guard:
            return Session._locks.setdefault(self.id, threading.Lock())

    @property
    def turns(self) -> list[Turn]:
        return self.store.turns(self.id)

    def ask(self, text: str) -> Answer:
        """Answer one turn of the person (turns of one session run one at a time)."""
        if not isinstance(text, str) or not text.strip():
            raise InputError("the message is empty")
        with self._lock():
            turns = self.store.turns(self.id)
            answer, record = self._respond(text, turns)
            self.store.append(self.id, text, record)
        return answer

    def _respond(self, text: str, turns: list[Turn]) -> tuple[Answer, dict[str, Any]]:
        last = turns[-1].answer if turns else None
        if last is not None and last.get("status") == Status.NEEDS_INFO.value:
            return self._answer_questions(text, last)
        if (
            last is not None
            and last.get("artifact") is not None
            and last.get("status") != "ERROR"
            and _FOLLOW_UP.match(text)
            and len(text) < 600
        ):
            answer = self.agent.revise(last["request"], last["kind"], last["artifact"], text)
            changes = describe_changes(last["artifact"], answer.artifact)
            if (
                last.get("objective") is not None
                and answer.objective is not None
                and answer.objective != last["objective"]
            ):
                changes.append(f"objective: {_num(last['objective'])} -> {_num(answer.objective)}")
            if changes:
                answer.explanation = (
                    "What changed:\n"
                    + "\n".join(f"  - {c}" for c in changes)
                    + "\n\n"
                    + answer.explanation
                )
            request = last["request"] + f"\n\nFollow-up: {text}"
            return answer, _record(answer, request, "follow-up", changes)
        answer = self.agent.solve(Request(text))
        return answer, _record(answer, text, "new")

    def _answer_questions(self, text: str, last: dict[str, Any]) -> tuple[Answer, dict[str, Any]]:
        request = last["request"]
        if last.get("kind") == "apis" and last.get("artifact"):
            pairs = {k: v.strip() for k, v in _PAIR.findall(text)}
            if pairs:
                previous = Answer(Status.NEEDS_INFO, "apis", artifact=last["artifact"])
                answer = self.agent.continue_with(previous, pairs)
                return answer, _record(answer, request, "answer")
        questions = "\n".join(f"- {q}" for q in last.get("questions", []))
        combined = f"{request}\n\nQuestions asked:\n{questions}\nThe person's answer: {text}"
        answer = self.agent.solve(Request(combined, kind=last.get("kind", "")))
        return answer, _record(answer, combined, "answer")


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _record(
    answer: Answer, request: str, mode: str, changes: list[str] | None = None
) -> dict[str, Any]:
    data = answer.to_json(trace=True)
    data["request"] = request
    data["mode"] = mode
    if changes:
        data["changes"] = changes
    return data
