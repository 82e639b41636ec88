"""Chat sessions: a conversation of requests, answers and open questions, kept in SQLite.

A turn is one of three things, decided from the session's last answer:

- the answer to an open question (the last answer was NEEDS_INFO): the pending request is solved
  again with the person's reply added to it (for a request over APIs, ``name = value`` pairs in the
  reply are taken as the answers directly);
- a follow-up to a solved request ("now at most 3 trucks", "what if the budget is 5000?"): the agent
  edits the last artifact rather than starting over, and the answer says what changed;
- a new request.

A turn is recorded, in one transaction, only once its answer has been delivered: ``prepare``
answers it (holding the session, so turns of one session run one at a time) and ``commit`` records
it; the service commits once all of the reply but its last byte went out to a client still
connected (so a client holding the whole reply can read its turn back), and discards the turn when
the client went away first. So a server killed between turns loses nothing, and a turn interrupted
mid-way (a dropped connection, a killed server) is not recorded: the client never got its answer.

New session ids are random (128 bits), never derived from what was said: two people who send the
same first message get two sessions.
"""

from __future__ import annotations

import json
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.agent import Agent
from agent.diff import describe_changes
from agent.errors import InputError
from agent.llm.client import valid_text
from agent.router import route
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


HISTORY_REPLY_CHARS = 4000
"""How much of each earlier reply a conversation given without a session carries into the request."""


def new_session_id() -> str:
    """A fresh session id: 128 random bits, so ids can be neither guessed nor shared by chance."""
    return secrets.token_hex(16)


@dataclass(eq=False)
class PendingTurn:
    """A turn answered but not yet recorded. Its session stays held (no other turn of it runs)
    until ``commit`` records the turn or ``discard`` drops it; exactly one of them must be called."""

    session: Session
    text: str
    answer: Answer
    record: dict[str, Any]
    _lock: threading.Lock
    _done: bool = field(default=False)

    def commit(self) -> int:
        """Record the turn (one transaction) and release the session; returns the turn's number."""
        if self._done:
            raise RuntimeError("this turn was already committed or discarded")
        self._done = True
        try:
            return self.session.store.append(self.session.id, self.text, self.record)
        finally:
            self._lock.release()

    def discard(self) -> None:
        """Drop the turn (its answer never reached the person) and release the session."""
        if not self._done:
            self._done = True
            self._lock.release()


class Session:
    """One conversation. ``ask`` answers a turn and records it; ``prepare`` answers it and leaves
    recording to the caller, once the answer is delivered."""

    _locks: dict[str, threading.Lock] = {}
    _locks_guard = threading.Lock()

    def __init__(self, store: SessionStore, agent: Agent, session_id: str | None = None) -> None:
        self.store = store
        self.agent = agent
        self.id = SessionStore.check_id(session_id) if session_id else new_session_id()

    def _lock(self) -> threading.Lock:
        with Session._locks_guard:
            return Session._locks.setdefault(self.id, threading.Lock())

    @property
    def turns(self) -> list[Turn]:
        return self.store.turns(self.id)

    def ask(self, text: str, history: Sequence[tuple[str, str]] = (), name: str = "") -> Answer:
        """Answer one turn of the person and record it (turns of one session run one at a time).
        ``name``: the file the text was read from (``formalist chat`` given a path), which makes
        the turn a new request read as ``formalist solve`` reads that file."""
        pending = self.prepare(text, history, name)
        pending.commit()
        return pending.answer

    def prepare(
        self, text: str, history: Sequence[tuple[str, str]] = (), name: str = ""
    ) -> PendingTurn:
        """Answer one turn without recording it; the caller commits or discards the result.

        ``history``: earlier ``(role, text)`` messages of a conversation that arrives without its
        session (an OpenAI-style client resends the whole conversation). On a session with no turns
        they become the context of the request, unless the new message is a formal model on its
        own. Lone surrogates (a JSON string may escape one; no UTF-8 text holds one) become U+FFFD.
        """
        if not isinstance(text, str) or not text.strip():
            raise InputError("the message is empty")
        text = valid_text(text)
        lock = self._lock()
        lock.acquire()
        try:
            turns = self.store.turns(self.id)
            request = text if turns else _with_history(text, history)
            answer, record = self._respond(text, request, turns, name)
        except BaseException:
            lock.release()
            raise
        return PendingTurn(self, text, answer, record, lock)

    def _respond(
        self, text: str, request: str, turns: list[Turn], name: str = ""
    ) -> tuple[Answer, dict[str, Any]]:
        if name:  # a file: a new request, whatever came before
            answer = self.agent.solve(Request(text, name))
            return answer, _record(answer, text, "new")
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
        answer = self.agent.solve(Request(request))
        return answer, _record(answer, request, "new")

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


def _with_history(text: str, history: Sequence[tuple[str, str]]) -> str:
    """``text`` with the earlier messages of its conversation before it, as one request; ``text``
    alone when there are none or when it is a formal model by itself (it needs no context)."""
    earlier = []
    for role, content in history:
        content = valid_text(content).strip() if isinstance(content, str) else ""
        if not content or role not in ("user", "assistant"):
            continue
        if role == "assistant":
            if len(content) > HISTORY_REPLY_CHARS:
                content = content[:HISTORY_REPLY_CHARS] + " [...]"
            earlier.append(f"The reply was:\n{content}")
        else:
            earlier.append(f"The person wrote:\n{content}")
    if not earlier:
        return text
    try:
        if route(Request(text)).formal:
            return text
    except InputError:
        return text
    return (
        "Earlier in this conversation:\n\n"
        + "\n\n".join(earlier)
        + f"\n\nThe person now writes:\n{text}"
    )


def _num(x: float | list[float]) -> str:
    if isinstance(x, list):  # an objective per priority level
        return "[" + ", ".join(_num(v) for v in x) + "]"
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
