"""The routing language's own distances and measures (``formalizers.routing.distances`` and
``measure``), its solver-free feasibility checks and feature names
(``formalizers.routing.feasibility``), and the backends' declarations of what they take: the
kind picks a backend by them, and a backend asked directly refuses a spec outside its
declaration, naming the feature."""

from __future__ import annotations

import math
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agent.errors import ArtifactError
from agent.kinds.base import Options
from agent.kinds.routing import RoutingKind, choose_backend
from formalizers.base import Artifact
from formalizers.routing import distances, measure
from formalizers.routing.feasibility import FEATURES, check_feasible, features
from formalizers.routing.spec import parse_spec
from solvers import registry, routing_exact, routing_pyvrp
from solvers.base import Limits, Status
from solvers.routing_verify import verify_routes

ROOT = Path(__file__).resolve().parents[3]


def line(**extra: Any) -> dict[str, Any]:
    """A depot at 0 and clients a, b, c at 3, 7 and 10 on a line; one van of capacity 10."""
    data: dict[str, Any] = {
        "locations": [
            {"id": "d", "x": 0, "y": 0},
            {"id": "a", "x": 3, "y": 0},
            {"id": "b", "x": 7, "y": 0},
            {"id": "c", "x": 10, "y": 0},
        ],
        "depots": [{"id": "d"}],
        "clients": [
            {"id": "a", "demand": [2]},
            {"id": "b", "demand": [3]},
            {"id": "c", "demand": [4]},
        ],
        "vehicle_types": [{"count": 1, "capacity": [10]}],
    }
    data.update(extra)
    return data


def route(*stops: list[Any], start: Any = "d", end: Any = "d", vt: int = 0) -> dict[str, Any]:
    return {
        "vehicle": "van",
        "vehicle_type": vt,
        "start": start,
        "end": end,
        "stops": [list(s) for s in stops],
        "visits": [s[1] for s in stops if s[0] == "client"],
    }


# -- distances ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("rounding", "expected"),
    [("none", 2.5), ("nearest", 3.0), ("ceil", 3.0), ("dimacs", 2.5)],
)
def test_rounding_conventions(rounding: str, expected: float) -> None:
    d = distances.euclidean(np.array([0.0, 1.5]), np.array([0.0, 2.0]), rounding)
    assert d is not None and d[0, 1] == expected and d[1, 0] == expected and d[0, 0] == 0


def test_nearest_rounds_halves_up_and_dimacs_truncates() -> None:
    d = np.array([[0.5, 1.49, 2.5, 7.19]])
    assert distances.round_distances(d.copy(), "nearest").tolist() == [[1.0, 1.0, 3.0, 7.0]]
    assert distances.round_distances(d.copy(), "dimacs").tolist() == [[0.5, 1.4, 2.5, 7.1]]
    assert distances.round_distances(d.copy(), "ceil").tolist() == [[1.0, 2.0, 3.0, 8.0]]


def test_a_spec_measures_with_the_language_distances_and_rounds_a_matrix_too() -> None:
    spec = parse_spec(
        line(rounding="ceil", locations=[*line()["locations"][:3], {"id": "c", "x": 6, "y": 8}])
    )
    assert spec.distances[0, 3] == 10.0 and spec.distances[1, 2] == 4.0
    ref = distances.euclidean(
        np.array([loc.x for loc in spec.locations], dtype=float),
        np.array([loc.y for loc in spec.locations], dtype=float),
        "ceil",
    )
    assert ref is not None and np.array_equal(spec.distances, ref)
    matrix = [[0, 1.2, 2, 3], [1.2, 0, 1, 2], [2, 1, 0, 1], [3, 2, 1, 0]]
    given = parse_spec(line(distance_matrix=matrix, rounding="ceil"))
    assert given.distances[0, 1] == 2.0  # the rounding applies to a given matrix as well


def test_the_distance_matrix_gives_up_when_its_deadline_cannot_be_met() -> None:
    x = np.arange(3_000, dtype=float)
    assert distances.euclidean(x, x, "none", deadline=time.perf_counter() - 1) is None
    done = distances.euclidean(x[:50], x[:50], "none", deadline=time.perf_counter() + 60)
    assert done is not None and done[0, 1] == pytest.approx(math.sqrt(2))


# -- one route -----------------------------------------------------------------------------------
def test_route_length_duration_and_lateness() -> None:
    data = line(speed=0.5)
    data["clients"][1] = {"id": "b", "demand": [3], "tw_early": 20, "tw_late": 30, "service": 2}
    data["clients"][2] = {"id": "c", "demand": [4], "tw_late": 25}
    spec = parse_spec(data)
    r = route(["client", "a"], ["client", "b"], ["client", "c"])
    st = measure.route_stats(spec, r)
    assert st.distance == 20.0 and st.arcs == 4
    # Travel takes twice the distance. Leaving at 3 (the latest start that would keep c's window
    # after b's service): a at 9, b waits from 17 to 20 (service to 22), c at 28, 3 after its
    # window closed at 25; back at 48.
    assert st.start_time == pytest.approx(3.0)
    assert st.duration == pytest.approx(45.0)
    assert st.late == [("client 'c'", pytest.approx(3.0))]
    assert measure.legs(spec, r) == [3.0, 4.0, 3.0, 10.0]
    assert measure.places(spec, r) == ["d", "a", "b", "c", "d"]


