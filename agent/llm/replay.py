"""``replay:``: a LangChain chat model that plays recorded replies back, in order.

A recording is a JSONL file, one object per reply with at least ``"reply"`` (what ``record`` in the
configuration writes: also ``key``, ``model`` and ``messages``), or a JSON list of strings. Tests build
one directly from a list (a scripted model: a broken artifact first, then a fixed one).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import PrivateAttr

from agent.errors import ConfigError, StopError


class ReplayExhausted(StopError):
    """The recording has no reply left for this call."""


def read_recording(path: str | Path) -> list[str]:
    p = Path(path).expanduser()
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read replay file {p}: {e}") from e
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError as e:
            raise ConfigError(f"replay file {p} is not valid JSON: {e}") from e
        if not all(isinstance(x, str) for x in data):
            raise ConfigError(f"replay file {p}: a JSON list must hold strings")
        return list(data)
    replies = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise ConfigError(f"replay file {p}, line {n}: not JSON ({e})") from e
        if not isinstance(obj, dict) or not isinstance(obj.get("reply"), str):
            raise ConfigError(
                f"replay file {p}, line {n}: expected an object with a 'reply' string"
            )
        replies.append(obj["reply"])
    return replies


class ReplayChatModel(BaseChatModel):
    """Returns ``replies[0]``, then ``replies[1]``, ...; raises ``ReplayExhausted`` past the end.
    ``calls`` records the messages of every call and ``outputs`` the grammar each call asked for
    (its ``output`` keyword, None for free text), for tests that count or inspect them. A
    recording replays whatever grammar is asked: it holds replies, not a model."""

    replies: list[str]
    name_: str = "replay"
    _next: int = PrivateAttr(default=0)
    _lock: Any = PrivateAttr(default_factory=threading.Lock)
    _calls: list[list[dict[str, str]]] = PrivateAttr(default_factory=list)
    _outputs: list[Any] = PrivateAttr(default_factory=list)

    @classmethod
    def from_file(cls, path: str | Path) -> ReplayChatModel:
        return cls(replies=read_recording(path), name_=f"replay:{path}")

    @property
    def _llm_type(self) -> str:
        return "formalist-replay"

    @property
    def calls(self) -> list[list[dict[str, str]]]:
        return self._calls

    @property
    def outputs(self) -> list[Any]:
        return self._outputs

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        with self._lock:
            self._calls.append([{"role": m.type, "content": str(m.content)} for m in messages])
            self._outputs.append(kwargs.get("output"))
            if self._next >= len(self.replies):
                raise ReplayExhausted(
                    f"the replay recording has {len(self.replies)} replies and call {self._next + 1} asked for another"
                )
            reply = self.replies[self._next]
            self._next += 1
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=reply))])
