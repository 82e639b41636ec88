"""Model specs: one string picks the language model.

``openai:MODEL`` (any OpenAI-compatible server; the base URL comes from ``base_url`` in the
configuration, ``FORMALIST_BASE_URL`` or ``OPENAI_BASE_URL``), ``ollama:MODEL``, ``replay:FILE``
and ``local:PATH_OR_ID`` (the local decoding backend). ``build_chat_model`` gives the LangChain chat
model; ``agent.llm.client.ChatClient`` wraps it (and forwards each call's grammar as that model takes
it: ``output_kwargs``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from agent.errors import ConfigError

PROVIDERS = ("openai", "ollama", "replay", "local")


@dataclass(frozen=True, slots=True)
class ModelSpec:
    provider: str
    name: str

    @property
    def id(self) -> str:
        return f"{self.provider}:{self.name}"


def parse_spec(spec: str) -> ModelSpec:
    """Split ``provider:name``; raise ``ConfigError`` naming the accepted forms."""
    if not isinstance(spec, str) or ":" not in spec:
        raise ConfigError(
            f"model spec {spec!r} must look like PROVIDER:NAME with PROVIDER one of {', '.join(PROVIDERS)}"
        )
    provider, name = spec.split(":", 1)
    provider = provider.strip().lower()
    name = name.strip()
    if provider not in PROVIDERS:
        raise ConfigError(
            f"unknown model provider {provider!r} in {spec!r}; use one of {', '.join(PROVIDERS)}"
        )
    if not name:
        raise ConfigError(f"model spec {spec!r} names no model after the colon")
    return ModelSpec(provider, name)


def build_chat_model(
    spec: ModelSpec,
    base_url: str = "",
    temperature: float = 0.0,
    timeout: float = 120.0,
    local: dict[str, Any] | None = None,
) -> Any:
    """The LangChain chat model for ``spec``. Nothing is contacted until it is called.
    ``timeout``: seconds a served model (``openai:``) may take per request; a ``local:`` model is
    bounded by its token budget instead. ``local``: the ``[local]`` settings of a ``local:`` model
    (``agent.config.LOCAL_KEYS``)."""
    if spec.provider == "replay":
        from agent.llm.replay import ReplayChatModel

        return ReplayChatModel.from_file(spec.name)
    if spec.provider == "openai":
        from langchain_openai import ChatOpenAI

        url = (
            base_url
            or os.environ.get("FORMALIST_BASE_URL")
            or os.environ.get("OPENAI_BASE_URL")
            or None
        )
        key = os.environ.get("OPENAI_API_KEY")
        if not key and not url:
            raise ConfigError(
                "openai: models need OPENAI_API_KEY (or a base URL of a local OpenAI-compatible server)"
            )
        return ChatOpenAI(
            model=spec.name,
            base_url=url,
            api_key=key or "not-needed",  # type: ignore[arg-type]
            temperature=temperature,
            timeout=timeout,
            max_retries=2,
        )
    if spec.provider == "ollama":
        from langchain_ollama import ChatOllama

        url = base_url or os.environ.get("OLLAMA_HOST") or None
        return ChatOllama(model=spec.name, base_url=url, temperature=temperature)
    if spec.provider == "local":
        try:
            from agent.llm.local.chat_model import LocalChatModel
        except ImportError as e:  # pragma: no cover - the [local] extra is not installed
            raise ConfigError(
                "local: models need the [local] extra (torch, transformers, xgrammar): "
                f"pip install 'formalist[local]' ({e})"
            ) from e
        from agent.config import LOCAL_DEFAULTS

        options = {**LOCAL_DEFAULTS, **(local or {})}
        max_new_tokens = int(options.pop("max_new_tokens", 2048))
        time_budget = options.pop("time_budget_s", None)
        if "grammar_engine" in options:
            options["grammar_engine_name"] = options.pop("grammar_engine")
        # The engine loads on the first call, not here. A reply's budget is its tokens
        # (``max_new_tokens``), and its sampling time only where ``[local] time_budget_s`` says
        # so, not ``timeout``: that is a network timeout, and a CPU takes longer than any
        # network reply for a reply it can finish.
        return LocalChatModel(
            model_path=spec.name,
            temperature=temperature,
            time_budget_s=None if time_budget is None else float(time_budget),
            max_new_tokens=max_new_tokens,
            engine_options=options,
        )
    raise ConfigError(f"unknown model provider {spec.provider!r}")
