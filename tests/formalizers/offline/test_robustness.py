"""Defects found in review, each pinned: unbounded work, silently dropped model features, wrong
comparisons, tolerances, hostile input, routing, diagnosis quality."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from agent.agent import Agent
from agent.cli import main
from agent.config import Config
from agent.errors import ArtifactError, ConfigError
from agent.types import Request
from conftest import agent_with, golden_json, scripted
from formalizers.milp.linear import compile_model
from formalizers.milp.model import FiveElementModel
from formalizers.offline.milp_files import artifact_from_text, read_five_element
from solvers import highs
from solvers.base import Limits, Status
from solvers.verify import verify_linear


def model(**kw: object) -> FiveElementModel:
    base: dict = {
        "variables": [{"name": "x", "upper": 1}],
        "objective": {"sense": "max", "expression": "x"},
    }
    base.update(kw)
    return FiveElementModel.model_validate(base)


def agent() -> Agent:
    return Agent(config=Config(cache=""))


def test_filtered_triple_product_is_refused_quickly() -> None:
    """1414^3 index combinations, all filtered out: a small text that would run for minutes."""
    m = model(
        sets=[{"name": "A", "members": list(range(1414))}],
        constraints=[
            {
                "name": "c",
                "index": ["i in A", "j in A", "k in A"],
                "condition": "i < 0",
                "expression": "x <= 1",
            }
        ],
    )
    t0 = time.perf_counter()
    with pytest.raises(ArtifactError, match="index combinations") as e:
        compile_model(m)
    assert time.perf_counter() - t0 < 2 and e.value.kind == "size"


def test_variable_totals_are_checked_before_expanding() -> None:
    members = list(range(1414))
    m = model(
        sets=[{"name": "A", "members": members}],
        variables=[{"name": f"v{k}", "index": ["A", "A"]} for k in range(5)],
        objective={"sense": "max", "expression": "0"},
    )
    t0 = time.perf_counter()
    with pytest.raises(ArtifactError, match="instances in all"):
        compile_model(m)
    assert time.perf_counter() - t0 < 5


def test_iis_of_a_large_infeasible_lp_respects_the_time_limit() -> None:
    n = 80  # HiGHS's own IIS search takes about 20 s here
    supply, demand = [f"s{i}" for i in range(n)], [f"d{j}" for j in range(n)]
    m = FiveElementModel.model_validate(
        {
            "sets": [{"name": "S", "members": supply}, {"name": "D", "members": demand}],
            "parameters": [{"name": "cost", "index": ["S", "D"], "default": 1, "values": {}}],
            "variables": [{"name": "x", "index": ["S", "D"]}],
            "objective": {
                "sense": "min",
                "expression": "sum(cost[s, d] * x[s, d] for s in S for d in D)",
            },
            "constraints": [
                {
                    "name": "supply",
                    "index": ["s in S"],
                    "expression": "sum(x[s, d] for d in D) <= 10",
                },
                {
                    "name": "demand",
                    "index": ["d in D"],
                    "expression": "sum(x[s, d] for s in S) >= 10.01",
                },
            ],
        }
    )
    t0 = time.perf_counter()
    result = highs.solve(compile_model(m), Limits(time_s=1.0))
    assert result.status is Status.INFEASIBLE
    assert time.perf_counter() - t0 < 5
    assert result.diagnosis is not None and result.diagnosis.members


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("Minimize\n obj: - x + [ 2 x ^ 2 ] / 2\nSubject To\n c1: x <= 10\nEnd\n", "quadratic"),
        (
            "Minimize\n obj: x\nSubject To\n c1: x + y >= 0\nBounds\n x <= 10\n x >= 2\nSemi-Continuous\n x\nEnd\n",
            "semi-continuous",
        ),
    ],
)
def test_lp_features_we_cannot_solve_are_refused_not_dropped(text: str, needle: str) -> None:
    with pytest.raises(ArtifactError, match=needle):
        artifact_from_text(text, "milp", "m.lp")


def test_numeric_string_members_compare_as_numbers() -> None:
    months = [str(i) for i in range(1, 13)]
    m = FiveElementModel.model_validate(
        {
            "sets": [{"name": "T", "members": months}],
            "variables": [{"name": "x", "index": ["T"], "upper": 1}],
            "objective": {"sense": "max", "expression": "sum(x[t] for t in T if t <= 6)"},
        }
    )
    assert highs.solve(compile_model(m)).objective == 6


def test_verification_scales_with_the_numbers_involved() -> None:
    m = FiveElementModel.model_validate(
        {
            "variables": [{"name": "x", "upper": 10}, {"name": "y", "upper": 10}],
            "objective": {"sense": "max", "expression": "x + y"},
            "constraints": [
                {"name": "big", "expression": "1234567.891 * x - 2345678.912 * y == 0"}
            ],
        }
    )
    lm = compile_model(m)
    result = highs.solve(lm)
    assert verify_linear(lm, result).ok


def test_non_finite_defaults_are_rejected() -> None:
    with pytest.raises(ArtifactError, match="finite"):
        compile_model(
            model(
                sets=[{"name": "S", "members": ["a"]}],
                parameters=[{"name": "c", "index": ["S"], "values": {}, "default": float("nan")}],
            )
        )


def test_hostile_json_and_yaml_are_parse_errors() -> None:
    with pytest.raises(ArtifactError, match="nested too deeply"):
        read_five_element("[" * 200_000)
    bomb = (
        "sets: [{name: S, members: [a]}]\nl0: &l0 [a, a, a, a, a, a, a, a, a, a]\n"
        "l1: &l1 [*l0, *l0, *l0, *l0, *l0, *l0, *l0, *l0, *l0, *l0]\n"
    )
    t0 = time.perf_counter()
    with pytest.raises(ArtifactError, match="aliases"):
        read_five_element(bomb)
    assert time.perf_counter() - t0 < 1


def test_deeply_nested_reply_goes_back_to_the_model() -> None:
    answer = agent_with(scripted("[" * 100_000, golden_json("knapsack.json"))).solve(
        "Pack the boxes."
    )
    assert answer.trace[0].outcome == "parse" and answer.objective == 15


def test_huge_coefficients_do_not_crash_verification() -> None:
    answer = agent().solve(
        json.dumps(
            {
                "variables": [{"name": "x", "upper": 1e15}],
                "objective": {"sense": "max", "expression": "1e16 * x"},
            }
        )
    )
    assert answer.status is Status.OPTIMAL  # verification may fail, but as an answer, not a crash
    assert json.dumps(answer.to_json(), allow_nan=False)


def test_unwritable_cache_is_a_configuration_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="reply cache"):
        from agent.llm.cache import ResponseCache

        ResponseCache(blocker / "sub" / "cache.sqlite")


def test_words_that_look_like_an_lp_reach_the_model() -> None:
    text = "Minimize the weekly wage bill\nsubject to: at least 3 nurses on each shift, and no more than 10 in all."
    client = scripted(golden_json("knapsack.json"))
    answer = Agent(client, config=Config(cache="", model="replay:scripted")).solve(text)
    assert client.chat_model.calls, "the request never reached the model"
    assert answer.status is Status.OPTIMAL


def test_a_mistyped_file_name_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["solve", "examples/knapsak.json"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_big_five_element_json_file_is_recognised(tmp_path: Path) -> None:
    data = {
        "sets": [{"name": "I", "members": [f"item{i}" for i in range(800)]}],
        "variables": [{"name": "x", "index": ["I"], "domain": "binary"}],
        "objective": {"sense": "max", "expression": "sum(x[i] for i in I)"},
        "constraints": [{"name": "cap", "expression": "sum(x[i] for i in I) <= 3"}],
    }
    f = tmp_path / "big.json"
    f.write_text(json.dumps(data))
    assert agent().solve_file(f).objective == 3


def test_yaml_parameters_keyed_by_integer_members() -> None:
    text = (
        "sets: [{name: T, members: [1, 2]}]\nparameters: [{name: p, index: [T], values: {1: 5, 2: 7}}]\n"
        "variables: [{name: x, index: [T], upper: 1}]\nobjective: {sense: max, expression: 'sum(p[t] * x[t] for t in T)'}\n"
    )
    assert agent().solve(Request(text, "m.yaml")).objective == 12


def test_members_with_commas_are_refused() -> None:
    with pytest.raises(ArtifactError):
        read_five_element(
            json.dumps(
                {
                    "sets": [{"name": "S", "members": ["a,b"]}],
                    "variables": [{"name": "x"}],
                    "objective": {"sense": "max", "expression": "0"},
                }
            )
        )


def test_unbounded_diagnosis_names_only_what_runs_off() -> None:
    m = FiveElementModel.model_validate(
        {
            "variables": [{"name": "x"}, {"name": "y"}, {"name": "w", "lower": None}],
            "objective": {"sense": "max", "expression": "x"},
            "constraints": [
                {"name": "a", "expression": "x - y <= 3"},
                {"name": "b", "expression": "w + y >= 0"},
            ],
        }
    )
    d = highs.solve(compile_model(m)).diagnosis
    assert d is not None and {m["name"] for m in d.members} == {"x", "y"}
    big = model(
        variables=[{"name": "x"}, {"name": "z", "lower": 2e7}],
        objective={"sense": "max", "expression": "x + z"},
    )
    d = highs.solve(compile_model(big)).diagnosis
    assert d is not None and {m["name"] for m in d.members} == {"x", "z"}


def test_deletion_filter_keeps_the_bounds_the_conflict_needs() -> None:
    m = FiveElementModel.model_validate(
        {
            "variables": [{"name": "x", "domain": "integer"}, {"name": "y", "upper": 0.4}],
            "objective": {"sense": "max", "expression": "x"},
            "constraints": [{"name": "link", "expression": "x - y == 0.5"}],
        }
    )
    d = highs.solve(compile_model(m)).diagnosis
    assert d is not None and d.irreducible
    assert {m["name"] for m in d.members} == {"link", "bound of y"}


def test_nonlinear_check_ignores_cancelled_terms() -> None:
    m = model(
        variables=[{"name": "x", "upper": 1}, {"name": "y", "upper": 1}],
        objective={"sense": "max", "expression": "(x - x) * y + x"},
    )
    assert highs.solve(compile_model(m)).objective == 1


MPS = """NAME X
ROWS
 N obj
 G c1
