"""One door to language models: ``ChatClient``, the ``agent.llm.chat.Chat`` protocol over a LangChain
chat model, with the reply cache and the recorder.

Each call may carry an output constraint (``output``: an ``agent.llm.grammar.Grammar`` or a staged
grammar) that the caller built; the client forwards it as the backend takes it (``output_kwargs``)
and returns an ``agent.llm.chat.Reply`` saying what the backend reported.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.errors import (
    ArtifactError,
    ConfigError,
    Diagnostic,
    FormalistError,
    ReplyTimedOut,
    StopError,
)
from agent.llm.cache import ResponseCache, request_key
from agent.llm.chat import Message, Output, Reply
from agent.llm.spec import build_chat_model, parse_spec

if TYPE_CHECKING:
    from langchain_core.messages import BaseMessage

__all__ = [
    "ChatClient",
    "Usage",
    "counting_usage",
    "cut_off_error",
    "output_kwargs",
    "valid_text",
]


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
    reply and quotes this one; by a time limit, a ``ReplyTimedOut`` (asking again would be cut off
    again)."""
    tokens = meta.get("tokens", "?")
    if meta.get("finish") == "time":
        return ReplyTimedOut(
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


_OPENAI_NAME = re.compile(r"[^A-Za-z0-9_-]")


def output_kwargs(chat_model: Any, output: Output | None) -> tuple[dict[str, Any], bool]:
    """The call keywords that hold ``chat_model``'s reply to ``output`` (none without one), and
    whether they do: an OpenAI-compatible server (``ChatOpenAI``) gets a JSON-schema grammar as
    ``response_format`` (``json_schema``, not strict: vLLM, SGLang and llama.cpp's server honour
    it), Ollama (``ChatOllama``) as ``format``; an EBNF or staged grammar cannot be sent to either
    portably, so the call goes unconstrained. The local engine and any other chat model (a fake,
    a recording) get the grammar itself as ``output``."""
    if output is None:
        return {}, False
    name = type(chat_model).__name__
    if name in ("ChatOpenAI", "ChatOllama"):
        schema = getattr(output, "schema", None) if output.format == "json_schema" else None
        if not isinstance(schema, dict):
            return {}, False
        if name == "ChatOllama":
            return {"format": schema}, True
        sent = _OPENAI_NAME.sub("_", output.name)[:64] or "output"
        return {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": sent, "schema": schema, "strict": False},
            }
        }, True
    return {"output": output}, True


@dataclass(frozen=True, slots=True)
class _Reported:
    """What a backend said about one reply (its message's metadata and usage)."""

    finish: str
    cut_off: bool
    prompt_tokens: int
    completion_tokens: int
    meta: dict[str, Any]

    @classmethod
    def of(cls, message: Any) -> _Reported:
        meta = getattr(message, "response_metadata", None) or {}
        usage = getattr(message, "usage_metadata", None) or {}
        # The local engine says ``finish`` and ``cut_off``; OpenAI ``finish_reason``, Ollama
        # ``done_reason`` (``length``: the reply hit its token limit).
        finish = str(
            meta.get("finish") or meta.get("finish_reason") or meta.get("done_reason") or ""
        )
        completion = int(usage.get("output_tokens", 0) or 0) or int(meta.get("tokens", 0) or 0)
        return cls(
            finish,
            bool(meta.get("cut_off")) or finish == "length",
            int(usage.get("input_tokens", 0) or 0),
            completion,
            meta,
        )

    def error_meta(self) -> dict[str, Any]:
        """The metadata ``cut_off_error`` reads."""
        return {
            "finish": self.finish,
            "tokens": self.meta.get("tokens", self.completion_tokens or "?"),
        }


def _text(content: Any) -> str:
    return content if isinstance(content, str) else json.dumps(content)


REPLY_NEUTRAL = frozenset({"time_budget_s", "max_new_tokens"})
"""``[local]`` settings that never change a reply that is cached: a budget either lets the reply
finish, the same reply, or cuts it off, and a cut-off reply is never cached. They are left out
of the cache key, so a bench run with another ``--item-timeout`` reuses the replies."""


