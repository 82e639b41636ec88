"""One registry of kinds and backends: backends declare what they support, and every list of kinds
or backends (router, CLI choices, configuration, REST ``kind``, MCP tools, ``formalist backends``)
reads the registry. A new kind is new files plus one ``register_kind`` line (the demo kind under
``tests/fixtures/demo_kind``: a 0/1 knapsack solved through clingo)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.agent import Agent
from agent.cli import build_parser, main
from agent.config import Config
from agent.errors import ConfigError
from agent.kinds import KINDS, KindEntry, Options, Tool, entry, register_kind, unregister_kind
from agent.router import route
from agent.types import Request
from conftest import FIXTURES, MILP
from solvers import registry
from solvers.base import Limits, Status

DEMO = FIXTURES / "demo_kind" / "tiny.knap"
ROOT = Path(__file__).resolve().parents[3]

COND_DOMAIN = """(define (domain lights)
  (:requirements :strips :conditional-effects)
  (:predicates (on) (lit))
  (:action flip :parameters () :precondition ()
    :effect (when (on) (lit))))"""
COND_PROBLEM = "(define (problem p) (:domain lights) (:init (on)) (:goal (lit)))"

ROUTES = {
    "locations": [
        {"id": "depot", "x": 0, "y": 0},
        {"id": "a", "x": 3, "y": 0},
        {"id": "b", "x": 3, "y": 4},
    ],
    "depots": [{"id": "depot"}],
    "clients": [{"id": "a"}, {"id": "b"}],
    "vehicle_types": [{"count": 1}],
}


@pytest.fixture
def demo() -> Iterator[None]:
    # The whole of adding the kind: one registration line (the production kinds use the same call).
    register_kind(KindEntry("demo", "fixtures.demo_kind.kind", "DemoKind", ("clingo",), "clingo", Tool("solve_demo", "knapsack", "Solve a 0/1 knapsack given as JSON.", "items.knap")))  # fmt: skip
    yield
    unregister_kind("demo")


# -- declarations ----------------------------------------------------------------------------------


def test_every_backend_declares_itself_under_its_registry_name() -> None:
    for name in registry.names():
        supports = registry.declaration(name)
        assert supports.name == name and supports.kinds and supports.features, name
    for e in (entry(k) for k in KINDS):
        assert e.default in e.backends
        for b in e.backends:
            assert e.name in registry.declaration(b).kinds or e.name == "apis", (e.name, b)


def test_a_backend_refuses_what_its_declaration_lacks_naming_the_feature() -> None:
    result = registry.solve_with(
        "pyperplan", "pddl", {"STRIPS with types", "conditional effects"}, None
    )
    assert result.status is Status.UNSUPPORTED and result.solver == "pyperplan"
    assert "does not support conditional effects" in result.message
    assert "fast-downward" in result.message  # who does
    wrong_kind = registry.solve_with("highs", "pddl", set(), None)
    assert wrong_kind.status is Status.UNSUPPORTED and "not pddl" in wrong_kind.message


def test_the_planning_kind_refuses_before_running_the_planner(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from solvers import planning

    def never(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the planner ran")

    monkeypatch.setattr(planning, "run_pyperplan", never)
    result = planning.run_planner(COND_DOMAIN, COND_PROBLEM, Limits(time_s=5), planner="pyperplan")
    assert result.status is Status.UNSUPPORTED
    assert "pyperplan does not support conditional effects" in result.message
    answer = Agent(config=Config(cache="", planner="pyperplan")).solve(
        Request(COND_PROBLEM, "p.pddl", extra={"domain": COND_DOMAIN})
    )
    assert answer.status is Status.UNSUPPORTED and "conditional effects" in answer.explanation


def test_the_milp_kind_runs_the_backend_its_options_name(monkeypatch: pytest.MonkeyPatch) -> None:
    kind = KINDS["milp"]
    for backend, solver in (("highs", "highs"), ("pyomo", "pyomo:highs")):
        opts = Options(Limits(time_s=10), backend=backend)
        text = (MILP / "knapsack.json").read_text()
        result = kind.solve(kind.validate(kind.read(text, "knapsack.json", opts), opts), opts)
        assert (result.status, result.solver, result.objective) == (Status.OPTIMAL, solver, 15.0)


def test_configuration_choices_come_from_the_registry() -> None:
    with pytest.raises(ConfigError, match="backend must be one of highs, pyomo"):
        Agent(config=Config(cache="", backend="gurobi"))
    with pytest.raises(ConfigError, match="planner must be one of auto, fast-downward, symk"):
        Agent(config=Config(cache="", planner="lama"))
    parser = build_parser()
    args = parser.parse_args(["solve", "x", "--planner", "pyperplan", "--backend", "pyomo"])
    assert (args.planner, args.backend) == ("pyperplan", "pyomo")
    with pytest.raises(SystemExit):
        parser.parse_args(["solve", "x", "--backend", "cplex"])


def test_the_configuration_defaults_are_the_registrys() -> None:
    """``agent.config`` is a leaf and cannot read the registry: its defaults must agree with it."""
    for e in (entry(k) for k in KINDS):
        if e.option:
            assert getattr(Config(), e.option) == getattr(Options(), e.option) == e.default


def test_backends_lists_every_backend_with_planners_and_routing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["backends"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    for name in ("highs", "pyomo", "clingo", "pyvrp", "fast-downward", "symk", "pyperplan"):
        assert name in lines and " ok " in lines[name], name
    assert "pddl" in lines["pyperplan"] and "routing" in lines["pyvrp"]
    assert "(default for milp)" in lines["highs"]


def test_a_backend_whose_module_is_missing_is_listed_as_unavailable() -> None:
    registry.register_backend("ghost", "solvers.no_such_backend")
    try:
        row = next(b for b in registry.backends() if b.name == "ghost")
    finally:
        registry.unregister_backend("ghost")
    assert not row.available and "no_such_backend" in row.detail


def test_importing_the_registries_loads_no_solver() -> None:
    code = (
        "import sys\n"
        "import solvers.registry, agent.kinds\n"
        "loaded = [m for m in ('highspy', 'pyomo', 'clingo', 'pyvrp', 'solvers.highs',"
        " 'solvers.planning', 'agent.kinds.milp') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


# -- the service's lists ---------------------------------------------------------------------------


def _mcp_call(agent: Agent, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    import anyio

    from agent.mcp_tools import build_mcp

    async def call() -> dict[str, Any]:
        result = await build_mcp(agent).call_tool(tool, arguments)
        return dict(result.structured_content or {})

    return anyio.run(call)


def _mcp_tool_names(agent: Agent) -> set[str]:
    import anyio

    from agent.mcp_tools import build_mcp

    async def names() -> set[str]:
        return {t.name for t in await build_mcp(agent).list_tools()}

    return anyio.run(names)


def test_rest_accepts_routing_and_mcp_has_a_routing_tool(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from agent.server import create_app
    from agent.session import SessionStore

    agent = Agent(config=Config(cache="", time_limit=10))
    text = json.dumps(ROUTES)
    with TestClient(create_app(agent, SessionStore(str(tmp_path / "s.sqlite")))) as client:
        r = client.post("/v1/solve", json={"request": text, "kind": "routing"})
        assert r.status_code == 200 and r.json()["kind"] == "routing", r.text
        bad = client.post("/v1/solve", json={"request": text, "kind": "lp"})
        assert bad.status_code == 422 and "known kinds" in bad.text
    assert {"solve_routing", "solve_optimization", "plan", "solve_asp", "solve_apis"} <= (
        _mcp_tool_names(agent)
    )


# -- a new kind: new files plus one registration line ----------------------------------------------


@pytest.mark.usefixtures("demo")
def test_a_demo_kind_is_accepted_everywhere(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    text = DEMO.read_text()
    assert route(Request(text, "tiny.knap")).kind == "demo"  # by content, in the router's order
    assert "demo" in build_parser().parse_args(["solve", "x", "--kind", "demo"]).kind
    assert main(["solve", str(DEMO), "--kind", "demo", "--json", "--no-cache"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["status"], data["kind"], data["verified"]) == ("OPTIMAL", "demo", True)
    assert sorted(data["answer_set"]) == ["take(lamp)", "take(stove)"]
    assert "value 90" in data["explanation"]

    from fastapi.testclient import TestClient

    from agent.server import create_app
    from agent.session import SessionStore

    agent = Agent(config=Config(cache=""))
    with TestClient(create_app(agent, SessionStore(str(tmp_path / "s.sqlite")))) as client:
        r = client.post("/v1/solve", json={"request": text, "kind": "demo"})
        assert r.status_code == 200 and r.json()["kind"] == "demo", r.text
        schema = client.get("/openapi.json").json()["components"]["schemas"]["SolveBody"]
        assert "demo" in schema["properties"]["kind"]["enum"]
    assert "solve_demo" in _mcp_tool_names(agent)


@pytest.mark.usefixtures("demo")
def test_the_demo_kind_is_verified_independently() -> None:
    kind = KINDS["demo"]
    opts = Options(Limits(time_s=10))
    validated = kind.validate(kind.read(DEMO.read_text(), "tiny.knap", opts), opts)
    result = kind.solve(validated, opts)
    check = kind.verify(validated, result, opts)
    assert check is not None and check.ok and check.objective == 90.0
    from dataclasses import replace

    forged = replace(result, answer_set=("take(book)", "take(lamp)", "take(tent)"))
    bad = kind.verify(validated, forged, opts)
    assert bad is not None and not bad.ok and {v.name for v in bad.violations} >= {"capacity"}


def test_each_kinds_mcp_tool_solves_its_input() -> None:
    agent = Agent(config=Config(cache="", time_limit=10))
    routes = _mcp_call(agent, "solve_routing", {"instance": json.dumps(ROUTES)})
    assert (routes["kind"], routes["verified"]) == ("routing", True)
    assert routes["status"] in ("OPTIMAL", "FEASIBLE")
    model = json.loads((MILP / "knapsack.json").read_text())
    milp = _mcp_call(agent, "solve_optimization", {"model": model})
    assert (milp["kind"], milp["status"], milp["objective"]) == ("milp", "OPTIMAL", 15.0)
    plan = _mcp_call(agent, "plan", {"problem": COND_PROBLEM, "domain": COND_DOMAIN})
    assert (plan["kind"], plan["status"], plan["verified"]) == ("pddl", "FEASIBLE", True)
    travel = (ROOT / "examples" / "travel" / "incomplete.yaml").read_text()
    asks = _mcp_call(agent, "solve_apis", {"request": travel})
    assert (asks["kind"], asks["status"]) == ("apis", "NEEDS_INFO") and asks["questions"]
    given = {"nights": "5", "passport_number": "P1"}
    done = _mcp_call(agent, "solve_apis", {"request": travel, "given": given})
    assert (done["status"], done["verified"]) == ("OPTIMAL", True)