COLUMNS
 x obj {cost} c1 1
RHS
 {rhs}
BOUNDS
 {bound}
ENDATA
"""


@pytest.mark.parametrize(
    ("cost", "rhs", "bound", "bad"),
    [
        ("notanumber", "rhs c1 5", "UP BND x 4", "'notanumber'"),
        ("2", "c1 five", "UP BND x 4", "'five'"),  # free MPS: no RHS set name
        ("2", "rhs c1 5", "UP BND x four", "'four'"),
        ("2", "c1 5", "FR BND x", ""),
        ("2", "rhs c1 5", "UP x 4", ""),
    ],
)
def test_an_mps_value_that_is_not_a_number_is_refused(
    cost: str, rhs: str, bound: str, bad: str
) -> None:
    """HiGHS's MPS reader takes a word where a number belongs as 0; such a file is refused with
    the line, and a well-formed one (set names left out, bounds without values) still reads."""
    text = MPS.format(cost=cost, rhs=rhs, bound=bound)
    if bad:
        with pytest.raises(ArtifactError, match=f"not a number at line \\d+: {bad}"):
            artifact_from_text(text, name="x.mps")
    else:
        model = artifact_from_text(text, name="x.mps").model
        assert [c.name for c in model.columns] == ["x"]


def test_true_where_a_number_belongs_is_refused() -> None:
    """JSON ``true`` as a parameter's value or a variable's bound is a mistake, not the number 1
    (pydantic reads it as 1.0 unless told otherwise)."""
    data = golden_json("knapsack.json")
    data["parameters"][2]["value"] = True
    with pytest.raises(ArtifactError, match="expected a number, not true"):
        read_five_element(json.dumps(data))
    data = golden_json("knapsack.json")
    data["variables"][0]["upper"] = False
    with pytest.raises(ArtifactError, match="expected a number, not false"):
        read_five_element(json.dumps(data))


def test_a_rest_body_error_is_located_as_artifact_diagnostics_are(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from agent.server import create_app
    from agent.session import SessionStore

    app = create_app(Agent(config=Config(cache="")), SessionStore(str(tmp_path / "s.sqlite")))
    with TestClient(app) as client:
        listed = client.post("/v1/chat/completions", json={"messages": ["x"]})
        solve = client.post("/v1/solve", json={"request": "x", "kind": "lp", "samples": [1]})
    assert listed.status_code == solve.status_code == 422
    assert listed.json()["error"]["message"].startswith("body.messages[0]: Input should be")
    said = solve.json()["error"]["message"].split("; body.")
    assert said[0].startswith("body.kind: unknown kind 'lp'")
    assert said[-1] == "samples: unknown field (not part of the schema)"
    assert "Value error" not in solve.text
