"""Routing answers are trusted only after an independent check: each backend reports the
objective its own solver computed, the verifier recomputes it from the routes, and everything a
file says (route limits, service times) is either enforced by solver and verifier alike or
refused. Time limits cover reading, building, solving and checking."""

from __future__ import annotations

import json
import math
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agent import Agent
from agent.errors import InputError
from agent.kinds.base import Options
from agent.kinds.routing import RoutingKind, verify_reserve
from formalizers.offline.routing_files import read_routing
from formalizers.routing import measure
from formalizers.routing.spec import RoutingSpec, parse_spec
from solvers import routing_exact, routing_pyvrp, routing_verify
from solvers.base import Limits, SolveResult, Status
from solvers.routing_verify import objective_slack, verify_routes

ROOT = Path(__file__).resolve().parents[2]
CVRPLIB = ROOT / "tests" / "fixtures" / "routing" / "cvrplib"


def vrp(*lines: str) -> str:
    """A VRPLIB text from its lines (EOF added)."""
    return "\n".join([*(textwrap.dedent(x).strip() for x in lines), "EOF", ""])


def route_length(spec: RoutingSpec, r: dict[str, Any]) -> float:
    """A route's length straight from the coordinates (the test's own arithmetic)."""
    xy = {loc.id: (loc.x, loc.y) for loc in spec.locations}
    ids = [r["start"], *(s[1] for s in r["stops"]), r["end"]]
    total = 0.0
    for a, b in zip(ids, ids[1:], strict=False):
        total += math.floor(math.dist(xy[a], xy[b]) + 0.5)  # TSPLIB nint
    return total


# -- fixtures: tiny named instances ------------------------------------------------------------
def star(n: int = 6, radius: float = 10.0, demand: float = 1.0, capacity: float = 100.0) -> dict:
    """``n`` clients on a circle around the depot, unit demands: one route serves all."""
    locs = [{"id": 0, "x": 0.0, "y": 0.0}]
    locs += [
        {
            "id": i,
            "x": radius * math.cos(2 * math.pi * i / n),
            "y": radius * math.sin(2 * math.pi * i / n),
        }
        for i in range(1, n + 1)
    ]
    return {
        "locations": locs,
        "depots": [{"id": 0}],
        "clients": [{"id": i, "demand": [demand]} for i in range(1, n + 1)],
        "vehicle_types": [{"capacity": [capacity]}],
    }


def whole(data: dict) -> dict:
    """``data`` with TSPLIB's nearest-integer distances (scale 1: no rounding slack)."""
    return {**data, "rounding": "nearest"}


# -- 1. each backend reports its own objective -------------------------------------------------
def test_pyvrp_reports_its_own_integer_cost_not_the_verifiers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """At precision 0 PyVRP sees every distance rounded to an integer: what it reports is that
    integer cost, which differs from the exact length the verifier recomputes by no more than
    the rounding. The backends never call the cost function the verifier recomputes with (the
    routing language's measure)."""

    def forbidden(*_: Any) -> float:
        raise AssertionError("a backend used the verifier's cost function")

    monkeypatch.setattr(routing_verify, "route_objective", forbidden)
    monkeypatch.setattr(measure, "route_objective", forbidden)
    monkeypatch.setattr(measure, "route_stats", forbidden)
    spec = parse_spec({**star(7, radius=10.3), "precision": 0})
    result = routing_pyvrp.solve(spec, Limits(time_s=1))
    assert result.status is Status.FEASIBLE and result.objective is not None
    assert float(result.objective).is_integer()
    monkeypatch.undo()
    check = verify_routes(spec, result)
    assert check.ok, check.message
    assert check.objective is not None and check.objective != result.objective
    assert abs(check.objective - result.objective) <= objective_slack(spec, result.routes or ())


