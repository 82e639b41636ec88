"""The routing path: spec validation, PyVRP solving, independent verification, files, repair."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from agent.agent import Agent
from agent.cli import main
from agent.errors import ArtifactError, InputError
from agent.kinds.routing import choose_backend
from agent.types import Request
from conftest import FIXTURES, agent_with, scripted
from formalizers.routing.feasibility import check_feasible
from formalizers.routing.formalizer import load_examples
from formalizers.routing.spec import parse_spec
from solvers.base import Limits, SolveResult, Status
from solvers.routing_exact import solve as solve_exact
from solvers.routing_pyvrp import solve
from solvers.routing_verify import objective_slack, verify_routes

ROUTING = FIXTURES / "routing"
W2R = ROUTING / "w2r"


def bakery() -> dict:
    """4 shops, 2 vans of capacity 10 (total demand 18): the few-shot CVRP example."""
    return next(ex for ex in load_examples() if ex.name == "cvrp_bakery").spec


def windows(late_c: float = 20.0) -> dict:
    """A depot and three clients; client "c" closes at ``late_c`` (5 units from the depot)."""
    return {
        "locations": [
            {"id": "depot", "x": 0, "y": 0},
            {"id": "a", "x": 3, "y": 0},
            {"id": "b", "x": 3, "y": 4},
            {"id": "c", "x": 0, "y": 5},
        ],
        "depots": [{"id": "depot"}],
        "clients": [
            {"id": "a", "tw_early": 0, "tw_late": 10},
            {"id": "b", "tw_early": 2, "tw_late": 30},
            {"id": "c", "tw_early": 0, "tw_late": late_c},
        ],
        "vehicle_types": [{"count": 1}],
    }


# -- the spec: bad input gets a clear error, quickly ----------------------------------------
def _with(**changes: object) -> dict:
    spec = bakery()
    spec = json.loads(json.dumps(spec))
    for key, value in changes.items():
        spec[key] = value
    return spec


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (
            _with(distance_matrix=[[0, 1], [1, 0, 2]]),
            "distance_matrix must be square",
        ),
        (
            _with(clients=[{"id": "A", "demand": [-4]}]),
            "negative demand",
        ),
        (
            _with(clients=[{"id": "A", "tw_early": 10, "tw_late": 5}]),
            "ends (5.0) before it starts (10.0)",
        ),
        (_with(clients=[{"id": "Z"}]), "location 'Z', which is not in locations"),
        (_with(vehicle_types=[{"start_depot": "A"}]), "start_depot 'A' is not a depot"),
        (_with(objective="shortest"), "objective"),
        (
            _with(vehicle_types=[{"count": 1, "max_distance_between_recharges": -5}]),
            "max_distance_between_recharges (its energy) must be a positive number; it is -5",
        ),
        (
            _with(vehicle_types=[{"recharge_depots": ["depot"]}]),
            "recharge_depots is given without max_distance_between_recharges",
        ),
        ("{not json", "not valid JSON"),
    ],
)
def test_bad_specs_are_refused_with_a_clear_message(data: object, words: str) -> None:
    with pytest.raises(ArtifactError) as e:
        parse_spec(data)
    assert words in e.value.feedback()


def test_fifty_thousand_clients_are_refused_at_once() -> None:
    data = {
        "locations": [{"id": i, "x": i % 300, "y": i // 300} for i in range(50_001)],
        "depots": [{"id": 0}],
        "clients": [{"id": i} for i in range(1, 50_001)],
        "vehicle_types": [{}],
    }
    t0 = time.perf_counter()
    with pytest.raises(ArtifactError) as e:
        parse_spec(data)
    assert time.perf_counter() - t0 < 1.0
    assert "50,000 clients" in e.value.feedback() and "at most 5,000" in e.value.feedback()
    # Through the agent: the full request is over the 2 MB request limit; a compact one (no
    # coordinates) gets past it and is refused by the spec's own limit.
    with pytest.raises(InputError, match="too large"):
        Agent(cache="").solve(Request(json.dumps(data), "big.json"))
    compact = dict(data, locations=[{"id": i} for i in range(50_001)])
    t0 = time.perf_counter()
    answer = Agent(cache="").solve(Request(json.dumps(compact, separators=(",", ":")), "big.json"))
    assert answer.status is Status.ERROR and "at most 5,000" in answer.error
    assert time.perf_counter() - t0 < 5.0


def test_unsupported_objective_says_so() -> None:
    data = {
        "locations": [{"id": i, "x": i, "y": i % 3} for i in range(14)],
        "depots": [{"id": 0}],
        "clients": [{"id": i} for i in range(1, 14)],
        "vehicle_types": [{"count": 2}],
        "objective": "longest_route",
    }
    with pytest.raises(ArtifactError) as e:
        choose_backend(parse_spec(data))
    assert e.value.kind == "unsupported" and "longest route" in e.value.feedback()
    assert "PyVRP cannot express the longest route objective" in e.value.feedback()
    assert "13 clients (at most 12)" in e.value.feedback()


# -- solve and verify -----------------------------------------------------------------------
def test_cvrp_solves_and_verifies() -> None:
    spec = parse_spec(bakery())
    result = solve(spec, Limits(time_s=5))
    assert result.status is Status.FEASIBLE and result.routes is not None
    check = verify_routes(spec, result)
    assert check.ok, check.message
    # PyVRP's own cost, on distances scaled to integers, within the rounding it allows.
    slack = objective_slack(spec, result.routes)
    assert 0 < slack < 0.01
    assert check.objective == pytest.approx(result.objective, abs=slack)
    assert len(result.routes) == 2


def _tampered(result: SolveResult, routes: tuple, objective: float | None = None) -> SolveResult:
    return SolveResult(
        Status.FEASIBLE,
        "test",
        objective=result.objective if objective is None else objective,
        routes=routes,
    )


def test_verifier_catches_overload_missing_client_and_wrong_cost() -> None:
    spec = parse_spec(bakery())
    result = solve(spec, Limits(time_s=5))
    assert result.routes is not None
    r1, r2 = result.routes
    merged = dict(r1, stops=r1["stops"] + r2["stops"], visits=r1["visits"] + r2["visits"])
    check = verify_routes(spec, _tampered(result, (merged,)))
    assert not check.ok and "more than its capacity" in check.message
    check = verify_routes(spec, _tampered(result, (r1,)))
    assert not check.ok and "visited 0 times" in check.message
    check = verify_routes(spec, _tampered(result, result.routes, result.objective - 1))  # type: ignore[operator]
    assert not check.ok and "differs from the recomputed" in check.message


def test_time_windows_hold_in_the_spec_units() -> None:
    spec = parse_spec(windows())
    result = solve(spec, Limits(time_s=5))
    check = verify_routes(spec, result)
    assert check.ok, check.message
    late = dict(
        result.routes[0],  # type: ignore[index]
        stops=[["client", "c"], ["client", "b"], ["client", "a"]],
        visits=["c", "b", "a"],
    )
    check = verify_routes(spec, _tampered(result, (late,)))
    assert not check.ok and "reaches client 'a'" in check.message
    assert "after its time window closes" in check.message


def test_every_few_shot_example_solves_and_verifies() -> None:
    for ex in load_examples():
        spec = parse_spec(ex.spec)
        result = solve(spec, Limits(time_s=5))
        assert verify_routes(spec, result).ok, ex.name


# -- Words to Routes reference specs ---------------------------------------------------------
REFERENCE = json.loads((W2R / "optimal_values.json").read_text())
BELIEVED_WRONG = {
    # G-TSPM lets cities be revisited; the references are those of the plain asymmetric TSP. Our
    # specs use shortest-path distances: 3-2-7-5-2-10-1-6-4-9-8-3 costs 21 in the given matrix.
    "1-tsp_G-TSPM_10": 21.0,
    # Four robots with revisits: {3-1-6-7-3, 3-2-4-8-9-3, 3-5-3, 3-10-3} (closed walks), longest 9.
    "4-tsp_G-TSPM_10": 9.0,
    # Min-max over four Euclidean tours: brute force over all 4**9 assignments gives 11.4049
    # ({1, 10}, {2, 4, 6, 7}, {5, 9}, {8}), above the reference 11.09.
    "4-tsp_A-TSP_10": 11.404918,
    # The same cities with a visit order: it cannot beat the task without one (11.4049 above).
    "4-tsp_D-OTSP_10": 11.404918,
    # The same optimum meets every window: {3-1-3}, {3-4-6-8-3}, {3-9-5-2-3}, {3-10-7-3} (waiting
    # at 10 until 7); the reference 12.18 seems to count something else (waiting time?).
    "4-tsp_F-TSPTW_10": 11.404918,
    # Red {4, 1}, yellow {6, 10, 2}, green {9, 5}, blue {8, 7}: every city served by a robot of
    # one of its colours; the yellow tour 3-6-10-2-3 is the longest, 13.83 (reference 16.13).
    "4-tsp_K-CTSP_10": 13.830952,
    # 3-5-2-3, 3-8-3, 3-6-4-9-3 and 3-7-10-1 (ending at depot 1): the longest is 3-8-3, 8.2462;
    # any robot that visits city 8 travels at least that far, so 9.16 cannot be the optimum.
    "4-tsp_H-TSPMDNC_10": 8.246211,
    # Buying 30 units: 3-4-2-1-3 travels 136.21 (10 x 13.62) and pays 40 + 75 + 40 = 155; every
    # other set of cities with 30 units costs more (4+5: 331.2, 2+5: 355). The reference is 50 less.
    "1-tsp_E-TPP_05": 291.212328,
    # Energy 9, recharging at depots 1 and 3, ending at any depot: 3-2-5-3-4-1 travels 15 (8 from
    # depot 3 back to depot 3, then 1 + 6). Read as a closed tour back to city 3 the optimum is 20
    # (3-2-5-3-4-1-3). No walk from 3 that keeps the energy limit and ends at a depot costs 20.6
    # to 21.0 (exhaustive search); 20.79 is 3-4-1-2-5-1, which runs 13.79 on one charge.
    "1-tsp_I-TSPMDC_05": 15.0,
    # Energy 11, depots 1, 3, 7: 3-6-8-3-4-9-3-2-5-7-10-1 travels 26.7548. The reference 27.04 is
    # the optimum of the closed reading (back to city 3): 3-2-5-7-1-10-8-6-3-4-9-3, 27.0393.
    "1-tsp_I-TSPMDC_10": 26.754796,
    # {3-2-5-3}, {3-8-3}, {3-6-4-9-3}, {3-7-10-1}: the longest is 3-8-3, 8.2462, and any robot that
    # visits city 8 travels at least that (4.12 from the start 3 and 4.12 to the nearest depot).
    # Other readings do not give 9.82 either: back to city 3, 11.4049; ending at a depot other than
    # the start, 9.5083.
    "4-tsp_I-TSPMDC_10": 8.246211,
}
"""Tasks whose reference value we do not reach because we believe it is wrong: our optimum."""


@pytest.mark.parametrize("path", sorted(W2R.glob("?-tsp_*.json")), ids=lambda p: p.stem)
def test_words_to_routes_reference_spec_reaches_the_optimum(path: Path) -> None:
    fleet, task, size = path.stem.split("_", 2)
    best = REFERENCE[fleet][f"{size}_points"][task]
    spec = parse_spec(json.loads(path.read_text()))
    check_feasible(spec)
    if choose_backend(spec).backend == "routing-exact":
        result = solve_exact(spec, Limits(time_s=20))
    else:
        result = solve(spec, Limits(time_s=5), no_improvement=5_000)
    check = verify_routes(spec, result)
    assert check.ok, check.message
    assert result.objective is not None
    if path.stem in BELIEVED_WRONG:
        assert result.objective == pytest.approx(BELIEVED_WRONG[path.stem], abs=1e-4)
    else:
        assert round(best / result.objective, 2) == 1.0  # the paper's efficiency


def test_every_words_to_routes_task_has_a_reference_spec() -> None:
    tasks = {
        f"{fleet}_{task}_{size[:2]}"
        for fleet in ("1-tsp", "4-tsp")
        for size, values in REFERENCE[fleet].items()
        for task in values
    }
    assert len(tasks) == 31
    assert {p.stem for p in W2R.glob("?-tsp_*.json")} == tasks


# -- energy limits with recharging -----------------------------------------------------------
def recharging(energy: float = 9.0) -> dict:
    """A robot from depot 3 with ``energy`` between recharges at depots 1 and 3 (both to be
    visited), ending at depot 1: the 1-tsp I-TSPMDC cities with a fixed end."""
    return {
        "locations": [
            {"id": 1, "x": 9, "y": 4},
            {"id": 2, "x": 4, "y": 6},
            {"id": 3, "x": 4, "y": 4},
            {"id": 4, "x": 3, "y": 4},
            {"id": 5, "x": 4, "y": 8},
        ],
        "depots": [{"id": 3, "required": True}, {"id": 1, "required": True}],
        "clients": [{"id": 2}, {"id": 4}, {"id": 5}],
        "vehicle_types": [
            {"count": 1, "start_depot": 3, "end_depot": 1, "max_distance_between_recharges": energy}
        ],
    }


def test_energy_routes_recharge_at_depots_and_verify() -> None:
    spec = parse_spec(recharging())
    check_feasible(spec)
    assert choose_backend(spec).backend == "routing-exact"
    result = solve_exact(spec, Limits(time_s=10))
    assert result.status is Status.OPTIMAL and result.routes is not None
    assert result.objective == pytest.approx(15.0)  # 3-2-5-3 (8), 3-4-1 (7)
    (route,) = result.routes
    assert ["depot", 3] in route["stops"] and route["visits"] in ([2, 5, 4], [5, 2, 4])
    assert verify_routes(spec, result).ok
    # Without the recharge at 3 the robot runs 11.24 > 9 on one charge.
    straight = dict(route, stops=[["client", 2], ["client", 5], ["client", 4]])
    check = verify_routes(spec, _tampered(result, (straight,), 2 + 2 + 4.123106 + 6))
    assert not check.ok
    assert "travels 14.1231 from 3 to 1 without recharging, over its energy 9" in check.message
    # Depot 1 must be visited: a robot ending at 3 instead misses it.
    data = recharging(energy=20)
    data["vehicle_types"][0]["end_depot"] = 3
    spec3 = parse_spec(data)
    result3 = solve_exact(spec3, Limits(time_s=10))
    assert result3.routes is not None and verify_routes(spec3, result3).ok
    assert any(s == ["depot", 1] for s in result3.routes[0]["stops"])
    skip = dict(
        result3.routes[0], stops=[s for s in result3.routes[0]["stops"] if s[0] == "client"]
    )
    check = verify_routes(spec3, _tampered(result3, (skip,), 0.0))
    assert not check.ok and "required depot 1 is visited by no route" in check.message


def test_energy_too_small_to_reach_a_city_is_infeasible_with_a_reason() -> None:
    spec = parse_spec(recharging(energy=3))
    with pytest.raises(ArtifactError) as e:
        check_feasible(spec)
    feedback = e.value.feedback()
    assert e.value.kind == "infeasible" and "client 5" in feedback
    assert "no vehicle can reach it and get back to a recharge depot on one charge" in feedback
    # Every city is in reach, but depot 1 is 5 from depot 3 and more from the cities: the exact
    # solver proves that no route visits it on 4.9 units of energy.
    data = recharging(energy=4.9)
    data["clients"] = [{"id": 2}, {"id": 4}]
    data["vehicle_types"][0]["end_depot"] = 3
    spec = parse_spec(data)
    check_feasible(spec)
    result = solve_exact(spec, Limits(time_s=10))
    assert result.status is Status.INFEASIBLE and "energy limit" in result.message


def test_energy_request_goes_to_the_exact_solver_and_says_why() -> None:
    text = (W2R / "1-tsp_I-TSPMDC_10.json").read_text()
    answer = Agent(cache="").solve(Request(text, "recharging.json"))
    assert answer.status is Status.OPTIMAL and answer.verified and answer.solver == "exact-dp"
    assert "cannot express an energy limit with recharging at depots" in answer.explanation
    # PyVRP itself, asked directly, refuses by its declaration and names the features.
    result = solve(parse_spec(json.loads(text)), Limits(time_s=1))
    assert result.status is Status.UNSUPPORTED and result.routes is None
    assert "pyvrp does not support" in result.message
    assert "an energy limit with recharging at depots" in result.message


def test_bottleneck_with_a_distance_limit_keeps_the_limit() -> None:
    # The tours of least longest leg (4.24) all travel 14.56 or more; under 14.1 the longest
    # leg must be 5.39.
    data = {
        "locations": [
            {"id": i, "x": x, "y": y}
            for i, (x, y) in enumerate([(2, 4), (3, 4), (5, 3), (0, 1), (4, 5)])
        ],
        "depots": [{"id": 0}],
        "clients": [{"id": i} for i in range(1, 5)],
        "vehicle_types": [{"count": 1, "max_distance": 14.1}],
        "objective": "longest_leg",
    }
    spec = parse_spec(data)
    result = solve_exact(spec, Limits(time_s=10))
    assert verify_routes(spec, result).ok
    assert result.objective == pytest.approx(29**0.5)


# -- formal files and the command line -------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "best", "n_routes", "gap"),
    [
        ("berlin52.tsp", 7542, 1, 0.01),
        ("X-n101-k25.vrp", 27591, None, 0.04),  # 2 s on a shared core: a few percent above BKS
        ("C101.txt", 827.3, 10, 0.01),
    ],
)
def test_cli_solves_files_in_their_own_convention(
    name: str,
    best: float,
    n_routes: int | None,
    gap: float,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    plot = tmp_path / "routes.png"
    code = main(["solve", str(ROUTING / name), "--json", "--time-limit", "2", "--plot", str(plot)])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["kind"] == "routing" and out["status"] == "FEASIBLE" and out["verified"] is True
    assert best <= out["objective"] <= best * (1 + gap)
    assert plot.stat().st_size > 10_000
    visited = sorted(i for r in out["routes"] for i in r)
    depot = 0 if name.endswith(".txt") else 1
    assert depot not in visited and len(visited) == len(set(visited))
    if n_routes is not None:
        assert len(out["routes"]) == n_routes


def test_routing_json_is_not_taken_for_a_milp_model() -> None:
    answer = Agent(cache="").solve(Request(json.dumps(bakery()), "bakery.json"))
    assert answer.kind == "routing" and answer.verified, answer.error


# -- repair with a scripted model ------------------------------------------------------------
def test_client_outside_every_window_is_repaired() -> None:
    client = scripted(windows(late_c=3.0), windows(late_c=20.0))
    answer = agent_with(client).solve(Request("visit a, b and c from the depot", kind="routing"))
    assert answer.status is Status.FEASIBLE and answer.verified
    assert answer.attempts == 2
    first = answer.trace[0]
    assert first.outcome == "infeasible"
    assert "client 'c'" in first.feedback and "closes before any vehicle" in first.feedback


def test_capacity_too_small_is_reported_by_client_name() -> None:
    broken = bakery()
    broken = json.loads(json.dumps(broken))
    broken["clients"][3] = {"id": "D", "demand": [16]}
    client = scripted(broken, bakery())
    answer = agent_with(client).solve(Request("deliver bread to the shops", kind="routing"))
    assert answer.verified and answer.attempts == 2
    assert "client 'D'" in answer.trace[0].feedback
    assert "no vehicle carries that much" in answer.trace[0].feedback


def test_unparseable_reply_then_a_spec() -> None:
    client = scripted("I think the route is A, B, C.", bakery())
    answer = agent_with(client).solve(Request("deliver bread to the shops", kind="routing"))
    assert answer.verified and answer.trace[0].outcome == "parse"


def test_min_max_request_goes_to_the_exact_solver_and_says_why() -> None:
    text = (W2R / "4-tsp_J-KTSP_10.json").read_text()
    answer = Agent(cache="").solve(Request(text, "four_robots.json"))
    assert answer.status is Status.OPTIMAL and answer.verified and answer.solver == "exact-dp"
    assert "cannot express the longest route objective" in answer.explanation
    assert len(answer.routes or []) == 4


def test_formalizer_prompt_has_the_closest_examples() -> None:
    from formalizers.routing.formalizer import RoutingFormalizer

    f = RoutingFormalizer(scripted(bakery()), n_examples=1)
    msgs = f.messages("A robot visits each city within its time window and returns.")
    assert "routing instance spec" in msgs[0]["content"]
    assert '"tw_late"' in msgs[2]["content"]  # the TSPTW example was chosen
    artifact = f.formalize("deliver bread")
    assert artifact.kind == "routing" and artifact.provenance.prompt_version


def test_solomon_text_is_recognised_without_a_file_name() -> None:
    from agent.router import route

    text = (ROUTING / "C101.txt").read_text()
    r = route(Request(text))
    assert r.kind == "routing" and r.formal


def test_the_end_depots_window_closes_routes() -> None:
    """Found by review: the subset search ignored the end depot's window (the verifier did not)."""
    spec = parse_spec(
        {
            "locations": [{"id": i} for i in range(1, 6)],
            "distance_matrix": [
                [0, 7, 1, 7, 4],
                [7, 0, 8, 6, 3],
                [7, 5, 0, 6, 8],
                [3, 8, 8, 0, 3],
                [5, 7, 4, 3, 0],
            ],
            "depots": [{"id": 1, "tw_late": 19}],
            "clients": [{"id": 2, "tw_early": 13, "tw_late": 28}, {"id": 3}, {"id": 4}, {"id": 5}],
            "vehicle_types": [{"count": 2, "start_depot": 1, "max_distance": 38}],
            "objective": "longest_route",
        }
    )
    # Service at 2 starts at 13 at the earliest, and every way back to depot 1 is 7 or more
    # (2-1 is 7, 2-5-1 is 8...): 20 > 19, so no route can serve client 2.
    assert solve_exact(spec, Limits(time_s=10)).status is Status.INFEASIBLE
    data = spec.to_json()
    data["depots"][0]["tw_late"] = 20
    spec20 = parse_spec(data)
    result = solve_exact(spec20, Limits(time_s=10))
    assert result.status is Status.OPTIMAL
    check = verify_routes(spec20, result)
    assert check.ok, check.message


