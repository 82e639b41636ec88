"""Shared fixtures: golden models, scripted models, an agent with no network and no disk cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.agent import Agent
from agent.config import Config
from agent.llm.client import ChatClient
from agent.llm.replay import ReplayChatModel

FIXTURES = Path(__file__).parent / "fixtures"
MILP = FIXTURES / "milp"


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the developer's configuration, model or API keys."""
    for var in (
        "FORMALIST_MODEL",
        "FORMALIST_CONFIG",
        "FORMALIST_BASE_URL",
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "FORMALIST_TOOLS_DB",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)


def golden_text(name: str) -> str:
    return (MILP / name).read_text(encoding="utf-8")


def golden_json(name: str) -> dict:
    return json.loads(golden_text(name))


def scripted(*replies: str | dict) -> ChatClient:
    """A chat client that returns ``replies`` in order (dicts are sent as JSON)."""
    texts = [r if isinstance(r, str) else json.dumps(r) for r in replies]
    return ChatClient("replay:scripted", ReplayChatModel(replies=texts))


def agent_with(client: ChatClient | None = None, **overrides: object) -> Agent:
    cfg = Config(cache="", max_attempts=int(overrides.pop("max_attempts", 3)))  # type: ignore[call-overload]
    return Agent(client, config=cfg, **overrides)


QWEN_VOCAB, QWEN_STOP = 151_936, 151645
"""The real Qwen vocabulary size and its end-of-turn token (the tiny test models use both)."""


@pytest.fixture(scope="session")
def grammar_engines(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Both grammar engines over the real Qwen vocabulary, with its tokenizer (built once)."""
    pytest.importorskip("xgrammar")
    pytest.importorskip("llguidance")
    from transformers import AutoTokenizer

    from agent.llm.local.masks import LLGuidanceEngine, XGrammarEngine
    from agent.llm.local.testing import tiny_model_dir

    tok = AutoTokenizer.from_pretrained(tiny_model_dir(tmp_path_factory.mktemp("vocab")))
    return {
        "xgrammar": XGrammarEngine(tok, QWEN_VOCAB, [QWEN_STOP], 2),
        "llguidance": LLGuidanceEngine(tok, QWEN_VOCAB, [QWEN_STOP], 2),
        "tokenizer": tok,
    }


def engine_accepts(engines: dict, name: str, grammar: object, text: str) -> bool:
    """Whether engine ``name`` of ``grammar_engines`` accepts ``text`` then the stop token as a
    whole sample of ``grammar``."""
    e, tok = engines[name], engines["tokenizer"]
    m = e.matcher(e.compile(grammar))
    ids = [*tok.encode(text, add_special_tokens=False), QWEN_STOP]
    return all(e.accept(m, t) for t in ids) and e.terminated(m)