def test_loads_over_trips_with_pickups_and_reloads() -> None:
    data = line()
    data["clients"][0] = {"id": "a", "demand": [2], "pickup": [5]}
    data["vehicle_types"] = [{"count": 1, "capacity": [6], "reload_depots": ["d"]}]
    spec = parse_spec(data)
    r = route(["client", "a"], ["client", "b"], ["reload", "d"], ["client", "c"])
    trips = measure.trips(r)
    assert trips == [[["client", "a"], ["client", "b"]], [["client", "c"]]]
    assert measure.trip_loads(spec, trips[0], 1) == [[5.0], [8.0], [5.0]]
    assert measure.trip_loads(spec, trips[1], 1) == [[4.0], [0.0]]
    assert measure.load_dims(spec) == 1


def test_energy_between_recharges() -> None:
    data = line(depots=[{"id": "d"}, {"id": "b"}])
    data["clients"] = [{"id": "a"}, {"id": "c"}]
    data["vehicle_types"] = [{"count": 1, "max_distance_between_recharges": 8}]
    spec = parse_spec(data)
    straight = route(["client", "a"], ["client", "c"])
    assert measure.energy_overrun(spec, straight) == (20.0, "d", "d")
    # Through the recharge depot b: d-a-b is 7, b-c-d is 13: the second stretch is over.
    charged = route(["client", "a"], ["depot", "b"], ["client", "c"])
    assert measure.energy_overrun(spec, charged) == (13.0, "b", "d")
    near = route(["client", "a"], ["depot", "b"])
    assert measure.energy_overrun(spec, near) is None


@pytest.mark.parametrize(
    ("objective", "expected"),
    [
        ("total_distance", 14.0 + 20.0 + 100.0 + 1.5),
        ("longest_route", 20.0),
        ("longest_leg", 10.0),
        ("prize_minus_cost", 9.0 - (14.0 + 20.0 + 100.0 + 1.5)),
    ],
)
def test_route_objective_by_the_tests_own_arithmetic(objective: str, expected: float) -> None:
    data = line(objective=objective)
    data["clients"][0] = {"id": "a", "cost": 1.5, "prize": 4}
    data["clients"][2] = {"id": "c", "prize": 5}
    data["vehicle_types"] = [{"count": 2, "fixed_cost": 50}]
    spec = parse_spec(data)
    # d-a-b-d is 14 long (legs 3, 4, 7) plus the purchase at a (1.5); d-c-d is 20 (legs 10, 10);
    # two vans at 50 each; prizes 4 at a and 5 at c.
    routes = [route(["client", "a"], ["client", "b"]), route(["client", "c"])]
    assert measure.route_objective(spec, routes) == pytest.approx(expected)


# -- features and solver-free feasibility ----------------------------------------------------------
def test_features_name_what_a_spec_uses_in_a_fixed_order() -> None:
    assert features(parse_spec(line())) == ("the total distance objective",)
    data = line(objective="longest_route", sequences=[["a", "b"]])
    data["clients"][0] = {"id": "a", "tw_late": 50, "service": 1}
    data["vehicle_types"] = [{"count": 1, "max_distance": 40, "max_distance_between_recharges": 30}]
    assert features(parse_spec(data)) == (
        "the longest route objective",
        "visit orders",
        "an energy limit with recharging at depots",
        "time windows",
        "service times",
        "a route distance limit",
    )
    assert set(routing_pyvrp.SUPPORTS.features) <= set(FEATURES)
    assert set(routing_exact.SUPPORTS.features) <= set(FEATURES)


def test_a_client_heavier_than_every_vehicle_is_infeasible_by_name() -> None:
    data = line()
    data["clients"][2] = {"id": "c", "demand": [11]}
    with pytest.raises(ArtifactError) as e:
        check_feasible(parse_spec(data))
    assert e.value.kind == "infeasible" and "client 'c'" in e.value.feedback()
    assert "no vehicle carries that much (largest capacity 10)" in e.value.feedback()


def test_a_window_closing_before_any_arrival_is_infeasible_by_name() -> None:
    data = line()
    data["clients"][2] = {"id": "c", "tw_late": 9}
    with pytest.raises(ArtifactError) as e:
        check_feasible(parse_spec(data))
    assert "client 'c'" in e.value.feedback() and "earliest arrival is 10" in e.value.feedback()
    data["clients"][2] = {"id": "c", "tw_late": 10}
    check_feasible(parse_spec(data))


