"""benchmarks/cvrplib_convert.py (the mrpritt/MC-VRP layout to CVRPLIB's) and the Golden fixtures."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import vrplib

from benchmarks.cvrplib_convert import SourceError, main, parse, render

ROOT = Path(__file__).resolve().parents[2]
CVRPLIB = ROOT / "tests" / "fixtures" / "routing" / "cvrplib"

SOURCE = """NAME: Tiny
TYPE: CVRP
COMMENT: 12.5
DIMENSION: 4
CAPACITY: 30
DISTANCE: 40.00000
VEHICLES: 2
EDGE_WEIGHT_TYPE: FUNCTION
EDGE_WEIGHT_FORMAT: EUC_2D
NODE_COORD_TYPE: TWOD_COORDS
NODE_COORD_SECTION
1 3.00000 1.00000
2 -2.50000 4.00000
3 0.00000 -7.25000
DEMAND_SECTION
1 10
2 20
3 15
DEPOT_SECTION
1.00000 -2.00000
-1
EOF
"""


def test_the_depot_becomes_node_1_and_every_value_is_kept(tmp_path: Path) -> None:
    out = tmp_path / "Tiny.vrp"
    out.write_text(render(parse(SOURCE), "Tiny", "best known 12.5"))
    inst = vrplib.read_instance(str(out), compute_edge_weights=False)
    assert inst["dimension"] == 4 and inst["capacity"] == 30 and inst["distance"] == 40
    assert list(inst["depot"]) == [0]
    assert [tuple(p) for p in inst["node_coord"]] == [(1, -2), (3, 1), (-2.5, 4), (0, -7.25)]
    assert list(inst["demand"]) == [0, 10, 20, 15]
    text = out.read_text()
    # CVRPLIB's own layout: integer-rounded Euclidean distances, no fleet size.
    assert "EDGE_WEIGHT_TYPE : EUC_2D" in text and "VEHICLES" not in text
    # The coordinates are the source's own strings, not re-printed numbers.
    assert "2 3.00000 1.00000" in text and "4 0.00000 -7.25000" in text


def test_no_route_limit_in_the_source_means_none_in_the_result() -> None:
    text = render(parse(SOURCE.replace("DISTANCE: 40.00000\n", "")), "Tiny", "c")
    assert "DISTANCE" not in text and "SERVICE_TIME" not in text


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        (SOURCE.replace("3 15\n", ""), "DEMAND_SECTION"),
        (SOURCE.replace("1.00000 -2.00000\n", ""), "depot"),
        (SOURCE.replace("DIMENSION: 4", "DIMENSION: 5"), "DIMENSION 5"),
        (SOURCE.replace("2 -2.50000 4.00000", "2 -2.50000"), "index x y"),
        (SOURCE.replace("CAPACITY: 30\n", ""), "CAPACITY"),
        (SOURCE.replace("2 -2.50000 4.00000", "2 -2.50000 north"), "'north' is not a number"),
    ],
)
def test_a_source_out_of_layout_is_refused_with_the_reason(broken: str, message: str) -> None:
    with pytest.raises(SourceError, match=message):
        parse(broken)


def test_the_command_line_reports_a_bad_source_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "bad.vrp"
    src.write_text(SOURCE.replace("3 15\n", ""))
    assert main([str(src), str(tmp_path / "out.vrp"), "--comment", "c"]) == 2
    assert "DEMAND_SECTION" in capsys.readouterr().err
    assert not (tmp_path / "out.vrp").exists()


# -- the Golden et al. (1998) fixtures: sizes, capacities and route limits as published -------
GOLDEN = {  # n: (clients, capacity, route limit or None)
    1: (240, 550, 650),
    2: (320, 700, 900),
    3: (400, 900, 1200),
    4: (480, 1000, 1600),
    5: (200, 900, 1800),
    6: (280, 900, 1500),
    7: (360, 900, 1300),
    8: (440, 900, 1200),
    9: (255, 1000, None),
    10: (323, 1000, None),
    11: (399, 1000, None),
    12: (483, 1000, None),
    13: (252, 1000, None),
    14: (320, 1000, None),
    15: (396, 1000, None),
    16: (480, 1000, None),
    17: (240, 200, None),
    18: (300, 200, None),
    19: (360, 200, None),
    20: (420, 200, None),
}


@pytest.mark.parametrize("n", sorted(GOLDEN))
def test_each_golden_fixture_has_its_published_size_capacity_and_limit(n: int) -> None:
    clients, capacity, limit = GOLDEN[n]
    path = CVRPLIB / f"Golden_{n}.vrp"
    inst = vrplib.read_instance(str(path), compute_edge_weights=False)
    assert inst["dimension"] == clients + 1
    assert inst["capacity"] == capacity
    assert inst.get("distance") == limit
    assert list(inst["depot"]) == [0] and inst["demand"][0] == 0
    assert all(d > 0 for d in inst["demand"][1:])
    # No client is on top of another (a dropped or doubled line would show here).
    points = {tuple(p) for p in inst["node_coord"]}
    assert len(points) == clients + 1
    # Every route fits: a client alone is within the capacity and, going there and back,
    # within the route limit.
    assert max(inst["demand"]) <= capacity
    if limit is not None:
        x0, y0 = inst["node_coord"][0]
        assert max(2 * math.hypot(x - x0, y - y0) for x, y in inst["node_coord"]) <= limit
