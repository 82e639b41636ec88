"""The routing-quality benchmark's third method: OR-Tools on a Solomon file.

C101 (``tests/fixtures/routing/C101.txt``, see SOURCE.md) has the DIMACS distance-only optimum
827.3; OR-Tools under the benchmark's model must reach a feasible cost no better than it (it cannot
beat an optimum, so a lower value would mean a broken model) and close to it within a second.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("ortools")

from benchmarks.routing_quality import have_ortools, ortools_solomon, raw_solomon

C101 = Path(__file__).parents[1] / "fixtures" / "routing" / "C101.txt"
OPTIMUM = 827.3


def test_ortools_reaches_the_c101_optimum_region() -> None:
    assert have_ortools()
    cost = ortools_solomon(C101, budget=1.0)
    assert OPTIMUM - 1e-6 <= cost <= OPTIMUM * 1.05


def test_raw_pyvrp_and_ortools_read_the_same_instance() -> None:
    """Both baselines share the DIMACS convention: neither goes below the optimum."""
    assert raw_solomon(C101, 1.0, 0) >= OPTIMUM - 1e-6
