"""Golden cases: each named model solves to the right status and optimum, verifies, and the
infeasible and unbounded ones name what is wrong."""

from __future__ import annotations

import pytest

from agent.agent import Agent
from agent.config import Config
from conftest import MILP
from solvers.base import Status

GOLDEN = [
    # file, status, optimum
    ("knapsack.json", Status.OPTIMAL, 15.0),
    ("diet.yaml", Status.OPTIMAL, 4.0),
    ("transport.json", Status.OPTIMAL, 930.0),
    ("production.json", Status.OPTIMAL, 20.0),
    ("infeasible.json", Status.INFEASIBLE, None),
    ("unbounded.json", Status.UNBOUNDED, None),
]


@pytest.mark.parametrize("backend", ["highs", "pyomo"])
@pytest.mark.parametrize(("name", "status", "optimum"), GOLDEN)
def test_golden_case(name: str, status: Status, optimum: float | None, backend: str) -> None:
    answer = Agent(config=Config(cache="", backend=backend)).solve_file(MILP / name)
    assert answer.status is status
    assert answer.attempts == 1
    if optimum is None:
        assert answer.objective is None
        assert answer.diagnosis is not None
        assert not answer.values
    else:
        assert answer.objective == pytest.approx(optimum, rel=1e-9, abs=1e-9)
        assert answer.verified
        assert answer.verification is not None and answer.verification.max_violation <= 1e-6


def test_infeasible_names_the_conflicting_constraints() -> None:
    answer = Agent(config=Config(cache="")).solve_file(MILP / "infeasible.json")
    assert answer.diagnosis is not None and answer.diagnosis.irreducible
    names = {m["name"] for m in answer.diagnosis.members}
    # headcount <= 10 against the two minimums (6 + 5); the payroll budget is not part of it.
    assert names == {"headcount", "team_minimum[support]", "team_minimum[sales]"}
    texts = {m["name"]: m for m in answer.diagnosis.members}
    assert texts["headcount"]["description"] == "There are ten posts."
    assert "staff[support] >= 6" in texts["team_minimum[support]"]["text"]
    assert "These conflict" in answer.explanation and "headcount" in answer.explanation


def test_unbounded_names_the_variable_that_runs_off() -> None:
    answer = Agent(config=Config(cache="")).solve_file(MILP / "unbounded.json")
    assert answer.diagnosis is not None
    assert [(m["name"], m["direction"]) for m in answer.diagnosis.members] == [("y", "+")]
    assert answer.diagnosis.members[0]["description"] == "units of product Y"


def test_integer_optimum_differs_from_relaxation() -> None:
    answer = Agent(config=Config(cache="")).solve_file(MILP / "production.json")
    assert answer.values == {"batches[p1]": 4.0, "batches[p2]": 0.0}


def test_explanation_lists_decisions_and_binding_limits() -> None:
    answer = Agent(config=Config(cache="")).solve_file(MILP / "transport.json")
    text = answer.explanation
    assert "Optimal: minimize total shipping cost = 930." in text
    assert "ship[A,1] = 50" in text
    assert "meet_demand[1]" in text  # demand is met exactly: a binding limit


@pytest.mark.parametrize(
    ("name", "objective"),
    [("transport.lp", 930.0), ("production.mps", 20.0)],
)
def test_lp_and_mps_files(name: str, objective: float) -> None:
    from pathlib import Path

    examples = Path(__file__).resolve().parents[2] / "examples"
    answer = Agent(config=Config(cache="")).solve_file(examples / name)
    assert answer.status is Status.OPTIMAL
    assert answer.objective == pytest.approx(objective)
    assert answer.verified
    assert answer.language == name.rsplit(".", 1)[1]
