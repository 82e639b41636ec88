"""``local:PATH_OR_ID``: a LangChain chat model over the local decoding engine.

Each call applies the grammar of the artifact the formalizer asks for. The kind is given by the
``artifact`` field or call keyword (``milp``, ``routing``, ``asp``, ``pddl``, ``pddl:DOMAIN``,
``none``), or, with ``auto`` (the default), recognised from the conversation: the system message is
one of the formalizers' own system prompts, and for planning the domain is the ``(define (domain
...))`` the request quotes (with none, the model writes domain and problem as s-expressions). A
conversation no formalizer started gets free text.

A routing spec's grammar is specialised to the request's locations when the caller gives them, as
a planning problem's is to its domain: ``routing:IDS`` (``1,2,3``, a JSON list or file; see
``grammar.parse_location_ids``), the ``routing`` field (a ``grammar.RoutingContext``), or the call
keywords ``locations``, ``depots``, ``clients``, ``groups`` (``grammar.routing_context``; bind them
with ``chat.bind(locations=[...])``). Without them, the general routing grammar.

The reply is the sample's text. A sample cut off by its budget is still returned as text, since
the formalizer's parser then tells the model where it broke off, and its ``response_metadata`` says
``cut_off``; it is never handed on as a complete artifact.
"""

from __future__ import annotations

import logging
import threading
from functools import cache
from importlib import resources
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict, PrivateAttr

log = logging.getLogger(__name__)

_ROLES = {"system": "system", "human": "user", "ai": "assistant"}
_ENGINES: dict[tuple[Any, ...], Any] = {}
_ENGINES_LOCK = threading.Lock()


def load_engine(path: str, **options: Any) -> Any:
    """The engine for ``path`` with ``options`` (loaded once per process and shared)."""
    try:
        from agent.llm.local.engine import Engine
    except ImportError as e:
        from agent.errors import ConfigError

        raise ConfigError(
            f"local: models need the [local] extra (torch, transformers, xgrammar): {e}"
        ) from e

    key = (path, tuple(sorted(options.items())))
    with _ENGINES_LOCK:
        if key not in _ENGINES:
            if isinstance(options.get("dtype"), str):  # "bfloat16" from a configuration file
                import torch

                options = {**options, "dtype": getattr(torch, options["dtype"])}
            _ENGINES[key] = Engine.from_pretrained(path, **options)
        return _ENGINES[key]


@cache
def _system_prompts() -> dict[str, str]:
    """Each formalizer's system prompt (``milp``, ``asp``, ``pddl``...) by kind."""
    out = {}
    for kind in ("milp", "asp", "pddl", "apis", "routing"):
        try:
            text = resources.files(f"formalizers.{kind}").joinpath("prompts", "system.md")
            out[kind] = text.read_text(encoding="utf-8").strip()
        except (ModuleNotFoundError, FileNotFoundError, OSError):
            continue
    return out


def detect_artifact(messages: list[dict[str, str]]) -> str:
    """The kind of artifact a conversation asks for, from its system message ("" if unknown)."""
    if not messages or messages[0]["role"] != "system":
        return ""
    system = messages[0]["content"].strip()
    for kind, prompt in _system_prompts().items():
        if system == prompt:
            return kind
    return ""


def quoted_domain(messages: list[dict[str, str]]) -> str:
    """The first ``(define (domain ...))`` form quoted in the user's messages ("" if none)."""
    for m in messages:
        if m["role"] != "user":
            continue
        text = m["content"]
        start = text.find("(define (domain")
        if start < 0:
            continue
        depth = 0
        for i in range(start, len(text)):
            if text[i] == "(":
                depth += 1
            elif text[i] == ")":
                depth -= 1
                if depth == 0:
                    return text[start : i + 1]
    return ""


def select_grammar(
    messages: list[dict[str, str]], artifact: str, bounds: Any = None, routing: Any = None
) -> Any:
    """The grammar (or ``PddlGrammar``) for ``artifact`` in this conversation; None for free
    text. ``routing``: a ``RoutingContext`` for a routing spec (None: from ``routing:IDS``, or
    the general grammar). See the module docstring for the kinds."""
    from agent.llm.local import grammar as g

    kind, _, arg = artifact.partition(":")
    if kind == "auto":
        kind, arg = detect_artifact(messages), ""
    if kind in ("", "none", "apis"):
        return None
    if kind == "routing":
        return g.grammar_for(f"routing:{arg}", bounds, routing=routing)[0]
    if kind == "pddl":
        if arg:
            return g.PddlGrammar(g.read_domain_arg(arg), bounds)
        domain = quoted_domain(messages)
        if not domain:
            return g.pddl_any_grammar(bounds)
        from formalizers.pddl.model import read_domain

        return g.PddlGrammar(read_domain(domain), bounds)
    target, _ = g.grammar_for(kind, bounds)
    return target


