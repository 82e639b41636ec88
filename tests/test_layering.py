"""The layering holds by construction (issue 13): no import circle among the project's packages, and
the import contracts (pyproject.toml ``[tool.importlinter]``, run by ``lint-imports`` in ``make
lint``) name every module, so a new module cannot slip past them.

The graph is grimp's (import-linter's own), with the same options as the contracts: imports under
``if TYPE_CHECKING:`` and imports inside functions count, as they are dependencies too.

The package graph's nodes are the contracts' units: each directory package (``agent.llm``,
``agent.llm.local``, ``agent.kinds``, ``agent.db``, each ``formalizers.<language>``, ``solvers``,
``tool_maker``, ``benchmarks``), the orchestrator (``agent``'s other top modules) as one node, and
the modules the contracts put below the rest of their package as their own nodes: the leaves
``agent.errors`` and ``agent.config``, ``agent.types`` (the values of the flow), and the model
layer's value modules ``agent.llm.chat`` and ``agent.llm.grammar`` (the ``Chat`` protocol and the
``Grammar`` value, which the formalizers, the clients and the local engine import, and which import
none of the model layer's backends: contract ``model-values``).
"""

from __future__ import annotations

import re
import tomllib
from collections import defaultdict
from collections.abc import Iterable
from functools import cache
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]
ROOTS = ("agent", "formalizers", "solvers", "tool_maker", "benchmarks")
OWN_NODES = ("agent.errors", "agent.config", "agent.types", "agent.llm.chat", "agent.llm.grammar")
"""Modules that the contracts place below the rest of their package."""
PACKAGE_NODES = ("agent.llm.local", "agent.llm", "agent.kinds", "agent.db")
"""Directory packages inside ``agent``, most specific first."""


@cache
def project_graph() -> grimp.ImportGraph:
    return grimp.build_graph(*ROOTS, exclude_type_checking_imports=False, cache_dir=None)


@cache
def contracts() -> dict[str, dict]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return {c["id"]: c for c in config["tool"]["importlinter"]["contracts"]}


def node(module: str) -> str:
    """The package-graph node ``module`` belongs to."""
    parts = module.split(".")
    if parts[0] == "formalizers":
        return ".".join(parts[:2])
    if parts[0] != "agent":
        return parts[0]
    for name in (*OWN_NODES, *PACKAGE_NODES):
        if module == name or module.startswith(name + "."):
            return name
    return "agent"


def package_edges(graph: grimp.ImportGraph) -> dict[tuple[str, str], list[str]]:
    """(importer node, imported node) -> the module imports behind that edge."""
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for importer in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            a, b = node(importer), node(imported)
            if a != b:
                edges[a, b].append(f"{importer} -> {imported}")
    return edges


def cycles(edges: Iterable[tuple[str, str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan), each sorted."""
    succ: dict[str, set[str]] = defaultdict(set)
    for a, b in edges:
        succ[a].add(b)
        succ.setdefault(b, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(succ[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(succ):
        if v not in index:
            visit(v)
    return sorted(found)


def describe(component: list[str], edges: dict[tuple[str, str], list[str]]) -> str:
    inside = [(a, b) for (a, b) in sorted(edges) if a in component and b in component]
    return " <-> ".join(component) + "".join(
        f"\n    {a} -> {b}: {', '.join(edges[a, b][:3])}" for a, b in inside
    )


def test_the_package_graph_has_no_cycle() -> None:
    edges = package_edges(project_graph())
    found = cycles(edges)
    assert not found, "import cycles between packages:\n" + "\n".join(
        describe(c, edges) for c in found
    )


def test_the_cycle_finder_finds_cycles_and_names_their_imports() -> None:
    graph = grimp.ImportGraph()
    for importer, imported in [
        ("agent.cli", "benchmarks.cli"),
        ("benchmarks.runner", "agent.agent"),
        ("agent.agent", "agent.kinds.milp"),
        ("agent.kinds.milp", "formalizers.milp.model"),
        ("formalizers.milp.model", "agent.errors"),
        ("agent.errors", "agent.config"),
    ]:
        graph.add_import(importer=importer, imported=imported)
    edges = package_edges(graph)
    assert cycles(edges) == [["agent", "benchmarks"]]
    assert "agent -> benchmarks: agent.cli -> benchmarks.cli" in describe(
        ["agent", "benchmarks"], edges
    )
    assert cycles([("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")]) == [["a", "b", "c"]]


def test_the_nodes_are_the_layers_units() -> None:
    assert node("agent.llm.local.engine") == "agent.llm.local"
    assert node("agent.llm.client") == node("agent.llm.spec") == "agent.llm"
    assert node("agent.llm.chat") == "agent.llm.chat"
    assert node("agent.kinds") == node("agent.kinds.milp") == "agent.kinds"
    assert node("agent.cli") == node("agent.agent") == node("agent") == "agent"
    assert node("agent.errors") == "agent.errors"
    assert node("formalizers.milp.model") == "formalizers.milp"
    assert node("formalizers.base") == "formalizers.base"
    assert node("solvers.routing_exact") == "solvers"


def layer_modules() -> list[str]:
    return [
        name.strip("() ")
        for layer in contracts()["layers"]["layers"]
        for name in re.split(r"[:|]", layer)
    ]


def covered(module: str, names: Iterable[str]) -> bool:
    return any(module == n or module.startswith(n + ".") for n in names)


def test_every_module_sits_in_a_layer() -> None:
    names = layer_modules()
    # `agent` itself is the public API, whose exports load lazily by name (agent/__init__.py).
    loose = sorted(m for m in project_graph().modules if m != "agent" and not covered(m, names))
    assert not loose, f"modules in no layer of pyproject.toml's layers contract: {loose}"


ALLOWED = {
    "model-layer": ("agent", {"agent.errors", "agent.config", "agent.llm"}),
    "model-values": ("agent.llm", {"agent.llm.chat", "agent.llm.grammar"}),
    "formalizers": (
        "agent",
        {"agent.errors", "agent.config", "agent.llm.chat", "agent.llm.grammar"},
    ),
    "solvers": ("agent", {"agent.errors", "agent.config"}),
    "leaves": ("agent", {"agent.errors", "agent.config"}),
}
"""Each forbidden contract: the package it fences, and what of it the sources may import; the
contract must forbid the rest."""


@pytest.mark.parametrize("contract", sorted(ALLOWED))
def test_each_forbidden_contract_names_all_of_agent_but_what_it_allows(contract: str) -> None:
    graph = project_graph()
    scope, allowed = ALLOWED[contract]
    units = set(graph.find_children(scope))
    for package in {a.rsplit(".", 1)[0] for a in allowed if a.count(".") > 1}:
        units = (units - {package}) | set(graph.find_children(package))
    forbidden = contracts()[contract]["forbidden_modules"]
    missing = sorted(u for u in units - allowed if not covered(u, forbidden))
    assert not missing, f"contract {contract!r} does not forbid {missing}"
    assert not [f for f in forbidden if covered(f, allowed)], f"{contract!r} forbids what it allows"
