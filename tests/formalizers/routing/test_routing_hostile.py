"""Hostile routing inputs: files and specs that once crashed, ate all memory or came back
"verified" with a NaN objective. Each is refused with a clear one-line error, or solved."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agent.cli import main
from agent.errors import ArtifactError, InputError
from formalizers.offline.routing_files import read_routing
from formalizers.routing.formalizer import load_examples
from formalizers.routing.spec import MAX_VEHICLES, parse_spec
from solvers.base import Limits, SolveResult, Status
from solvers.routing_pyvrp import build_data
from solvers.routing_pyvrp import solve as solve_pyvrp
from solvers.routing_verify import verify_routes

ROOT = Path(__file__).resolve().parents[3]


def vrp(header: str, *sections: str) -> str:
    """A VRPLIB text from a header block and section blocks."""
    parts = [textwrap.dedent(header).strip(), *(textwrap.dedent(s).strip() for s in sections)]
    return "\n".join([*parts, "EOF", ""])


def refused(text: str, name: str = "x.vrp") -> str:
    """The one-line message of the ``InputError`` that reading ``text`` raises."""
    with pytest.raises(InputError) as e:
        read_routing(text, name)
    message = str(e.value)
    assert "\n" not in message
    return message


def bakery(**vehicle: Any) -> dict[str, Any]:
    """The bundled CVRP example's spec, its vehicle type changed by ``vehicle``."""
    spec = copy.deepcopy(next(ex.spec for ex in load_examples() if ex.name == "cvrp_bakery"))
    spec["vehicle_types"][0].update(vehicle)
    return spec


def cli(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["solve", str(path), "--time-limit", "1"])
    out = capsys.readouterr()
    return code, out.out + out.err


# -- 1. a DIMENSION far beyond the data ---------------------------------------------------
HUGE_DIMENSION = """
    NAME: x
    TYPE: CVRP
    DIMENSION: 1000000000
    CAPACITY: 10
    EDGE_WEIGHT_TYPE: EUC_2D
"""


def test_a_huge_dimension_is_refused_before_anything_is_built() -> None:
    # In a child process with 1.5 GB of address space: before the fix it built 1e9 clients.
    text = vrp(HUGE_DIMENSION, "NODE_COORD_SECTION\n1 0 0")
    code = textwrap.dedent(
        f"""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, (1_500_000_000, 1_500_000_000))
        from agent.errors import InputError
        from formalizers.offline.routing_files import read_routing
        try:
            read_routing({text!r}, "x.vrp")
        except InputError as e:
            print("InputError:", e)
        """
    )
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("InputError: DIMENSION 1,000,000,000 is more than")


def test_a_dimension_over_the_client_cap_is_an_input_error() -> None:
    message = refused(
        vrp(HUGE_DIMENSION.replace("1000000000", "6001"), "NODE_COORD_SECTION\n1 0 0")
    )
    assert "DIMENSION 6,001" in message and "6,000" in message
    coords = "\n".join(f"{i} {i} 0" for i in range(1, 5501))
    message = refused(
        vrp(HUGE_DIMENSION.replace("1000000000", "5500"), "NODE_COORD_SECTION\n" + coords)
    )
    assert "clients is more than" in message and "5,000" in message


# -- 2. NaN, infinite and absurd numbers --------------------------------------------------
@pytest.mark.parametrize(
    "where", [("x", float("nan")), ("y", float("inf")), ("x", 1e300), ("y", -1e300)]
)
def test_non_finite_or_absurd_coordinates_are_refused(where: tuple[str, float]) -> None:
    data = bakery()
    data["locations"][1][where[0]] = where[1]
    with pytest.raises(ArtifactError) as e:
        parse_spec(data)
    assert e.value.kind == "schema"
    assert "coordinates must be finite" in str(e.value) and "A" in str(e.value)


