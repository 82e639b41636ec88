"""``local:PATH_OR_ID``: a LangChain chat model over the local decoding engine.

Each call samples under exactly the grammar its caller gives, the call keyword ``output``: an
``agent.llm.grammar.Grammar`` (a JSON schema or EBNF), a staged grammar
(``agent.llm.grammar.Staged``, drawn in two phases), or None for free text. The model reads no
prompt to guess one, and knows no formal language: each formalizer builds its grammar
(``formalizers/<language>/grammar.py``) and passes it.

The engine's size limits (the ``bounds`` field, default ``Bounds()``) are applied to the grammar it
is given (``agent.llm.grammar.under_bounds``): a grammar generated with bounds is built again under
these, any other JSON schema is bounded generically, other EBNF is taken as it is.

The reply is the sample's text. A sample cut off by its budget is still returned as text, since
the formalizer's parser then tells the model where it broke off, and its ``response_metadata`` says
``cut_off``; it is never handed on as a complete artifact.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
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
_BOUNDED: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
_BOUNDED_KEEP = 32
"""Grammars last put under bounds, by (name, format, id, bounds): building a routing grammar over
150 locations again takes about 0.1 s, and a formalizer sends the same grammar on every call."""


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


class LocalChatModel(BaseChatModel):
    """A chat model that samples from a local causal LM under the grammar each call gives
    (``output``; none: free text).

    ``model_path`` is a local path or hub id; ``engine_options`` go to ``Engine.from_pretrained``
    (``device``, ``max_batch``, ``max_len``, ``grammar_engine_name``...). ``max_new_tokens`` bounds
    one reply; ``time_budget_s``, if set, also bounds its sampling time (none by default).
    ``bounds`` (an ``agent.llm.grammar.Bounds``; None: ``Bounds()``) limits what the grammars
    allow (``under_bounds``)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model_path: str
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0
    max_new_tokens: int = 2048
    time_budget_s: float | None = None
    bounds: Any = None
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

    def grammar(self, output: Any) -> Any:
        """The grammar a call samples under: ``output`` (a ``Grammar`` or a ``Staged`` grammar)
        under this model's bounds; None (free text) for None."""
        from agent.llm.grammar import Bounds, Grammar, Staged, under_bounds

        if output is None:
            return None
        if not isinstance(output, Grammar | Staged):
            raise TypeError(
                f"output must be a Grammar or a staged grammar, not {type(output).__name__}"
            )
        bounds = self.bounds or Bounds()
        key = (output.name, output.format, output.id, bounds)
        with _ENGINES_LOCK:
            if key in _BOUNDED:
                _BOUNDED.move_to_end(key)
                return _BOUNDED[key]
        out = under_bounds(output, bounds)
        with _ENGINES_LOCK:
            _BOUNDED[key] = out
            while len(_BOUNDED) > _BOUNDED_KEEP:
                _BOUNDED.popitem(last=False)
        return out

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
        target = self.grammar(kwargs.get("output"))
        n = max(1, int(kwargs.get("n", 1)))
        params = SamplingParams(
            n=n,
            temperature=float(kwargs.get("temperature", self.temperature)),
            top_p=self.top_p,
            seed=int(kwargs.get("seed", self.seed)),
            greedy=min(n, max(0, int(kwargs.get("greedy", 0)))),
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
