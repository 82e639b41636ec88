"""One door to language models: a LangChain chat model plus the reply cache and the recorder."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.errors import ArtifactError, ConfigError, Diagnostic, FormalistError, StopError
from agent.llm.cache import ResponseCache, request_key
from agent.llm.spec import build_chat_model, parse_spec

if TYPE_CHECKING:
    from langchain_core.messages import BaseMessage

Message = dict[str, str]
"""``{"role": "system" | "user" | "assistant", "content": ...}``"""


def _to_langchain(messages: list[Message]) -> list[BaseMessage]:
    # LangChain loads on the first model call: formal inputs never pay for it.
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

    out: list[BaseMessage] = []
    for m in messages:
        role, content = m["role"], m["content"]
        if role == "system":
            out.append(SystemMessage(content=content))
        elif role == "assistant":
            out.append(AIMessage(content=content))
        else:
            out.append(HumanMessage(content=content))
    return out


@dataclass(slots=True)
class Usage:
    """Tokens the model processed for the calls made inside ``counting_usage`` (what its server
    reported; a reply from the cache costs nothing and is not counted)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def add(self, reply: Any) -> None:
        meta = getattr(reply, "usage_metadata", None) or {}
        self.prompt_tokens += int(meta.get("input_tokens", 0) or 0)
        self.completion_tokens += int(meta.get("output_tokens", 0) or 0)
        self.calls += 1


_USAGE: ContextVar[Usage | None] = ContextVar("formalist_usage", default=None)


@contextmanager
def counting_usage() -> Iterator[Usage]:
    """Count the tokens of every model call made in this block (in this thread or context)."""
    usage = Usage()
    token = _USAGE.set(usage)
    try:
        yield usage
    finally:
        _USAGE.reset(token)