def test_the_exact_solver_reports_its_own_value_with_fixed_costs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The exact solver's value is its dynamic program's, fixed vehicle costs included (it
    used to leave them out of the search and let the verifier's function add them)."""
    monkeypatch.setattr(routing_verify, "route_objective", lambda *_: math.nan)
    monkeypatch.setattr(measure, "route_objective", lambda *_: math.nan)
    data = whole(star(4, capacity=2))
    data["vehicle_types"] = [{"capacity": [2], "count": 3, "fixed_cost": 100}]
    data["objective"] = "total_distance"
    data["sequences"] = [[1, 2]]  # only the exact solver takes visit orders
    spec = parse_spec(data)
    result = routing_exact.solve(spec, Limits(time_s=10))
    assert result.status is Status.OPTIMAL
    monkeypatch.undo()
    check = verify_routes(spec, result)
    assert check.ok, check.message
    assert result.objective == check.objective
    assert len(result.routes or ()) == 2 and result.objective >= 200  # two vans, paid twice


@pytest.mark.parametrize("delta", [1.0, -1.0, 0.5, 1e-3])
def test_a_claim_off_by_a_unit_on_whole_distances_fails(delta: float) -> None:
    spec = parse_spec(whole(star(6)))
    good = routing_pyvrp.solve(spec, Limits(time_s=1))
    assert objective_slack(spec, good.routes or ()) == 0.0
    assert verify_routes(spec, good).ok
    lie = SolveResult(Status.FEASIBLE, "liar", objective=good.objective + delta, routes=good.routes)
    check = verify_routes(spec, lie)
    assert not check.ok and check.violations[0].name == "objective"
    assert "differs from the recomputed" in check.message


@pytest.mark.parametrize("factor", [0.0, 0.99, 1.01, -1.0])
def test_a_claim_beyond_the_scaling_slack_fails(factor: float) -> None:
    spec = parse_spec(star(9, radius=7.77))  # rounding none, scale 1000
    good = routing_pyvrp.solve(spec, Limits(time_s=1))
    lie = SolveResult(
        Status.FEASIBLE, "liar", objective=good.objective * factor, routes=good.routes
    )
    assert not verify_routes(spec, lie).ok


def test_a_result_without_an_objective_is_not_verified() -> None:
    spec = parse_spec(whole(star(5)))
    good = routing_pyvrp.solve(spec, Limits(time_s=1))
    check = verify_routes(spec, SolveResult(Status.FEASIBLE, "mute", routes=good.routes))
    assert not check.ok and "reported no objective" in check.message


def test_a_solver_that_misreports_its_cost_gives_an_unverified_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """End to end: PyVRP's result claims one more than its routes cost; the answer through the
    agent is not verified."""
    import pyvrp

    real = pyvrp.Result.cost
    monkeypatch.setattr(pyvrp.Result, "cost", lambda self: real(self) + 1)
    path = tmp_path / "star.json"
    path.write_text(json.dumps(whole(star(6))))
    answer = Agent(time_limit=2).solve_file(path)
    assert answer.verified is False
    assert answer.verification is not None and not answer.verification.ok
    assert "differs from the recomputed" in answer.verification.message


# -- 1b. routes that lie about themselves --------------------------------------------------------
def _good(spec: RoutingSpec) -> SolveResult:
    result = routing_pyvrp.solve(spec, Limits(time_s=1))
    assert result.routes is not None and verify_routes(spec, result).ok
    return result


def _with(result: SolveResult, routes: Any, objective: float | None = None) -> SolveResult:
    return SolveResult(
        Status.FEASIBLE,
        "liar",
        objective=result.objective if objective is None else objective,
        routes=routes,
    )


ATTACKS = {
    "a client missing": lambda r: [dict(r[0], stops=r[0]["stops"][1:], visits=r[0]["visits"][1:])],
    "a client twice": lambda r: [
        dict(
            r[0],
            stops=r[0]["stops"] + r[0]["stops"][:1],
            visits=r[0]["visits"] + r[0]["visits"][:1],
        )
    ],
    "an unknown client": lambda r: [
        dict(r[0], stops=[*r[0]["stops"], ["client", 99]], visits=[*r[0]["visits"], 99])
    ],
    "a stop of no known kind": lambda r: [dict(r[0], stops=[*r[0]["stops"], ["teleport", 1]])],
    "a stop that is not a pair": lambda r: [dict(r[0], stops=[*r[0]["stops"], "client 1"])],
    "an unknown vehicle type": lambda r: [dict(r[0], vehicle_type=7)],
    "a vehicle type that is a bool": lambda r: [dict(r[0], vehicle_type=False)],
    "a start that is no depot": lambda r: [dict(r[0], start=3)],
    "an end that is not hashable": lambda r: [dict(r[0], end=[0])],
    "visits that are not the stops": lambda r: [dict(r[0], visits=list(reversed(r[0]["visits"])))],
    "a route that is not a mapping": lambda r: ["0-1-2-0"],
    "routes that are not a list": lambda r: "every client, trust me",
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_routes_that_lie_about_themselves_are_refused_not_raised(attack: str) -> None:
    spec = parse_spec(whole(star(5)))
    good = _good(spec)
    routes = ATTACKS[attack](list(good.routes or ()))
    check = verify_routes(spec, _with(good, routes))
    assert not check.ok and check.violations


def test_a_capacity_overrun_is_caught_even_with_the_right_objective() -> None:
    spec = parse_spec(whole(star(6, demand=10, capacity=30)))
    good = _good(spec)
    assert len(good.routes or ()) == 2
    r1, r2 = good.routes  # type: ignore[misc]
    merged = dict(r1, stops=r1["stops"] + r2["stops"], visits=r1["visits"] + r2["visits"])
    tampered = _with(good, [merged])
    honest = verify_routes(spec, tampered).objective  # the merged route's true cost
    check = verify_routes(spec, _with(good, [merged], honest))
    assert not check.ok and "more than its capacity" in check.message
    assert not any(v.name == "objective" for v in check.violations)


def test_more_routes_than_vehicles_are_caught() -> None:
    data = whole(star(6, demand=10, capacity=30))
    data["vehicle_types"][0]["count"] = 2
    spec = parse_spec(data)
    good = _good(spec)
    split = [dict(r, stops=[s], visits=[s[1]]) for r in good.routes or () for s in r["stops"]]
    check = verify_routes(
        spec, _with(good, split, verify_routes(spec, _with(good, split)).objective)
    )
    assert not check.ok and "of which there are 2" in check.message


# -- 2. VRPLIB route limits and service times ----------------------------------------------------
HEADER = """
    NAME : t
    TYPE : CVRP
    DIMENSION : {n}
    EDGE_WEIGHT_TYPE : EUC_2D
    CAPACITY : {capacity}
"""


def line_file(extra: str = "", n: int = 7, capacity: int = 100, **sections: str) -> str:
    """Clients on a line at 10, 20, ... from the depot at 0: one route would be long."""
    coords = "\n".join(f"{i} {(i - 1) * 10} 0" for i in range(1, n + 1))
    demand = "\n".join(f"{i} {0 if i == 1 else 1}" for i in range(1, n + 1))
    return vrp(
        HEADER.format(n=n, capacity=capacity) + extra,
        "NODE_COORD_SECTION\n" + coords,
        "DEMAND_SECTION\n" + demand,
        *sections.values(),
        "DEPOT_SECTION\n1\n-1",
    )


def test_a_scalar_service_time_reads_and_counts_against_the_distance_limit() -> None:
    """CVRPLIB: a route's length plus its clients' service times is at most DISTANCE."""
    _, spec = read_routing(line_file("DISTANCE : 130\nSERVICE_TIME : 10"), "t.vrp")
    assert {c.service for c in spec.clients} == {10.0}
    assert spec.vehicle_types[0].max_duration == 130
    result = routing_pyvrp.solve(spec, Limits(time_s=2))
    check = verify_routes(spec, result)
    assert result.status is Status.FEASIBLE and check.ok, check.message
    for r in result.routes or ():
        assert route_length(spec, r) + 10 * len(r["stops"]) <= 130
    # Without the limit one route serves everyone (length 120, plus 60 of service): over.
    _, free = read_routing(line_file(), "t.vrp")
    loose = routing_pyvrp.solve(free, Limits(time_s=1))
    assert len(loose.routes or ()) == 1
    check = verify_routes(spec, loose)
    assert not check.ok and "over 130" in check.message


def test_a_service_time_section_is_read_per_node() -> None:
    service = "SERVICE_TIME_SECTION\n" + "\n".join(f"{i} {0 if i == 1 else i}" for i in range(1, 8))
    _, spec = read_routing(line_file("DISTANCE : 200", service=service), "t.vrp")
    assert [c.service for c in spec.clients] == [2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    result = routing_pyvrp.solve(spec, Limits(time_s=1))
    assert verify_routes(spec, result).ok
    for r in result.routes or ():
        assert route_length(spec, r) + sum(s[1] for s in r["stops"]) <= 200


def test_a_distance_limit_without_service_is_a_length_limit() -> None:
    # Clients both sides of the depot (at 35): one route is 100 long, one per side 50 at most.
    text = line_file("DISTANCE : 90").replace(
        "NODE_COORD_SECTION\n1 0 0", "NODE_COORD_SECTION\n1 35 0"
    )
    _, spec = read_routing(text, "t.vrp")
    assert spec.vehicle_types[0].max_distance == 90
    assert spec.vehicle_types[0].max_duration is None
    result = routing_pyvrp.solve(spec, Limits(time_s=1))
    assert verify_routes(spec, result).ok
    assert all(route_length(spec, r) <= 90 for r in result.routes or ())
    assert len(result.routes or ()) >= 2


@pytest.mark.parametrize(
    ("extra", "sections", "words"),
    [
        ("VEHICLE : 3", {}, "VEHICLE is not something this reader enforces"),
        ("CAPACITY_VOL : 3", {}, "CAPACITY_VOL is not something"),
        (
            "",
            {"p": "PICKUP_SECTION\n" + "\n".join(f"{i} 0" for i in range(1, 8))},
            "PICKUP_SECTION",
        ),
        (
            "",
            {"r": "RELEASE_TIME_SECTION\n" + "\n".join(f"{i} 0" for i in range(1, 8))},
            "RELEASE_TIME",
        ),
        ("DISTANCE : -5", {}, "DISTANCE (the route length limit) must be positive"),
        ("SERVICE_TIME : -1", {}, "SERVICE_TIME must be zero or more"),
        ("SERVICE_TIME : lots", {}, "SERVICE_TIME must be a finite number"),
        ("DISTANCE : inf", {}, "DISTANCE must be a finite number"),
    ],
)
def test_what_is_read_but_not_enforced_is_refused_by_name(
    extra: str, sections: dict[str, str], words: str
) -> None:
    with pytest.raises(InputError) as e:
        read_routing(line_file(extra, **sections), "t.vrp")
    assert words in str(e.value) and "\n" not in str(e.value)


def test_an_open_or_other_problem_type_is_refused() -> None:
    text = line_file().replace("TYPE : CVRP", "TYPE : OVRP")
    with pytest.raises(InputError, match="TYPE OVRP is not supported"):
        read_routing(text, "t.vrp")


def test_a_second_depot_or_a_depot_demand_is_refused() -> None:
    text = line_file().replace("DEPOT_SECTION\n1\n-1", "DEPOT_SECTION\n1\n2\n-1")
    with pytest.raises(InputError, match="names 2 depots"):
        read_routing(text, "t.vrp")
    text = line_file().replace("DEMAND_SECTION\n1 0", "DEMAND_SECTION\n1 4")
    with pytest.raises(InputError, match="gives the depot"):
        read_routing(text, "t.vrp")


def test_distance_with_windows_and_service_is_refused_and_the_depot_window_is_read() -> None:
    windows = "TIME_WINDOW_SECTION\n" + "\n".join(f"{i} 0 1000" for i in range(1, 8))
    service = "SERVICE_TIME_SECTION\n" + "\n".join(f"{i} {0 if i == 1 else 5}" for i in range(1, 8))
    with pytest.raises(InputError, match="may also wait"):
        read_routing(line_file("DISTANCE : 100", tw=windows, service=service), "t.vrp")
    horizon = windows.replace("1 0 1000", "1 0 500", 1)
    _, spec = read_routing(line_file(tw=horizon, service=service), "t.vrp")
    assert spec.depots[0].tw_late == 500  # it used to be dropped


# -- 2b. GEO and ATT distances -------------------------------------------------------------------
BURMA14 = """
    1 16.47 96.10
    2 16.47 94.44
    3 20.09 92.54
    4 22.39 93.37
    5 25.23 97.24
    6 22.00 96.05
    7 20.47 97.02
    8 17.20 96.29
    9 16.30 97.38
    10 14.05 98.12
    11 16.53 97.38
    12 21.52 95.59
    13 19.41 97.13
    14 20.09 94.55
"""
"""TSPLIB's burma14 (GEO), optimal tour 3323."""

ULYSSES16 = """
    1 38.24 20.42
    2 39.57 26.15
    3 40.56 25.32
    4 36.26 23.12
    5 33.48 10.54
    6 37.56 12.19
    7 38.42 13.11
    8 37.52 20.44
    9 41.23 9.10
    10 41.17 13.05
    11 36.08 -5.21
    12 38.47 15.13
    13 38.15 15.35
    14 37.51 15.17
    15 35.49 14.32
    16 39.36 19.56
"""
"""TSPLIB's ulysses16 (GEO, a negative longitude), optimal tour 6859."""


@pytest.mark.parametrize(("coords", "best"), [(BURMA14, 3323), (ULYSSES16, 6859)])
def test_geo_instances_reach_their_published_optimum(coords: str, best: int) -> None:
    n = len(textwrap.dedent(coords).strip().splitlines())
    text = vrp(
        f"NAME : g\nTYPE : TSP\nDIMENSION : {n}\nEDGE_WEIGHT_TYPE : GEO\nEDGE_WEIGHT_FORMAT : FUNCTION",
        "NODE_COORD_SECTION\n" + textwrap.dedent(coords).strip(),
    )
    _, spec = read_routing(text, "g.tsp")
    result = routing_pyvrp.solve(spec, Limits(time_s=2))
    assert verify_routes(spec, result).ok
    assert result.objective == best


def test_att_distances_follow_tsplib() -> None:
    """r = sqrt((dx² + dy²) / 10), rounded to nearest and up by one where that fell short."""
    text = vrp(
        "NAME : a\nTYPE : TSP\nDIMENSION : 4\nEDGE_WEIGHT_TYPE : ATT",
        "NODE_COORD_SECTION\n1 0 0\n2 10 0\n3 0 100\n4 3 4",
    )
    _, spec = read_routing(text, "a.tsp")
    d = spec.distances
    assert d[0, 1] == 4  # r = 3.162: nint 3 < r, so 4
    assert d[0, 2] == 32  # r = 31.62: nint 32
    assert d[0, 3] == 2  # r = 1.58: nint 2
    assert np.array_equal(d, d.T) and not d.diagonal().any()


# -- 3. the limit covers reading, building and checking -----------------------------------------
def test_the_solver_stops_by_its_deadline_when_reading_took_time() -> None:
    """The kind counts the time limit from when it read the file: time spent before the solver
    starts is taken from the solver, not added to the wall time."""
    spec = parse_spec(star(40))
    spec._clock = time.perf_counter() - 1.5  # reading took 1.5 s of a 2 s limit
    t0 = time.perf_counter()
    result = RoutingKind().solve(spec, Options(Limits(time_s=2)))
    assert time.perf_counter() - t0 < 0.5 + 0.2
    assert result.status in (Status.FEASIBLE, Status.TIMEOUT)
    spec._clock = time.perf_counter() - 5  # nothing left at all
    result = RoutingKind().solve(spec, Options(Limits(time_s=2)))
    assert result.status is Status.TIMEOUT and result.routes is None
    assert "limit" in result.message


def test_a_limit_too_short_to_build_is_a_timeout_not_an_overrun() -> None:
    rng = np.random.default_rng(3)
    data = whole(star(1))
    data["locations"] = [
        {"id": i, "x": float(x), "y": float(y)}
        for i, (x, y) in enumerate(rng.integers(0, 10_000, (1501, 2)))
    ]
    data["clients"] = [{"id": i, "demand": [1]} for i in range(1, 1501)]
    spec = parse_spec(data)
    t0 = time.perf_counter()
    result = routing_pyvrp.solve(spec, Limits(time_s=0.05))
    assert time.perf_counter() - t0 < 1.0
    assert result.status in (Status.TIMEOUT, Status.FEASIBLE)
    if result.status is Status.FEASIBLE:
        assert verify_routes(spec, result).ok


def test_the_check_has_a_reserve_that_grows_with_the_clients() -> None:
    small, big = parse_spec(star(5)), parse_spec(star(2000))
    assert 0.1 <= verify_reserve(small) < verify_reserve(big) < 1.0


# -- 4. real CVRPLIB files -------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["CMT6.vrp", "CMT13.vrp"])
def test_cmt_files_with_distance_and_service_limits_verify(name: str) -> None:
    path = CVRPLIB / name
    if not path.exists():
        pytest.skip(f"{name} is not among the fixtures")
    _, spec = read_routing(path.read_text(), name)
    v = spec.vehicle_types[0]
    assert v.max_duration is not None and {c.service for c in spec.clients} != {0.0}
    result = routing_pyvrp.solve(spec, Limits(time_s=2))
    check = verify_routes(spec, result)
    assert result.status is Status.FEASIBLE and check.ok, check.message
    for r in result.routes or ():
        stats = measure.route_stats(spec, r)
        assert stats.duration <= v.max_duration


def test_the_check_gets_its_share_even_after_the_solver_ran_over() -> None:
    """A solver that returns after the whole limit must not leave a correct answer unverified:
    the check always has its own share of time from when it starts."""
    spec = parse_spec(whole(star(30)))
    result = routing_pyvrp.solve(spec, Limits(time_s=1))
    spec._clock = time.perf_counter() - 60  # the limit ran out long ago
    check = RoutingKind().verify(spec, result, Options(Limits(time_s=2)))
    assert check is not None and check.ok and check.conclusive, check.message


def test_a_check_stopped_by_its_deadline_is_inconclusive_not_failed() -> None:
    spec = parse_spec(whole(star(30, demand=10, capacity=30)))
    result = routing_pyvrp.solve(spec, Limits(time_s=1))
    check = verify_routes(spec, result, deadline=time.perf_counter() - 1)
    assert not check.ok and not check.conclusive
    assert check.verdict == "Not verified" and "ran out of its time" in check.message