def test_nan_coordinates_in_a_spec_file_are_not_verified(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = bakery()
    data["locations"][1]["x"] = float("nan")
    path = tmp_path / "rs_nan.json"
    path.write_text(json.dumps(data))  # json writes NaN, as a user's file may hold
    code, out = cli(path, capsys)
    assert code != 0
    assert "verified: yes" not in out and "coordinates must be finite" in out


@pytest.mark.parametrize(
    "field", [("demand", [float("nan")]), ("tw_late", float("inf")), ("service", float("nan"))]
)
def test_non_finite_client_values_are_refused(field: tuple[str, Any]) -> None:
    data = bakery()
    data["clients"][0][field[0]] = field[1]
    with pytest.raises(ArtifactError, match="client 'A' has a value that is not a finite number"):
        parse_spec(data)


@pytest.mark.parametrize("row", ["2 nan inf", "2 inf 0", "2 1e400 0"])
def test_tsplib_coordinates_must_be_finite(row: str) -> None:
    header = """
        NAME: x
        TYPE: TSP
        DIMENSION: 3
        EDGE_WEIGHT_TYPE: EUC_2D
    """
    message = refused(vrp(header, f"NODE_COORD_SECTION\n1 0 0\n{row}\n3 1 1"), "x.tsp")
    assert message.startswith("NODE_COORD_SECTION, row 2") and "finite number" in message


def test_tsplib_coordinates_so_large_their_distances_overflow_are_refused() -> None:
    header = """
        NAME: x
        TYPE: TSP
        DIMENSION: 3
        EDGE_WEIGHT_TYPE: EUC_2D
    """
    with pytest.raises(ArtifactError, match="coordinates must be finite"):
        read_routing(vrp(header, "NODE_COORD_SECTION\n1 0 0\n2 1 1\n3 1e308 1e308"), "x.tsp")


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_the_verifier_never_accepts_a_non_finite_objective() -> None:
    big = 1e308  # finite, but two legs of it sum to infinity
    spec = parse_spec(
        {
            "locations": [{"id": 0}, {"id": 1}, {"id": 2}],
            "distance_matrix": [[0, 2, 1], [2, 0, 2], [1, 2, 0]],
            "depots": [{"id": 0}],
            "clients": [{"id": 1}, {"id": 2}],
            "vehicle_types": [{"count": 1}],
        }
    )
    # parse_spec refuses such a matrix now (test above); the verifier's own guard is tested on a
    # copy that skips validation.
    spec = spec.model_copy(update={"distance_matrix": [[0, big, 1], [big, 0, big], [1, big, 0]]})
    route = {
        "vehicle": "vehicle type 0",
        "vehicle_type": 0,
        "start": 0,
        "end": 0,
        "stops": [["client", 1], ["client", 2]],
        "visits": [1, 2],
    }
    for claimed in (float("inf"), float("nan"), 3.0):
        result = SolveResult(Status.FEASIBLE, "test", objective=claimed, routes=(route,))
        check = verify_routes(spec, result)
        assert not check.ok
        assert any(v.name == "objective" for v in check.violations)
    # A finite recomputed objective with a NaN claim is refused too.
    spec2 = parse_spec(bakery())
    good = solve_pyvrp(spec2, Limits(time_s=1))
    assert verify_routes(spec2, good).ok
    nan_claim = SolveResult(Status.FEASIBLE, "test", objective=float("nan"), routes=good.routes)
    assert not verify_routes(spec2, nan_claim).ok


# -- 3. EDGE_WEIGHT_TYPE: EXPLICIT -------------------------------------------------------
MATRIX = [[0, 1, 5, 4], [1, 0, 2, 6], [5, 2, 0, 3], [4, 6, 3, 0]]


def explicit(fmt: str, values: list[list[int]]) -> str:
    header = f"""
        NAME: x
        TYPE: TSP
        DIMENSION: 4
        EDGE_WEIGHT_TYPE: EXPLICIT
        EDGE_WEIGHT_FORMAT: {fmt}
    """
    rows = "\n".join(" ".join(str(v) for v in row) for row in values)
    return vrp(header, f"EDGE_WEIGHT_SECTION\n{rows}")


def _rows(fmt: str) -> list[list[int]]:
    m, n = MATRIX, len(MATRIX)
    if fmt == "FULL_MATRIX":
        return m
    if fmt == "LOWER_ROW":
        return [[m[i][j] for j in range(i)] for i in range(1, n)]
    if fmt == "UPPER_ROW":
        return [[m[i][j] for j in range(i + 1, n)] for i in range(n - 1)]
    if fmt == "LOWER_DIAG_ROW":
        return [[m[i][j] for j in range(i + 1)] for i in range(n)]
    assert fmt == "UPPER_DIAG_ROW"
    return [[m[i][j] for j in range(i, n)] for i in range(n)]


@pytest.mark.parametrize(
    "fmt", ["FULL_MATRIX", "LOWER_ROW", "UPPER_ROW", "LOWER_DIAG_ROW", "UPPER_DIAG_ROW"]
)
def test_explicit_matrices_are_read_in_every_common_format(fmt: str) -> None:
    language, spec = read_routing(explicit(fmt, _rows(fmt)), "x.tsp")
    assert language == "vrplib"
    assert spec.distance_matrix == [[float(v) for v in row] for row in MATRIX]
    assert [loc.id for loc in spec.locations] == [1, 2, 3, 4]
    assert spec.vehicle_types[0].count == 1


def test_explicit_rows_may_wrap_anywhere() -> None:
    flat = [v for row in MATRIX for v in row]
    wrapped = [flat[:5], flat[5:6], flat[6:]]
    _, spec = read_routing(explicit("FULL_MATRIX", wrapped), "x.tsp")
    assert np.array_equal(spec.distances, np.array(MATRIX, dtype=float))


def test_explicit_tsplib_file_solves_and_verifies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "explicit.tsp"
    path.write_text(explicit("UPPER_ROW", _rows("UPPER_ROW")))
    code = main(["solve", str(path), "--json", "--time-limit", "1"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert out["status"] == "FEASIBLE" and out["verified"] is True
    assert out["objective"] == 1 + 2 + 3 + 4  # 1-2-3-4-1


def test_explicit_with_the_wrong_number_of_values_or_an_unknown_format_is_refused() -> None:
    message = refused(explicit("FULL_MATRIX", MATRIX[:3]), "x.tsp")
    assert message.startswith("EDGE_WEIGHT_SECTION has 12 values") and "needs 16" in message
    message = refused(explicit("FUNCTION", MATRIX), "x.tsp")
    assert "EDGE_WEIGHT_FORMAT FUNCTION is not supported" in message


def test_an_asymmetric_tsp_gets_one_vehicle() -> None:
    text = explicit("FULL_MATRIX", [[0, 1, 9, 9], [9, 0, 1, 9], [9, 9, 0, 1], [1, 9, 9, 0]])
    _, spec = read_routing(text.replace("TYPE: TSP", "TYPE: ATSP"), "x.atsp.vrp")
    assert spec.vehicle_types[0].count == 1


# -- 4. malformed sections --------------------------------------------------------------
CVRP = """
    NAME: x
    TYPE: CVRP
    DIMENSION: {n}
    CAPACITY: 10
    EDGE_WEIGHT_TYPE: EUC_2D
"""


def test_a_coordinate_that_is_not_a_number_names_its_row() -> None:
    message = refused(vrp(CVRP.format(n=3), "NODE_COORD_SECTION\n1 0 0\n2 a b\n3 1 1"))
    assert message == "NODE_COORD_SECTION, row 2 ('2 a b'): every value must be a finite number"


def test_a_coordinate_row_of_the_wrong_width_names_its_row() -> None:
    message = refused(vrp(CVRP.format(n=3), "NODE_COORD_SECTION\n1 0 0\n2 1\n3 1 1"))
    assert message.startswith("NODE_COORD_SECTION, row 2 ('2 1')")


def test_fewer_rows_than_the_dimension_is_an_input_error() -> None:
    demand = "DEMAND_SECTION\n1 0\n2 5\n3 1"
    depot = "DEPOT_SECTION\n1\n-1"
    message = refused(
        vrp(CVRP.format(n=5), "NODE_COORD_SECTION\n1 0 0\n2 1 1\n3 2 2", demand, depot)
    )
    assert message.startswith("DIMENSION is 5 but NODE_COORD_SECTION has 3 rows")
    message = refused(
        vrp(CVRP.format(n=3), "NODE_COORD_SECTION\n1 0 0\n2 1 1\n3 2 2", "DEMAND_SECTION\n1 0")
    )
    assert message.startswith("DIMENSION is 3 but DEMAND_SECTION has 1 rows")


def test_a_depot_outside_the_nodes_is_an_input_error() -> None:
    coords = "NODE_COORD_SECTION\n1 0 0\n2 1 1\n3 2 2"
    message = refused(vrp(CVRP.format(n=3), coords, "DEPOT_SECTION\n7\n-1"))
    assert message == "DEPOT_SECTION names node 7, which is not a node 1..3"


@pytest.mark.parametrize(
    ("n", "line", "word"),
    [("abc", "", "DIMENSION"), ("0", "", "DIMENSION"), ("3", "no colon here", "not a readable")],
)
def test_other_malformed_files_are_input_errors(n: str, line: str, word: str) -> None:
    text = vrp(CVRP.format(n=n) + line, "NODE_COORD_SECTION\n1 0 0\n2 1 1\n3 2 2")
    assert word in refused(text)


def test_a_good_cvrp_file_still_reads() -> None:
    text = vrp(
        CVRP.format(n=3),
        "NODE_COORD_SECTION\n1 0 0\n2 3 4\n3 -3 4",
        "DEMAND_SECTION\n1 0\n2 5\n3 4",
        "DEPOT_SECTION\n1\n-1",
    )
    _, spec = read_routing(text, "x.vrp")
    assert [c.id for c in spec.clients] == [2, 3]
    assert [c.demand for c in spec.clients] == [[5.0], [4.0]]
    assert spec.rounding == "nearest" and spec.vehicle_types[0].capacity == [10.0]


# -- 5. an absurd fleet ------------------------------------------------------------------
def test_a_huge_vehicle_count_is_refused_in_validation() -> None:
    with pytest.raises(ArtifactError) as e:
        parse_spec(bakery(count=10**12))
    assert e.value.kind == "schema"
    assert "van: count 1,000,000,000,000 is more than" in str(e.value)
    assert parse_spec(bakery(count=MAX_VEHICLES)).vehicle_types[0].count == MAX_VEHICLES


def test_a_huge_vehicle_count_file_exits_cleanly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "rs_count.json"
    path.write_text(json.dumps(bakery(count=10**12)))
    code, out = cli(path, capsys)
    assert code != 0 and "Traceback" not in out and "count" in out


def test_a_fleet_larger_than_the_clients_is_clipped_for_pyvrp() -> None:
    spec = parse_spec(bakery(count=MAX_VEHICLES))
    data = build_data(spec)
    assert data.vehicle_type(0).num_available == len(spec.clients)
    result = solve_pyvrp(spec, Limits(time_s=1))
    assert result.status is Status.FEASIBLE
    assert verify_routes(spec, result).ok


def test_distances_too_large_for_the_solvers_integers_are_refused() -> None:
    """PyVRP works on 64-bit integers: a distance of 1e300 (finite) or locations 2.5e12 apart at
    scale 1000 would overflow once scaled; the spec says so and how to fix it. The same sizes in
    larger units read."""
    n = 5
    spec = bakery()
    spec["distance_matrix"] = [[0.0 if i == j else 1e300 for j in range(n)] for i in range(n)]
    with pytest.raises(
        ArtifactError, match=r"distance_matrix has an entry over 1e\+12.*scale 1000"
    ):
        parse_spec(spec)
    spec["distance_matrix"] = [[0.0 if i == j else 1e9 for j in range(n)] for i in range(n)]
    assert parse_spec(spec).distance_matrix is not None
    far = bakery()
    far["locations"][1].update(x=9e11, y=9e11)
    far["locations"][2].update(x=-9e11, y=-9e11)
    with pytest.raises(ArtifactError, match="the locations span more than 1e\\+12"):
        parse_spec(far)
    far["rounding"] = "nearest"  # scale 1
    assert parse_spec(far).scale == 1
