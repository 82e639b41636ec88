"""The registry of problem kinds: each kind's module, its solver backends and default, and its MCP
tool. Adding a formal language is its new files plus one ``register_kind`` line here.

Everything that lists kinds or backends reads this registry: the router (``KINDS``), the CLI's
``--kind``, ``--backend`` and ``--planner`` choices, the configuration's check of ``backend`` and
``planner`` (``check_config``), the REST ``kind`` field, the MCP tools (one per kind, ``TOOLS``),
and each kind's dispatch to its backend (by registry name, through ``solvers.registry``).

A kind's module is imported the first time the kind is looked up, so that solving an LP file does not
load the planners, clingo, PyVRP or the language-model stack: ``KINDS`` is a read-only mapping whose
iteration (``KINDS.values()``, as the router does) imports one kind at a time, in this order.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agent.errors import ConfigError
from agent.kinds.base import Kind, Options


@dataclass(frozen=True, slots=True)
class Tool:
    """A kind's MCP tool: ``name`` takes the formal input as ``argument`` (a JSON object when
    ``json``, else text), read as a file called ``file_name`` (its suffix picks the reader; empty:
    by content); ``options`` are further arguments among ``TOOL_OPTIONS``."""

    name: str
    argument: str
    description: str
    file_name: str = ""
    json: bool = False
    options: tuple[str, ...] = ()


TOOL_OPTIONS: dict[str, tuple[type, Any, str]] = {
    "domain": (
        str,
        "",
        "a PDDL domain's text or the name of a known domain; empty: the one the problem names",
    ),
    "optimal": (bool, False, "ask for a proven-optimal plan"),
    "apis": (str, "", "the API catalog (YAML or JSON)"),
    "given": (dict[str, str], {}, "answers to the request's questions, by name"),
}
"""Arguments a kind's tool may take besides its input: type, default, description. ``optimal``
goes to the request; the others into its ``extra`` when given."""


@dataclass(frozen=True, slots=True)
class KindEntry:
    """One kind: its class (``module.cls``), the solver backends that serve it (registry names
    in ``solvers.registry``) and the ``default`` one, the ``Options``/``Config`` field that picks
    among them (``option``; empty when the kind picks for itself), and its MCP ``tool``."""

    name: str
    module: str
    cls: str
    backends: tuple[str, ...]
    default: str
    tool: Tool
    option: str = ""


_REGISTRY: dict[str, KindEntry] = {}
"""Kind name -> its entry; the order is the order in which the router tries formal inputs."""


def register_kind(entry: KindEntry) -> None:
    """Add (or replace) a kind. The kind's module is imported on first use, not here."""
    if entry.default not in entry.backends:
        raise ValueError(f"kind {entry.name}: default {entry.default!r} is not among its backends")
    _REGISTRY[entry.name] = entry
    KINDS._built.pop(entry.name, None)  # type: ignore[attr-defined]


def unregister_kind(name: str) -> None:
    """Remove a kind (tests that register one of their own)."""
    _REGISTRY.pop(name, None)
    KINDS._built.pop(name, None)  # type: ignore[attr-defined]


class _Kinds(Mapping[str, Kind]):
    """The kinds by name, each built on first use."""

    def __init__(self) -> None:
        self._built: dict[str, Kind] = {}

    def __getitem__(self, name: str) -> Kind:
        kind = self._built.get(name)
        if kind is None:
            entry = _REGISTRY[name]  # KeyError for an unknown kind, as a dict would
            kind = getattr(importlib.import_module(entry.module), entry.cls)()
            self._built[name] = kind
        return kind

    def __iter__(self) -> Iterator[str]:
        return iter(tuple(_REGISTRY))

    def __len__(self) -> int:
        return len(_REGISTRY)

    def __contains__(self, name: object) -> bool:
        return name in _REGISTRY

    def __repr__(self) -> str:
        return f"KINDS({', '.join(_REGISTRY)})"


KINDS: Mapping[str, Kind] = _Kinds()


