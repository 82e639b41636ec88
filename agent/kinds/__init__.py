"""The registry of problem kinds. Adding a formal language means adding one entry here."""

from __future__ import annotations

from agent.kinds.apis import ApisKind
from agent.kinds.asp import AspKind
from agent.kinds.base import Kind, Options
from agent.kinds.milp import MilpKind
from agent.kinds.pddl import PddlKind
from agent.kinds.routing import RoutingKind

KINDS: dict[str, Kind] = {
    k.name: k for k in (MilpKind(), PddlKind(), AspKind(), ApisKind(), RoutingKind())
}

__all__ = ["KINDS", "Kind", "Options"]