def test_energy_reach_uses_shortest_paths() -> None:
    """Found by review: D-x-c-D costs 3 on one charge of 5, though the direct leg D-c is 10."""
    spec = parse_spec(
        {
            "locations": [{"id": "D"}, {"id": "x"}, {"id": "c"}],
            "distance_matrix": [[0, 1, 10], [1, 0, 1], [1, 1, 0]],
            "depots": [{"id": "D"}],
            "clients": [{"id": "x"}, {"id": "c"}],
            "vehicle_types": [{"count": 1, "max_distance_between_recharges": 5}],
        }
    )
    check_feasible(spec)
    result = solve_exact(spec, Limits(time_s=10))
    assert result.status is Status.OPTIMAL and result.objective == pytest.approx(3.0)
    assert verify_routes(spec, result).ok


def test_an_end_only_depot_is_no_recharge_point_by_default() -> None:
    """The 4-robot I-TSPMDC spec without its recharge_depots: the dummy "end" (distance 0 from
    everywhere) must not recharge the robots on the way."""
    data = json.loads((W2R / "4-tsp_I-TSPMDC_10.json").read_text())
    for v in data["vehicle_types"]:
        v.pop("recharge_depots", None)
    spec = parse_spec(data)
    assert "end" not in spec.recharges_of(spec.vehicle_types[0])
    result = solve_exact(spec, Limits(time_s=30))
    assert result.objective == pytest.approx(BELIEVED_WRONG["4-tsp_I-TSPMDC_10"], abs=1e-4)
