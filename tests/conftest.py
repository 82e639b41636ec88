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
