"""The registry of problem kinds. Adding a formal language means adding one entry here.

A kind's module is imported the first time the kind is looked up, so that solving an LP file does not
load the planners, clingo, PyVRP or the language-model stack: ``KINDS`` is a read-only mapping whose
iteration (``KINDS.values()``, as the router does) imports one kind at a time, in this order.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping

from agent.kinds.base import Kind, Options

_REGISTRY: dict[str, tuple[str, str]] = {
    "milp": ("agent.kinds.milp", "MilpKind"),
    "pddl": ("agent.kinds.pddl", "PddlKind"),
    "asp": ("agent.kinds.asp", "AspKind"),
    "apis": ("agent.kinds.apis", "ApisKind"),
    "routing": ("agent.kinds.routing", "RoutingKind"),
}
"""Kind name -> (module, class); the order is the order in which the router tries formal inputs."""

KIND_NAMES: tuple[str, ...] = tuple(_REGISTRY)


class _Kinds(Mapping[str, Kind]):
    """The kinds by name, each built on first use."""

    def __init__(self) -> None:
        self._built: dict[str, Kind] = {}

    def __getitem__(self, name: str) -> Kind:
        kind = self._built.get(name)
        if kind is None:
            module, cls = _REGISTRY[name]  # KeyError for an unknown kind, as a dict would
            kind = getattr(importlib.import_module(module), cls)()
            self._built[name] = kind
        return kind

    def __iter__(self) -> Iterator[str]:
        return iter(_REGISTRY)

    def __len__(self) -> int:
        return len(_REGISTRY)

    def __contains__(self, name: object) -> bool:
        return name in _REGISTRY

    def __repr__(self) -> str:
        return f"KINDS({', '.join(_REGISTRY)})"


KINDS: Mapping[str, Kind] = _Kinds()

__all__ = ["KINDS", "KIND_NAMES", "Kind", "Options"]
