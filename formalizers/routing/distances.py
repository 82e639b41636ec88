"""Distances of the routing language: Euclidean distances between coordinates under a rounding
convention (TSPLIB's EUC_2D nearest integer, rounding up, DIMACS's one decimal, or none).

A spec's ``distances`` (``formalizers.routing.spec.RoutingSpec``) are built here from its
coordinates, or taken from its distance matrix and rounded the same way; GEO and ATT files are
turned into a matrix by their reader (``formalizers.offline.routing_files``). What a route costs
over these distances is ``formalizers.routing.measure``.
"""

from __future__ import annotations

import time

import numpy as np


def euclidean(
    x: np.ndarray,
    y: np.ndarray,
    rounding: str,
    deadline: float | None = None,
    rest: float = 0.0,
) -> np.ndarray | None:
    """The Euclidean distances between the points ``(x, y)``, rounded by ``rounding`` (see
    ``round_distances``), computed a block of rows at a time; None as soon as the blocks done
    show that the matrix, and then ``rest`` times the time it took for the work that follows,
    would not be done by ``deadline`` (a ``time.perf_counter`` instant).

    At 5,000 points the matrix alone takes one to three seconds: a solver with a time limit asks
    for it this way rather than finding out afterwards."""
    n = len(x)
    d = np.empty((n, n))
    step = max(1, 1_000_000 // max(1, n))  # blocks of about a million entries
    t0 = time.perf_counter()
    for lo in range(0, n, step):
        hi = min(n, lo + step)
        block = d[lo:hi]
        # The same operations per entry as one whole-matrix expression: the same roundings.
        np.subtract(x[lo:hi, None], x[None, :], out=block)
        block *= block
        dy = y[lo:hi, None] - y[None, :]
        dy *= dy
        block += dy
        np.sqrt(block, out=block)
        if deadline is not None and hi < n:
            spent = time.perf_counter() - t0
            projected = t0 + spent * n / hi * (1.0 + rest)
            # Early blocks are a small sample on a busy machine: stop early only on clear
            # evidence.
            if projected > deadline and (hi >= n / 10 or projected - t0 > 3 * (deadline - t0)):
                return None
    return round_distances(d, rounding)


def round_distances(d: np.ndarray, rounding: str) -> np.ndarray:
    """``d`` under a rounding convention: ``none``; ``nearest`` (halves up, as TSPLIB's nint);
    ``ceil``; ``dimacs`` (truncated to one decimal). ``d`` itself is rounded in place and
    returned."""
    if rounding == "nearest":
        d += 0.5
        np.floor(d, out=d)
    elif rounding == "ceil":
        np.ceil(d, out=d)
    elif rounding == "dimacs":
        d *= 10
        np.floor(d, out=d)
        d /= 10
    return d