def test_a_fleet_too_small_for_the_demand_is_infeasible() -> None:
    data = line()
    data["vehicle_types"] = [{"count": 1, "capacity": [8]}]
    with pytest.raises(ArtifactError, match="the fleet carries 8"):
        check_feasible(parse_spec(data))


# -- declarations: the kind chooses by them, a backend refuses by them ------------------------------
def test_the_kind_gives_a_spec_to_the_first_backend_that_declares_its_features() -> None:
    assert choose_backend(parse_spec(line())).backend == "pyvrp"
    choice = choose_backend(parse_spec(line(objective="longest_leg")))
    assert choice.backend == "routing-exact"
    assert choice.passed_over == "PyVRP cannot express the longest leg objective"


def test_no_backend_takes_it_names_what_each_lacks() -> None:
    data = line(objective="longest_route")
    data["shipments"] = [{"name": "s", "pickup": "a", "delivery": "b", "amount": [1]}]
    with pytest.raises(ArtifactError) as e:
        RoutingKind().validate(Artifact("routing", "routing-spec", parse_spec(data), ""), Options())
    feedback = e.value.feedback()
    assert e.value.kind == "unsupported"
    assert "PyVRP cannot express the longest route objective" in feedback
    assert "the exact solver cannot express shipments" in feedback
    assert "use total_distance" in feedback


def test_pyvrp_refuses_what_it_does_not_declare_before_running(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = parse_spec(line(sequences=[["b", "a"]]))
    result = routing_pyvrp.solve(spec, Limits(time_s=1))
    assert result.status is Status.UNSUPPORTED and result.solver == "pyvrp"
    assert "pyvrp does not support visit orders" in result.message
    # Through the registry, the declaration is asked first: the solver never runs.
    monkeypatch.setattr(routing_pyvrp, "solve", lambda *_, **__: pytest.fail("it ran"))
    through = registry.solve_with("pyvrp", "routing", features(spec), spec, spec, Limits(time_s=1))
    assert through.status is Status.UNSUPPORTED and "visit orders" in through.message


def test_the_exact_solver_refuses_features_and_sizes_it_does_not_declare() -> None:
    data = line()
    data["clients"][1] = {"id": "b", "service": 2}
    result = routing_exact.solve(parse_spec(data), Limits(time_s=1))
    assert result.status is Status.UNSUPPORTED and "service times" in result.message
    big: dict[str, Any] = {
        "locations": [{"id": i, "x": i, "y": 0} for i in range(14)],
        "depots": [{"id": 0}],
        "clients": [{"id": i} for i in range(1, 14)],
        "vehicle_types": [{"count": 1}],
        "objective": "longest_leg",
    }
    result = routing_exact.solve(parse_spec(big), Limits(time_s=1))
    assert result.status is Status.UNSUPPORTED
    assert "routing-exact does not support 13 clients (at most 12)" in result.message


def test_routes_solved_by_either_backend_verify_against_the_measures() -> None:
    spec = parse_spec(line(objective="longest_route", vehicle_types=[{"count": 2}]))
    result = RoutingKind().solve(spec, Options(Limits(time_s=10)))
    assert result.status is Status.OPTIMAL and result.solver == "exact-dp"
    assert "(PyVRP cannot express the longest route objective)" in result.message
    check = verify_routes(spec, result)
    assert check.ok and check.objective == pytest.approx(
        max(measure.route_stats(spec, r).distance for r in result.routes or ())
    )


# -- layering --------------------------------------------------------------------------------------
def test_the_routing_language_imports_no_solver_and_pyvrp_no_other_backend() -> None:
    code = (
        "import sys\n"
        "import formalizers.routing.spec, formalizers.routing.measure\n"
        "import formalizers.routing.feasibility, formalizers.routing.distances\n"
        "import formalizers.offline.routing_files\n"
        "assert not [m for m in sys.modules if m.split('.')[0] == 'solvers'], 'solvers loaded'\n"
        "import solvers.routing_pyvrp\n"
        "bad = {'solvers.routing_exact', 'solvers.routing_verify'} & set(sys.modules)\n"
        "assert not bad, bad\n"
        "assert not [m for m in sys.modules if m.startswith('agent.kinds')], 'kinds loaded'\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr


def test_the_plot_draws_every_place_a_route_passes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agent import routing_plot

    drawn: list[list[float]] = []
    import matplotlib.axes

    real = matplotlib.axes.Axes.plot

    def spy(self: Any, xs: Any, *args: Any, **kwargs: Any) -> Any:
        drawn.append(list(xs))
        return real(self, xs, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "plot", spy)
    data = line(depots=[{"id": "d"}, {"id": "b"}])
    data["clients"] = [{"id": "a"}, {"id": "c"}]
    spec = parse_spec(data)
    out = routing_plot.plot_routes(
        spec, [route(["client", "a"], ["depot", "b"], ["client", "c"])], tmp_path / "r.png"
    )
    assert out.stat().st_size > 0
    assert drawn == [[0.0, 3.0, 7.0, 10.0, 0.0]]  # through the depot stop at b
