"""Solution quality of the routing path against raw PyVRP, as mean gap to best-known solutions.

    .venv/bin/python -m benchmarks.routing_quality [--time S] [--solomon N] [--x N] [--data DIR] [--no-ortools]

Solves the 56 Solomon VRPTW instances (distance-only, DIMACS convention, BKS from ``bks.csv``) and
20 X instances (CVRP, every fifth of the 100 by size; EUC_2D rounded) twice under the same time
budget: through formalist (file -> routing spec -> ``solvers.routing_pyvrp``, verified) and with
PyVRP called directly on the same data; the Solomon ones a third time with OR-Tools' routing solver
(guided local search, same budget, same integer distances; the ``bench`` extra installs it, and its
column is left out without it). Prints one line per instance and the mean gap to BKS of each.
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "vrp_instances"


def ours(path: Path, budget: float, seed: int) -> tuple[float, bool]:
    """(objective, verified) through the formalist routing path."""
    from formalizers.offline.routing_files import read_routing
    from solvers.base import Limits
    from solvers.routing_pyvrp import solve
    from solvers.routing_verify import verify_routes

    _, spec = read_routing(path.read_text(encoding="utf-8"), path.name)
    result = solve(spec, Limits(time_s=budget), seed=seed, no_improvement=None)
    if result.objective is None:
        return math.inf, False
    return result.objective, verify_routes(spec, result).ok


def raw_x(path: Path, budget: float, seed: int) -> float:
    """Raw PyVRP on a VRPLIB file, as its documentation does it."""
    import pyvrp
    from pyvrp.stop import MaxRuntime

    data = pyvrp.read(path, round_func="round")
    res = pyvrp.solve(data, MaxRuntime(budget), seed=seed, collect_stats=False)
    return float(res.cost()) if res.is_feasible() else math.inf


def solomon_dimacs(path: Path) -> tuple[dict[str, Any], Any, Any]:
    """A Solomon file read by vrplib, with its distances and time windows in the DIMACS convention
    (x10, distances truncated): ``(instance, distances, windows)``, both integer arrays."""
    import numpy as np
    import vrplib

    inst = vrplib.read_instance(str(path), instance_format="solomon")
    xy = inst["node_coord"]
    d = np.floor(10 * np.sqrt(((xy[:, None] - xy[None]) ** 2).sum(-1))).astype(np.int64)
    return inst, d, (inst["time_window"] * 10).astype(np.int64)


def raw_solomon(path: Path, budget: float, seed: int) -> float:
    """Raw PyVRP on a Solomon file: the DIMACS convention (x10, truncated), built by hand."""
    import pyvrp
    from pyvrp.stop import MaxRuntime

    inst, d, tw = solomon_dimacs(path)
    xy = inst["node_coord"]
    m = pyvrp.Model()
    locs = [m.add_location(float(x), float(y)) for x, y in xy]
    m.add_depot(locs[0], tw_early=int(tw[0][0]), tw_late=int(tw[0][1]))
    for i in range(1, len(xy)):
        m.add_client(
            locs[i],
            delivery=[int(inst["demand"][i])],
            service_duration=int(inst["service_time"][i] * 10),
            tw_early=int(tw[i][0]),
            tw_late=int(tw[i][1]),
        )
    m.add_vehicle_type(int(inst["vehicles"]), capacity=[int(inst["capacity"])])
    for a, la in enumerate(locs):
        for b, lb in enumerate(locs):
            m.add_edge(la, lb, int(d[a, b]), int(d[a, b]))
    res = m.solve(MaxRuntime(budget), seed=seed, display=False)
    return res.cost() / 10 if res.is_feasible() else math.inf


def ortools_solomon(path: Path, budget: float, seed: int = 0) -> float:
    """OR-Tools on a Solomon file, the textbook VRPTW model: the DIMACS distances (x10, truncated)
    as arc costs, a time dimension (travel plus the service at the node left, waiting allowed), a
    capacity dimension, the file's fleet; parallel cheapest insertion, then guided local search for ``budget``
    seconds. OR-Tools has no seed parameter; ``seed`` is accepted for a uniform call."""
    import numpy as np
    from ortools.constraint_solver import pywrapcp, routing_enums_pb2

    del seed
    inst, d, tw = solomon_dimacs(path)
    xy = inst["node_coord"]
    service = (inst["service_time"] * 10).astype(np.int64)
    demand = inst["demand"].astype(np.int64)
    n, fleet = len(xy), int(inst["vehicles"])
    manager = pywrapcp.RoutingIndexManager(n, fleet, 0)
    routing = pywrapcp.RoutingModel(manager)

    # Matrices, not Python callbacks: OR-Tools would otherwise call back into Python per arc.
    dist_cb = routing.RegisterTransitMatrix(d.tolist())
    time_cb = routing.RegisterTransitMatrix((d + service[:, None]).tolist())
    load_cb = routing.RegisterUnaryTransitVector(demand.tolist())
    routing.SetArcCostEvaluatorOfAllVehicles(dist_cb)
    horizon = int(tw[0][1])
    routing.AddDimension(time_cb, horizon, horizon, False, "time")
    times = routing.GetDimensionOrDie("time")
    for i in range(1, n):
        times.CumulVar(manager.NodeToIndex(i)).SetRange(int(tw[i][0]), int(tw[i][1]))
    for v in range(fleet):
        times.CumulVar(routing.Start(v)).SetRange(int(tw[0][0]), int(tw[0][1]))
        times.CumulVar(routing.End(v)).SetRange(int(tw[0][0]), int(tw[0][1]))
    cap = int(inst["capacity"])
    routing.AddDimensionWithVehicleCapacity(load_cb, 0, [cap] * fleet, True, "load")
    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = (
        routing_enums_pb2.FirstSolutionStrategy.PARALLEL_CHEAPEST_INSERTION
    )
    params.local_search_metaheuristic = (
        routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    )
    params.time_limit.FromMilliseconds(int(budget * 1000))
    sol = routing.SolveWithParameters(params)
    if sol is None:
        return math.inf
    total = 0
    for v in range(fleet):
        i = routing.Start(v)
        while not routing.IsEnd(i):
            j = sol.Value(routing.NextVar(i))
            total += int(d[manager.IndexToNode(i), manager.IndexToNode(j)])
            i = j
    return total / 10


def have_ortools() -> bool:
    try:
        import ortools.constraint_solver.pywrapcp  # noqa: F401
    except ImportError:
        return False
    return True


def instances(data: Path, n_solomon: int, n_x: int) -> list[tuple[str, Path, float]]:
    """(family, file, BKS) for the chosen instances."""
    out = []
    with open(data / "solomon_100" / "bks.csv") as f:
        bks = {r["instance"]: float(r["dist_min_dimacs_cost"]) for r in csv.DictReader(f)}
    for name in sorted(bks)[:n_solomon]:
        out.append(("solomon", data / "solomon_100" / f"{name}.txt", bks[name]))
    with open(data / "cvrp_X" / "bks.csv") as f:
        rows = sorted(csv.DictReader(f), key=lambda r: (int(r["dimension"]), r["instance"]))
    chosen = rows[::5][:n_x]
    for r in chosen:
        out.append(
            ("x", data / "cvrp_X" / f"{r['instance']}.vrp", float(r["bks_cost_euc2d_rounded"]))
        )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    ap.add_argument("--time", type=float, default=10.0, help="seconds per instance and method")
    ap.add_argument("--solomon", type=int, default=56, help="how many Solomon instances (by name)")
    ap.add_argument("--x", type=int, default=20, help="how many X instances (every fifth by size)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--no-ortools", action="store_true", help="leave the OR-Tools column out")
    args = ap.parse_args(argv)
    use_ortools = have_ortools() and not args.no_ortools
    gaps: dict[str, dict[str, list[float]]] = {}
    print(
        f"{'instance':14s} {'BKS':>10s} {'ours':>10s} {'gap%':>7s} {'raw':>10s} {'gap%':>7s} "
        f"{'OR-Tools':>10s} {'gap%':>7s} verified"
    )
    for family, path, bks in instances(args.data, args.solomon, args.x):
        t0 = time.perf_counter()
        obj, ok = ours(path, args.time, args.seed)
        raw = (raw_solomon if family == "solomon" else raw_x)(path, args.time, args.seed)
        g_ours, g_raw = 100 * (obj - bks) / bks, 100 * (raw - bks) / bks
        fam = gaps.setdefault(family, {"ours": [], "raw": [], "ortools": []})
        fam["ours"].append(g_ours)
        fam["raw"].append(g_raw)
        ort = ""
        if use_ortools and family == "solomon":
            o = ortools_solomon(path, args.time, args.seed)
            fam["ortools"].append(100 * (o - bks) / bks)
            ort = f"{o:10.1f} {fam['ortools'][-1]:7.2f}"
        print(
            f"{path.stem:14s} {bks:10.1f} {obj:10.1f} {g_ours:7.2f} {raw:10.1f} {g_raw:7.2f} "
            f"{ort or '-':>18s} {'yes' if ok else 'NO'}  ({time.perf_counter() - t0:.0f} s)",
            flush=True,
        )
    print()
    for family, g in gaps.items():
        mo, mr = statistics.fmean(g["ours"]), statistics.fmean(g["raw"])
        line = (
            f"{family:8s} n={len(g['ours']):3d}  mean gap ours {mo:6.2f}%  raw PyVRP {mr:6.2f}%  "
            f"difference {mo - mr:+.2f} points"
        )
        if g["ortools"]:
            solved = [x for x in g["ortools"] if math.isfinite(x)]
            line += f"  OR-Tools {statistics.fmean(solved) if solved else math.inf:6.2f}%"
            if len(solved) < len(g["ortools"]):
                line += f" (over the {len(solved)} it solved; no solution on the others)"
        print(f"{line}  (budget {args.time:g} s each)")
    if not use_ortools:
        print(
            "OR-Tools column left out: "
            + ("--no-ortools" if args.no_ortools else "not installed (pip install -e '.[bench]')")
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