class _Names(Sequence[str]):
    """The registered kinds' names in the router's order, read at each use (so that argparse's
    ``choices`` and other lists made once still see a kind registered later)."""

    def __getitem__(self, i: Any) -> Any:
        return tuple(_REGISTRY)[i]

    def __len__(self) -> int:
        return len(_REGISTRY)

    def __contains__(self, name: object) -> bool:
        return name in _REGISTRY

    def __iter__(self) -> Iterator[str]:
        return iter(tuple(_REGISTRY))

    def __repr__(self) -> str:
        return repr(tuple(_REGISTRY))


KIND_NAMES: Sequence[str] = _Names()
"""The kinds' names (a live view of the registry)."""


def entries() -> tuple[KindEntry, ...]:
    """Every kind's entry, in the router's order."""
    return tuple(_REGISTRY.values())


def entry(name: str) -> KindEntry:
    """The entry of kind ``name`` (``KeyError`` naming the known kinds)."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown kind {name!r}; known kinds: {', '.join(_REGISTRY)}") from None


def option_choices() -> dict[str, tuple[str, ...]]:
    """Each backend-picking option (``backend``, ``planner``) and the backends it may name."""
    return {e.option: e.backends for e in _REGISTRY.values() if e.option}


def backend_for(name: str, options: Options) -> str:
    """The backend kind ``name`` runs under ``options``: the option its entry names, else its
    default."""
    e = entry(name)
    return str(getattr(options, e.option)) if e.option else e.default


def check_config(config: Any) -> None:
    """``ConfigError`` when the configuration picks a backend its kind does not list (``backend``,
    ``planner``: their choices come from this registry, not from ``agent.config``)."""
    for e in _REGISTRY.values():
        if not e.option:
            continue
        value = getattr(config, e.option, e.default)
        if value not in e.backends:
            raise ConfigError(f"{e.option} must be one of {', '.join(e.backends)}, not {value!r}")


for _entry in (
    KindEntry(
        "milp",
        "agent.kinds.milp",
        "MilpKind",
        ("highs", "pyomo"),
        "highs",
        Tool(
            "solve_optimization",
            "model",
            "Solve a five-element optimization model (sets, parameters, variables, objective, "
            "constraints) given as JSON, with HiGHS; the answer is verified independently.",
            "model.json",
            json=True,
        ),
        option="backend",
    ),
    KindEntry(
        "pddl",
        "agent.kinds.pddl",
        "PddlKind",
        ("auto", "fast-downward", "symk", "pyperplan"),
        "auto",
        Tool(
            "plan",
            "problem",
            "Plan for a PDDL problem. `domain` is a PDDL domain's text or the name of a known "
            "domain (blocksworld, grippers, ...); empty means the domain the problem names.",
            "problem.pddl",
            options=("domain", "optimal"),
        ),
        option="planner",
    ),
    KindEntry(
        "asp",
        "agent.kinds.asp",
        "AspKind",
        ("clingo",),
        "clingo",
        Tool(
            "solve_asp",
            "program",
            "Solve a clingo (ASP) program: an answer set, its cost, or the constraints that "
            "conflict.",
            "program.lp",
        ),
    ),
    KindEntry(
        "apis",
        "agent.kinds.apis",
        "ApisKind",
        ("fast-downward",),
        "fast-downward",
        Tool(
            "solve_apis",
            "request",
            "Answer a request over APIs given as YAML or JSON (the calls to make, in order, or "
            "the questions to ask first when inputs are missing).",
            "request.yaml",
            options=("apis", "given"),
        ),
    ),
    KindEntry(
        "routing",
        "agent.kinds.routing",
        "RoutingKind",
        ("pyvrp", "routing-exact"),
        "pyvrp",
        Tool(
            "solve_routing",
            "instance",
            "Solve a routing instance (TSP, CVRP, VRPTW, multi-depot, prize-collecting, pickup "
            "and delivery) given as a routing spec (JSON) or a VRPLIB, TSPLIB or Solomon file's "
            "text; the routes are checked independently against the instance.",
        ),
    ),
):
    register_kind(_entry)
del _entry

__all__ = [
    "KINDS",
    "KIND_NAMES",
    "KindEntry",
    "Kind",
    "Options",
    "TOOL_OPTIONS",
    "Tool",
    "backend_for",
    "check_config",
    "entries",
    "entry",
    "option_choices",
    "register_kind",
    "unregister_kind",
]
