"""A disk cache of language-model replies, keyed by a hash of model, messages and parameters
(and the id of the grammar a call asked for), with what the model reported about each reply."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any


def request_key(model: str, messages: list[dict[str, str]], params: dict[str, Any]) -> str:
    """A stable SHA-256 of everything that determines a reply."""
    blob = json.dumps(
        {"model": model, "messages": messages, "params": params}, sort_keys=True, ensure_ascii=False
    )
    # surrogatepass: a request may carry a lone surrogate (JSON can escape one); it still hashes.
    return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()


class ResponseCache:
    """SQLite (WAL) table ``replies(key, model, reply, created, meta)``; safe to share between
    threads. ``meta`` is a JSON object of what the model reported about the reply (``finish``,
    ``cut_off``, ``constrained``); a cache written before it had the column gains it on open."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS replies (key TEXT PRIMARY KEY, model TEXT NOT NULL, "
                "reply TEXT NOT NULL, created REAL NOT NULL, meta TEXT NOT NULL DEFAULT '{}')"
            )
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(replies)")}
            if "meta" not in columns:
                try:
                    self._db.execute(
                        "ALTER TABLE replies ADD COLUMN meta TEXT NOT NULL DEFAULT '{}'"
                    )
                except sqlite3.OperationalError as e:  # another process added it first
                    if "duplicate column" not in str(e):
                        raise
            self._db.commit()
        except (OSError, sqlite3.Error) as e:
            from agent.errors import ConfigError

            raise ConfigError(
                f'cannot open the reply cache {self.path}: {e}; set `cache = ""` or another path'
            ) from e

    def get(self, key: str) -> str | None:
        """The reply stored under ``key`` (None if none is)."""
        entry = self.entry(key)
        return entry[0] if entry is not None else None

    def entry(self, key: str) -> tuple[str, dict[str, Any]] | None:
        """The reply stored under ``key`` and its ``meta`` (None if none is)."""
        with self._lock:
            row = self._db.execute(
                "SELECT reply, meta FROM replies WHERE key = ?", (key,)
            ).fetchone()
        if row is None:
            return None
        try:
            meta = json.loads(row[1] or "{}")
        except json.JSONDecodeError:
            meta = {}
        return row[0], meta if isinstance(meta, dict) else {}

    def put(self, key: str, model: str, reply: str, meta: dict[str, Any] | None = None) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO replies (key, model, reply, created, meta) "
                "VALUES (?, ?, ?, ?, ?)",
                (key, model, reply, time.time(), json.dumps(meta or {}, sort_keys=True)),
            )
            self._db.commit()

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM replies").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