class ChatClient:
    """Sends chat messages to one model and returns its ``Reply`` (the ``Chat`` protocol).

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
        model (part of the cache key: a dtype or device changes the replies; the budgets in
        ``REPLY_NEUTRAL`` are not)."""
        ms = parse_spec(spec)
        chat = build_chat_model(ms, base_url, temperature, timeout, local)
        cache = ResponseCache(cache_path) if cache_path and ms.provider != "replay" else None
        params: dict[str, Any] = {"temperature": temperature}
        if ms.provider == "local" and local:
            keyed = {k: v for k, v in local.items() if k not in REPLY_NEUTRAL}
            if keyed:
                params["local"] = dict(sorted(keyed.items()))
        client = cls(ms.id, chat, cache, record or None, params)
        client.endpoint = base_url
        return client

    def _name(self) -> str:
        return f"{self.model_id}@{self.endpoint}" if self.endpoint else self.model_id

    def _params(self, output: Output | None, **more: Any) -> dict[str, Any]:
        params = {**self.params, **more}
        if output is not None:
            params["grammar"] = output.id
        return params

    def complete(self, messages: list[Message], output: Output | None = None) -> Reply:
        """The model's reply to ``messages`` (lone surrogates in either become U+FFFD).

        ``output``: the grammar the reply must follow (None: free text), forwarded as the backend
        takes it (``output_kwargs``); its id is part of the cache key. A reply its model cut off
        raises ``cut_off_error`` and is never cached."""
        messages = [{k: valid_text(v) for k, v in m.items()} for m in messages]
        grammar_id = output.id if output is not None else ""
        kwargs, constrained = output_kwargs(self.chat_model, output)
        base = request_key(self._name(), messages, self._params(output))
        # The n-th time the same messages are sent gets its own entry: a repair loop that sends
        # the same turn again must not be handed the same (failed) reply from the cache, and a
        # rerun of the same run still replays every reply in order.
        with self._lock:
            n = self._seen.get(base, 0)
            self._seen[base] = n + 1
        key = base if n == 0 else request_key(base, [], {"occurrence": n})
        if self.cache is not None:
            hit = self.cache.entry(key)
            # A cut-off sample that ``complete_n`` kept under this key is drawn again here.
            if hit is not None and not hit[1].get("cut_off", False):
                self.cache_hits += 1
                self._record(key, messages, hit[0], output=output)
                return Reply(
                    hit[0],
                    self.model_id,
                    grammar_id,
                    constrained,
                    finish=str(hit[1].get("finish", "")),
                    cached=True,
                )
        t0 = time.perf_counter()
        try:
            reply = self.chat_model.invoke(_to_langchain(messages), **kwargs)
        except StopError:
            raise
        except Exception as e:  # network, auth, server errors: our side, not the artifact's
            raise StopError(
                f"the language model {self.model_id} failed: {type(e).__name__}: {e}"
            ) from e
        seconds = time.perf_counter() - t0
        text = valid_text(_text(reply.content))
        with self._lock:
            self.calls += 1
        usage = _USAGE.get()
        if usage is not None:
            usage.add(reply)
        said = _Reported.of(reply)
        if said.cut_off:  # never cached: the next call must draw a new reply
            self._record(key, messages, text, seconds, output)
            raise cut_off_error(self.model_id, said.error_meta(), text)
        if self.cache is not None:
            self.cache.put(key, self.model_id, text, {"finish": said.finish})
        self._record(key, messages, text, seconds, output)
        return Reply(
            text,
            self.model_id,
            grammar_id,
            constrained,
            False,
            said.finish,
            seconds,
            said.prompt_tokens,
            said.completion_tokens,
        )

    def complete_n(
        self,
        messages: list[Message],
        n: int,
        temperature: float,
        seed: int = 0,
        output: Output | None = None,
        greedy: int = 0,
    ) -> list[Reply]:
        """``n`` replies to ``messages`` drawn at ``temperature``, reply ``i`` with seed ``seed +
        i``, each under ``output`` (as ``complete``); the first ``greedy`` replies are drawn at
        temperature 0 (a vote that keeps the greedy reply among its samples). A chat model that
        declares ``samples_in_one_call`` (the local engine: the samples share one prefill) draws them in
        one call with ``n``; any other gets ``n`` calls, each with its own seed. Each reply is
        cached and recorded on its own; a cut-off sample is returned marked ``cut_off`` (the
        caller's reader says where it broke off), and so it comes back from the cache."""
        messages = [{k: valid_text(v) for k, v in m.items()} for m in messages]
        grammar_id = output.id if output is not None else ""
        kwargs, constrained = output_kwargs(self.chat_model, output)
        if not 0 <= greedy <= n:
            raise ValueError(f"greedy must be from 0 to {n}, not {greedy}")
        temps = [0.0 if i < greedy else temperature for i in range(n)]
        # A greedy reply does not depend on its seed: its key is the one ``complete`` gives the
        # same messages at temperature 0, so a vote whose samples all failed hands the loop
        # that follows (its first call) the greedy reply it already drew, and the other way round.
        keys = [
            request_key(
                self._name(),
                messages,
                self._params(output, temperature=0.0)
                if i < greedy
                else self._params(output, temperature=t, seed=seed + i),
            )
            for i, t in enumerate(temps)
        ]
        hits = [self.cache.entry(k) if self.cache is not None else None for k in keys]
        if all(h is not None for h in hits):
            self.cache_hits += n
            out = []
            for key, hit in zip(keys, hits, strict=True):
                assert hit is not None
                self._record(key, messages, hit[0], output=output)
                out.append(
                    Reply(
                        hit[0],
                        self.model_id,
                        grammar_id,
                        constrained,
                        bool(hit[1].get("cut_off", False)),
                        str(hit[1].get("finish", "")),
                        cached=True,
                    )
                )
            return out
        t0 = time.perf_counter()
        lc = _to_langchain(messages)
        drawn: list[tuple[str, _Reported]] = []
        said_by: list[Any] = []  # each sample's message, for ``counting_usage`` (as ``complete``)
        try:
            if getattr(self.chat_model, "samples_in_one_call", False):
                if greedy:
                    kwargs["greedy"] = greedy
                result = self.chat_model.generate(
                    [lc], n=n, temperature=temperature, seed=seed, **kwargs
                )
                for g in result.generations[0]:
                    said_by.append(getattr(g, "message", None))
                    drawn.append((g.text, _Reported.of(said_by[-1])))
            else:
                for i, t in enumerate(temps):
                    reply = self.chat_model.invoke(lc, temperature=t, seed=seed + i, **kwargs)
                    said_by.append(reply)
                    drawn.append((_text(reply.content), _Reported.of(reply)))
        except StopError:
            raise
        except Exception as e:  # network, auth, server errors: our side, not the artifact's
            raise StopError(
                f"the language model {self.model_id} failed: {type(e).__name__}: {e}"
            ) from e
        if len(drawn) != n:
            raise StopError(f"the language model {self.model_id} gave {len(drawn)} of {n} samples")
        with self._lock:
            self.calls += 1
        usage = _USAGE.get()
        if usage is not None:
            for message in said_by:
                usage.add(message)
        elapsed = (time.perf_counter() - t0) / n
        replies = []
        for key, (raw, said) in zip(keys, drawn, strict=True):
            text = valid_text(raw)
            if self.cache is not None:
                meta = {"finish": said.finish, "cut_off": said.cut_off}
                self.cache.put(key, self.model_id, text, meta)
            self._record(key, messages, text, elapsed, output)
            replies.append(
                Reply(
                    text,
                    self.model_id,
                    grammar_id,
                    constrained,
                    said.cut_off,
                    said.finish,
                    elapsed,
                    said.prompt_tokens,
                    said.completion_tokens,
                )
            )
        return replies

    def _record(
        self,
        key: str,
        messages: list[Message],
        reply: str,
        elapsed: float = 0.0,
        output: Output | None = None,
    ) -> None:
        if self.record is None:
            return
        entry: dict[str, Any] = {
            "key": key,
            "model": self.model_id,
            "messages": messages,
            "reply": reply,
            "elapsed_s": round(elapsed, 3),
        }
        if output is not None:
            entry["grammar"] = output.id
        line = json.dumps(entry, ensure_ascii=False)
        with self._lock:
            try:
                self.record.parent.mkdir(parents=True, exist_ok=True)
                with self.record.open("a", encoding="utf-8") as f:
                    f.write(line + "\n")
            except OSError as e:
                raise ConfigError(f"cannot append to the recording {self.record}: {e}") from e
