"""Chat sessions: a conversation of requests, answers and open questions, kept in SQLite or
PostgreSQL.

A turn is one of three things, decided from the session's last answer:

- the answer to an open question (the last answer was NEEDS_INFO): the pending request is solved
  again with the person's reply added to it (for a request over APIs, ``name = value`` pairs in the
  reply are taken as the answers directly);
- a follow-up to a solved request ("now at most 3 trucks", "what if the budget is 5000?"): the agent
  edits the last artifact rather than starting over, and the answer says what changed;
- a new request.

A turn is recorded, in one transaction, only once its answer has been delivered: ``prepare``
answers it (holding the session, so turns of one session run one at a time: in this process by a
lock, and on PostgreSQL in every process sharing the database by ``SessionStore.hold``) and
``commit`` records it; the service commits once all of the reply but its last byte went out to a client still
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
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import (
    URL,
    Connection,
    Engine,
    func,
    select,
    text,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from agent.agent import Agent
from agent.db import engine as db_engine
from agent.db import migrate, schema
from agent.diff import describe_changes
from agent.errors import InputError
from agent.kinds import KINDS
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
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


@dataclass(frozen=True, slots=True)
class Turn:
    """One exchange: the person's ``text`` and the ``answer`` (its JSON, with ``request`` and
    ``mode``: ``new``, ``follow-up`` or ``answer``)."""

    n: int
    text: str
    answer: dict[str, Any]
    created: float


class SessionStore:
    """Sessions in SQLite (WAL mode, the default: a file path) or PostgreSQL (a
    ``postgresql://`` URL), through SQLAlchemy Core with the schema kept by Alembic migrations
    (``agent.db``); safe to share between threads, and on PostgreSQL between processes and hosts.

    Turns of one session are recorded one at a time: ``hold`` takes the session for one turn. On
    PostgreSQL that is a transaction holding an advisory lock on the session, in which the turn
    reads the session's turns and, at the end, records its own under a number assigned there; so
    two ``formalist serve`` processes given turns of one session at once take them in order, and a
    process killed mid-turn releases the session (the server drops its connection and rolls back)
    without recording anything. On SQLite the lock is the process's (``Session``)."""

    def __init__(self, path: str | Path = DEFAULT_DB) -> None:
        """Open (or create) the sessions database at ``path``: a file (SQLite) or a
        ``postgresql://user:password@host:port/database`` URL; the schema is created or upgraded.
        ``InputError`` when ``path`` is a folder, cannot be created, is a file that is not a
        formalist sessions database (not SQLite, or SQLite with other tables: such a file is left
        exactly as it was), or a database that cannot be reached."""
        self.url = database_url(path)
        self.path = Path(self.url.database or "") if self.url.drivername == "sqlite" else None
        self.where = self.url.render_as_string(hide_password=True)
        if self.path is not None:
            self.engine = _sqlite_engine(self.path)
        else:
            self.engine = _postgres_engine(self.url)
        self.dialect = self.engine.dialect.name
        try:
            migrate.upgrade(self.engine)
        except sa_exc.SQLAlchemyError as e:  # unreachable, refused, read-only, out of disk...
            self.engine.dispose()
            raise InputError(f"cannot use the sessions database {self.where}: {_reason(e)}") from e
        except BaseException:
            self.engine.dispose()
            raise

    @staticmethod
    def check_id(session_id: str) -> str:
        if not isinstance(session_id, str) or not _ID.match(session_id):
            raise InputError("a session id is 1 to 128 letters, digits or . _ : -")
        return session_id

    def exists(self, session_id: str) -> bool:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(schema.sessions.c.id).where(schema.sessions.c.id == session_id)
            ).first()
        return row is not None

    def turns(self, session_id: str) -> list[Turn]:
        with self.engine.connect() as conn:
            return _turns(conn, session_id)

    def append(self, session_id: str, text: str, answer: dict[str, Any]) -> int:
        """Record one turn (and the session, if new) in a single transaction; returns its number."""
        with self._writing() as conn, conn.begin():
            if self.dialect == "postgresql":
                _lock_session(conn, session_id)
            return _append(conn, session_id, text, answer)

    def hold(self, session_id: str) -> SessionHold:
        """Take ``session_id`` for one turn (see the class); the caller ends the hold with
        ``SessionHold.append`` then ``release``, or ``release`` alone to record nothing."""
        if self.dialect != "postgresql":
            return SessionHold(self, session_id, None)
        conn = self.engine.connect()
        try:
            conn.begin()
            _lock_session(conn, session_id)
        except BaseException:
            conn.close()  # rolls back
            raise
        return SessionHold(self, session_id, conn)

    def sessions(self) -> list[str]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(schema.sessions.c.id).order_by(schema.sessions.c.updated.desc())
            ).all()
        return [r[0] for r in rows]

    def close(self) -> None:
        self.engine.dispose()

    def _writing(self) -> Connection:
        conn = self.engine.connect()
        if self.dialect == "sqlite":
            conn.execution_options(formalist_write=True)  # BEGIN IMMEDIATE: n is read, then used
        return conn


