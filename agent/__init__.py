"""formalist: natural-language planning and optimization requests to formal models, solved and checked.

    from agent import Agent
    answer = Agent(model="openai:gpt-4o-mini").solve("A bakery makes muffins and cakes ...")
    print(answer.status, answer.objective, answer.explanation)

Imports are lazy so that ``import agent`` stays light.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "Agent",
    "Answer",
    "Attempt",
    "Config",
    "Request",
    "SolveResult",
    "Status",
    "Verification",
    "solve",
]

_EXPORTS = {
    "Agent": "agent.agent",
    "solve": "agent.agent",
    "Answer": "agent.types",
    "Attempt": "agent.types",
    "Request": "agent.types",
    "Config": "agent.config",
    "SolveResult": "solvers.base",
    "Status": "solvers.base",
    "Verification": "solvers.base",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'agent' has no attribute {name!r}")