def schema_call_grammar(schema: Any, bounds: Any = None) -> Any:
    """The grammar of a call's own JSON schema (``json_schema=`` keyword: a tool's arguments),
    bounded as every grammar here is (``grammar.bounded_schema``); a complete sample must be JSON."""
    import json

    from agent.llm.local import grammar as g

    if not isinstance(schema, dict):
        raise TypeError(f"json_schema must be a JSON schema object, not {type(schema).__name__}")
    bounded = g.bounded_schema(schema, bounds or g.Bounds())
    return g.Grammar("json-schema", "json_schema", json.dumps(bounded), "json", json.loads)


class LocalChatModel(BaseChatModel):
    """A chat model that samples from a local causal LM under the artifact's grammar.

    ``model_path`` is a local path or hub id; ``engine_options`` go to ``Engine.from_pretrained``
    (``device``, ``max_batch``, ``max_len``, ``grammar_engine_name``...). ``max_new_tokens`` bounds
    one reply; ``time_budget_s``, if set, also bounds its sampling time (none by default).
    ``bounds`` (a ``grammar.Bounds``) limits what the grammars allow; ``routing`` (a
    ``grammar.RoutingContext``) specialises the routing grammar to a request."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model_path: str
    artifact: str = "auto"
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0
    max_new_tokens: int = 2048
    time_budget_s: float | None = None
    bounds: Any = None
    routing: Any = None
    engine_options: dict[str, Any] = {}
    samples_in_one_call: bool = True
    """``n`` samples of one call share the prompt's prefill (``ChatClient.complete_n``)."""
    _lock: Any = PrivateAttr(default_factory=threading.Lock)
    _last: dict[str, Any] = PrivateAttr(default_factory=dict)

    @property
    def _llm_type(self) -> str:
        return "formalist-local"

    @property
    def last(self) -> dict[str, Any]:
        """The metadata of the last reply (``finish``, ``cut_off``, ``grammar``, ``tokens``)."""
        return dict(self._last)

    def engine(self) -> Any:
        return load_engine(self.model_path, **self.engine_options)

    def _routing(self, kwargs: dict[str, Any]) -> Any:
        """The routing context of this call: from its keywords, else the ``routing`` field."""
        keys = ("locations", "depots", "clients", "groups")
        if kwargs.get("locations") is None:
            return self.routing
        from agent.llm.local.grammar import routing_context

        return routing_context(*(kwargs.get(k) for k in keys))

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        from agent.llm.local.artifacts import sample_artifacts
        from agent.llm.local.sampling import SamplingParams

        msgs = [{"role": _ROLES.get(m.type, "user"), "content": str(m.content)} for m in messages]
        artifact = str(kwargs.get("artifact", self.artifact))
        if kwargs.get("json_schema") is not None:
            target = schema_call_grammar(kwargs["json_schema"], self.bounds)
        else:
            target = select_grammar(msgs, artifact, self.bounds, self._routing(kwargs))
        n = max(1, int(kwargs.get("n", 1)))
        params = SamplingParams(
            n=n,
            temperature=float(kwargs.get("temperature", self.temperature)),
            top_p=self.top_p,
            seed=int(kwargs.get("seed", self.seed)),
            max_new_tokens=self.max_new_tokens,
            time_budget_s=self.time_budget_s,
            stop=tuple(stop or ()),
        )
        with self._lock:
            engine = self.engine()
            prompt = engine.chat_prompt(msgs)
            drawn: list[tuple[Any, bool | None]]
            if target is None:
                drawn = [(s, None) for s in engine.sample(prompt, None, params)]
            else:
                # Each sample index ends in exactly one list: valid, cut off, or invalid.
                res = sample_artifacts(engine, prompt, target, params)
                by_index: dict[int, tuple[Any, bool | None]] = {}
                for s, _ in res.invalid:
                    by_index[s.index] = (s, False)
                for s in res.cut_off:
                    by_index[s.index] = (s, False)
                for a in res.artifacts:
                    by_index[a.sample.index] = (a.sample, True)
                drawn = [by_index[i] for i in sorted(by_index)]
        generations = []
        for sample, valid in drawn:
            meta = {
                "finish": sample.finish,
                "cut_off": sample.cut_off,
                "grammar": "" if target is None else target.name,
                "tokens": len(sample.token_ids),
                "seed": sample.seed,
                "valid": valid,
            }
            if sample.cut_off:
                log.warning(
                    "local model %s: reply cut off (%s) after %d tokens",
                    self.model_path,
                    sample.finish,
                    len(sample.token_ids),
                )
            message = AIMessage(content=sample.text, response_metadata=meta)
            generations.append(ChatGeneration(message=message))
        self._last = dict(generations[0].message.response_metadata)
        return ChatResult(generations=generations)
