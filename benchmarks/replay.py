"""Replay of a benchmark run's recording, keyed by the messages of each call.

``replay:`` (``agent.llm.replay``) plays replies in the order they were recorded, which is right for
one request at a time but not for a batch run whose items interleave. A benchmark recording is what
``record`` writes (one ``{"messages", "reply"}`` object per call); here a call gets the next reply
recorded for the same messages, so the result of every item is the same at any concurrency. A
recording without messages (a list of replies) is played in order, which reproduces a run only at
concurrency 1.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import defaultdict, deque
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import PrivateAttr

from agent.errors import ConfigError
from agent.llm.replay import ReplayExhausted


def messages_key(contents: list[str]) -> str:
    """A hash of the messages' texts (roles are left out: LangChain and the recorder name them
    differently, and the texts alone identify a call)."""
    return hashlib.sha256(json.dumps(contents, ensure_ascii=False).encode("utf-8")).hexdigest()


def read_keyed(path: str | Path) -> tuple[dict[str, list[str]], list[str]]:
    """``(replies by messages key, replies in order)`` of a recording."""
    p = Path(path).expanduser()
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read the recording {p}: {e}") from e
    keyed: dict[str, list[str]] = defaultdict(list)
    ordered: list[str] = []
    if text.lstrip().startswith("["):
        data = json.loads(text)
        return {}, [str(x) for x in data]
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise ConfigError(f"recording {p}, line {n}: not JSON ({e})") from e
        reply = obj.get("reply") if isinstance(obj, dict) else None
        if not isinstance(reply, str):
            raise ConfigError(f"recording {p}, line {n}: expected an object with a 'reply' string")
        ordered.append(reply)
        msgs = obj.get("messages")
        if isinstance(msgs, list):
            keyed[messages_key([str(m.get("content", "")) for m in msgs])].append(reply)
    return dict(keyed), ordered


class KeyedReplayChatModel(BaseChatModel):
    """Answers a call with the next reply recorded for the same messages (in order when the
    recording has no messages). ``delay_s`` sleeps before each reply: a stand-in for a model's
    latency in throughput measurements."""

    keyed: dict[str, list[str]]
    ordered: list[str]
    delay_s: float = 0.0
    _queues: dict[str, deque[str]] = PrivateAttr(default_factory=dict)
    _next: int = PrivateAttr(default=0)
    _lock: Any = PrivateAttr(default_factory=threading.Lock)

    @classmethod
    def from_file(cls, path: str | Path, delay_s: float = 0.0) -> KeyedReplayChatModel:
        keyed, ordered = read_keyed(path)
        return cls(keyed=keyed, ordered=ordered, delay_s=delay_s)

    @property
    def _llm_type(self) -> str:
        return "formalist-keyed-replay"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.delay_s:
            time.sleep(self.delay_s)
        key = messages_key([str(m.content) for m in messages])
        with self._lock:
            if self.keyed:
                if key not in self._queues:
                    self._queues[key] = deque(self.keyed.get(key, []))
                queue = self._queues[key]
                if not queue:
                    raise ReplayExhausted(
                        "the recording has no (further) reply for these messages: it was "
                        "recorded with another prompt or dataset"
                    )
                reply = queue.popleft()
            else:
                if self._next >= len(self.ordered):
                    raise ReplayExhausted(
                        f"the recording has {len(self.ordered)} replies and another was asked for"
                    )
                reply = self.ordered[self._next]
                self._next += 1
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=reply))])