class SessionHold:
    """One session taken for one turn (``SessionStore.hold``): its turns as they stand, and the
    turn recorded at the end. On PostgreSQL it is an open transaction holding the session's lock;
    on SQLite it reads and writes through the store (the process holds the session)."""

    def __init__(self, store: SessionStore, session_id: str, conn: Connection | None) -> None:
        self.store = store
        self.session_id = session_id
        self._conn = conn

    def turns(self) -> list[Turn]:
        if self._conn is None:
            return self.store.turns(self.session_id)
        return _turns(self._conn, self.session_id)

    def append(self, text: str, answer: dict[str, Any]) -> int:
        """Record the turn and end the hold; returns the turn's number."""
        if self._conn is None:
            return self.store.append(self.session_id, text, answer)
        conn, self._conn = self._conn, None
        try:
            n = _append(conn, self.session_id, text, answer)
            conn.commit()
            return n
        finally:
            conn.close()

    def release(self) -> None:
        """End the hold without recording anything (nothing when ``append`` ended it)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()  # rolls back and frees the lock


SESSION_LOCKS = 0x666F7273  # "fors": the advisory lock class of sessions (the id's hash is the key)


def _lock_session(conn: Connection, session_id: str) -> None:
    # Two-key advisory lock, released when the transaction ends (or its connection drops). Ids
    # whose hashes collide only wait for each other.
    conn.execute(
        text("SELECT pg_advisory_xact_lock(:k, hashtext(:sid))"),
        {"k": SESSION_LOCKS, "sid": session_id},
    )


def _turns(conn: Connection, session_id: str) -> list[Turn]:
    t = schema.turns
    rows = conn.execute(
        select(t.c.n, t.c.text, t.c.answer, t.c.created)
        .where(t.c.session_id == session_id)
        .order_by(t.c.n)
    ).all()
    return [Turn(n, text, json.loads(answer), created) for n, text, answer, created in rows]


def _append(conn: Connection, session_id: str, text: str, answer: dict[str, Any]) -> int:
    """Insert the turn (and its session, if new) in ``conn``'s transaction; the caller holds the
    session, so the next number is free."""
    now = time.time()
    s, t = schema.sessions, schema.turns
    dialect = conn.dialect.name
    insert = sqlite_insert if dialect == "sqlite" else pg_insert
    conn.execute(insert(s).values(id=session_id, created=now, updated=now).on_conflict_do_nothing())
    conn.execute(update(s).where(s.c.id == session_id).values(updated=now))
    n = conn.execute(
        select(func.coalesce(func.max(t.c.n), 0) + 1).where(t.c.session_id == session_id)
    ).scalar_one()
    conn.execute(
        t.insert().values(
            session_id=session_id,
            n=n,
            text=text,
            answer=json.dumps(answer, default=str),
            created=now,
        )
    )
    return int(n)


WHAT = "the sessions database"
SESSION_TABLES = frozenset({"sessions", "turns"})


def database_url(where: str | Path) -> URL:
    """The SQLAlchemy URL of a sessions database given as a file path or a URL (``db.engine``'s
    rules); a file's folder is made, and a folder given as the file is refused."""
    url = db_engine.database_url(where, WHAT)
    if url.get_backend_name() == "sqlite":
        return _sqlite_url(Path(url.database or ""))
    return url


def _sqlite_url(path: Path) -> URL:
    path = path.expanduser()
    try:
        if path.is_dir():
            raise InputError(f"{path} is a folder, not a formalist sessions database")
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"cannot create the sessions database {path}: {e.strerror or e}") from e
    return URL.create("sqlite", database=str(path))


def _sqlite_engine(path: Path) -> Engine:
    """An engine on the SQLite file, after checking (reading only) that the file is ours."""
    if path.exists():
        db_engine.check_sqlite_file(path, WHAT, SESSION_TABLES)
    return db_engine.sqlite_engine(path, WHAT)


def _postgres_engine(url: URL) -> Engine:
    # A turn holds a connection from its start to its recording: room for many at once.
    return db_engine.postgres_engine(url, WHAT, pool_size=8, max_overflow=64)


_reason = db_engine.reason


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
    _hold: SessionHold
    _done: bool = field(default=False)

    def commit(self) -> int:
        """Record the turn (one transaction) and release the session; returns the turn's number."""
        if self._done:
            raise RuntimeError("this turn was already committed or discarded")
        self._done = True
        try:
            return self._hold.append(self.text, self.record)
        finally:
            self._hold.release()
            self._lock.release()

    def discard(self) -> None:
        """Drop the turn (its answer never reached the person) and release the session."""
        if not self._done:
            self._done = True
            try:
                self._hold.release()
            finally:
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
            hold = self.store.hold(self.id)  # on PostgreSQL: the session in every process
        except BaseException:
            lock.release()
            raise
        try:
            turns = hold.turns()
            request = text if turns else _with_history(text, history)
            answer, record = self._respond(text, request, turns, name)
        except BaseException:
            try:
                hold.release()
            finally:
                lock.release()
            raise
        return PendingTurn(self, text, answer, record, lock, hold)

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
        kind = str(last.get("kind") or "")
        if kind in KINDS and KINDS[kind].takes_answers and last.get("artifact"):
            pairs = {k: v.strip() for k, v in _PAIR.findall(text)}
            if pairs:
                previous = Answer(Status.NEEDS_INFO, kind, artifact=last["artifact"])
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