def valid_text(text: str) -> str:
    """``text`` with any lone surrogate (which a JSON string may escape, ``"\\udbff"``, but no
    UTF-8 text can hold) replaced by U+FFFD: a model's reply is stored, hashed and sent back."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def cut_off_error(model_id: str, meta: dict[str, Any], text: str) -> FormalistError:
    """The error for a reply its model stopped before it ended (a local model's ``cut_off``
    metadata): by its token budget, an ``ArtifactError`` (kind ``cut_off``) that asks for a shorter
    reply and quotes this one; by a time limit, a ``StopError`` (asking again would be cut off
    again)."""
    tokens = meta.get("tokens", "?")
    if meta.get("finish") == "time":
        return StopError(
            f"the reply of {model_id} was cut off by its time limit after {tokens} tokens"
        )
    e = ArtifactError(
        "cut_off",
        [
            Diagnostic(
                "",
                f"the reply was cut off by its token budget after {tokens} tokens, before it "
                "was complete",
                "write the whole answer again, shorter: nothing repeated, no comments",
            )
        ],
    )
    e.reply = text
    return e


def schema_kwargs(chat_model: Any, json_schema: dict[str, Any] | None) -> dict[str, Any]:
    """The call keywords that hold ``chat_model``'s reply to ``json_schema`` (none without one):
    ``json_schema`` for the local engine (a grammar), ``response_format`` for OpenAI-compatible
    servers, ``format`` for Ollama; any other chat model (a recording) gets ``json_schema``."""
    if json_schema is None:
        return {}
    name = type(chat_model).__name__
    if name == "ChatOpenAI":
        return {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "arguments", "schema": json_schema},
            }
        }
    if name == "ChatOllama":
        return {"format": json_schema}
    return {"json_schema": json_schema}


class ChatClient:
    """Sends chat messages to one model and returns its text.

    Replies are cached on disk by ``request_key`` (except for ``replay:`` models, whose order is
    their meaning) and, when ``record`` is set, appended to a JSONL file that ``replay:`` plays back.
    ``calls`` counts calls that reached the model; ``cache_hits`` those answered from the cache.
    """

    def __init__(
        self,
        model_id: str,
        chat_model: Any,
        cache: ResponseCache | None = None,
        record: str | Path | None = None,
        params: dict[str, Any] | None = None,
    ) -> None:
        self.model_id = model_id
        self.chat_model = chat_model
        self.cache = cache
        self.record = Path(record).expanduser() if record else None
        self.params = params or {}
        self.calls = 0
        self.cache_hits = 0
        self.endpoint = ""
        """The server's base URL, when the model is served somewhere: part of the cache key."""
        self._lock = threading.Lock()
        self._seen: dict[str, int] = {}

    @classmethod
    def from_spec(
        cls,
        spec: str,
        base_url: str = "",
        cache_path: str = "",
        record: str = "",
        temperature: float = 0.0,
        timeout: float = 120.0,
        local: dict[str, Any] | None = None,
    ) -> ChatClient:
        """A client for the model ``spec``; ``local``: the ``[local]`` settings of a ``local:``
        model (part of the cache key: a dtype or device changes the replies)."""
        ms = parse_spec(spec)
        chat = build_chat_model(ms, base_url, temperature, timeout, local)
        cache = ResponseCache(cache_path) if cache_path and ms.provider != "replay" else None
        params: dict[str, Any] = {"temperature": temperature}
        if ms.provider == "local" and local:
            params["local"] = dict(sorted(local.items()))
        client = cls(ms.id, chat, cache, record or None, params)
        client.endpoint = base_url
        return client

    def complete(self, messages: list[Message], json_schema: dict[str, Any] | None = None) -> str:
        """The model's reply text to ``messages`` (lone surrogates in either become U+FFFD).

        ``json_schema``: the reply must be JSON of this schema. A ``local:`` model samples under
        it as a grammar, an ``openai:`` model gets it as its ``response_format``, an ``ollama:``
        one as its ``format``; it is part of the cache key."""
        messages = [{k: valid_text(v) for k, v in m.items()} for m in messages]
        params = self.params if json_schema is None else {**self.params, "json_schema": json_schema}
        base = request_key(
            f"{self.model_id}@{self.endpoint}" if self.endpoint else self.model_id,
            messages,
            params,
        )
        # The n-th time the same messages are sent gets its own entry: a repair loop that sends
        # the same turn again must not be handed the same (failed) reply from the cache, and a
        # rerun of the same run still replays every reply in order.
        with self._lock:
            n = self._seen.get(base, 0)
            self._seen[base] = n + 1
        key = base if n == 0 else request_key(base, [], {"occurrence": n})
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                self.cache_hits += 1
                self._record(key, messages, hit)
                return hit
        t0 = time.perf_counter()
        try:
            reply = self.chat_model.invoke(
                _to_langchain(messages), **schema_kwargs(self.chat_model, json_schema)
            )
        except StopError:
            raise
        except Exception as e:  # network, auth, server errors: our side, not the artifact's
            raise StopError(
                f"the language model {self.model_id} failed: {type(e).__name__}: {e}"
            ) from e
        text = reply.content if isinstance(reply.content, str) else json.dumps(reply.content)
        text = valid_text(text)
        with self._lock:
            self.calls += 1
        usage = _USAGE.get()
        if usage is not None:
            usage.add(reply)
        meta = getattr(reply, "response_metadata", None) or {}
        if meta.get("cut_off"):  # never cached: the next call must draw a new reply
            self._record(key, messages, text, time.perf_counter() - t0)
            raise cut_off_error(self.model_id, meta, text)
        if self.cache is not None:
            self.cache.put(key, self.model_id, text)
        self._record(key, messages, text, time.perf_counter() - t0)
        return text

    def complete_n(
        self, messages: list[Message], n: int, temperature: float, seed: int = 0
    ) -> list[str]:
        """``n`` replies to ``messages`` drawn at ``temperature``, reply ``i`` with seed ``seed +
        i``. A chat model that declares ``samples_in_one_call`` (the local engine: the samples
        share one prefill) draws them in one call with ``n``; any other gets ``n`` calls, each
        with its own seed. Each reply is cached and recorded on its own."""
        messages = [{k: valid_text(v) for k, v in m.items()} for m in messages]
        name = f"{self.model_id}@{self.endpoint}" if self.endpoint else self.model_id
        keys = [
            request_key(name, messages, {**self.params, "temperature": temperature, "seed": s})
            for s in range(seed, seed + n)
        ]
        hits = [self.cache.get(k) if self.cache is not None else None for k in keys]
        if all(h is not None for h in hits):
            self.cache_hits += n
            for key, hit in zip(keys, hits, strict=True):
                self._record(key, messages, hit or "")
            return [h or "" for h in hits]
        t0 = time.perf_counter()
        lc = _to_langchain(messages)
        try:
            if getattr(self.chat_model, "samples_in_one_call", False):
                result = self.chat_model.generate([lc], n=n, temperature=temperature, seed=seed)
                texts = [g.text for g in result.generations[0]]
            else:
                texts = []
                for s in range(seed, seed + n):
                    reply = self.chat_model.invoke(lc, temperature=temperature, seed=s)
                    content = reply.content
                    texts.append(content if isinstance(content, str) else json.dumps(content))
        except StopError:
            raise
        except Exception as e:  # network, auth, server errors: our side, not the artifact's
            raise StopError(
                f"the language model {self.model_id} failed: {type(e).__name__}: {e}"
            ) from e
        if len(texts) != n:
            raise StopError(f"the language model {self.model_id} gave {len(texts)} of {n} samples")
        texts = [valid_text(t) for t in texts]
        with self._lock:
            self.calls += 1
        elapsed = (time.perf_counter() - t0) / n
        for key, text in zip(keys, texts, strict=True):
            if self.cache is not None:
                self.cache.put(key, self.model_id, text)
            self._record(key, messages, text, elapsed)
        return texts

    def _record(self, key: str, messages: list[Message], reply: str, elapsed: float = 0.0) -> None:
        if self.record is None:
            return
        line = json.dumps(
            {
                "key": key,
                "model": self.model_id,
                "messages": messages,
                "reply": reply,
                "elapsed_s": round(elapsed, 3),
            },
            ensure_ascii=False,
        )
        with self._lock:
            try:
                self.record.parent.mkdir(parents=True, exist_ok=True)
                with self.record.open("a", encoding="utf-8") as f:
                    f.write(line + "\n")
            except OSError as e:
                raise ConfigError(f"cannot append to the recording {self.record}: {e}") from e
