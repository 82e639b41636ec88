"""The CVRPLIB sets with route limits (CMT, Golden) through formalist and through raw PyVRP.

    .venv/bin/python -m benchmarks.cvrplib_sets [--time S] [--data DIR] [--only CMT6,CMT13]

Each ``.vrp`` file under ``--data`` (default ``tests/fixtures/routing/cvrplib``) is solved
twice under the same time limit:

- ours: a whole ``formalist solve FILE --json --time-limit S`` process (reading, building,
  solving, the independent check; the file's DISTANCE and SERVICE_TIME included);
- raw PyVRP: ``pyvrp.read`` (TSPLIB rounding, as the file states) with the file's DISTANCE set as
  the vehicles' shift duration (PyVRP's reader does not read that key), ``pyvrp.solve`` with
  ``MaxRuntime(S)`` (its clock starts after its own set-up, so it gets a little more).

Both costs are in the file's own convention (EUC_2D: each distance rounded to the nearest
integer). The best known solutions of these sets are stated with unrounded distances, so the gaps
are taken on each answer's routes measured unrounded (``exact``), and each answer is also checked
against the route limit with unrounded distances (``limit``: ``ok``, or the worst excess).
Prints one row per instance and the mean gaps; exits 1 if any answer of ours is not verified.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "fixtures" / "routing" / "cvrplib"


def best_known(text: str) -> float | None:
    """The best known value stated in the file's COMMENT (``best known X``, or a bare number)."""
    m = re.search(r"^COMMENT\s*:.*?(?:best known\s+)?(\d+(?:\.\d+)?)\s*(?:\(|$)", text, re.M)
    return float(m.group(1)) if m else None


def exact_cost(path: Path, routes: list[list[int]]) -> tuple[float, float]:
    """(total unrounded length of ``routes``, worst excess over the route limit with unrounded
    lengths plus service times; 0 when every route holds). Node numbers are the file's."""
    import vrplib

    inst = vrplib.read_instance(str(path), compute_edge_weights=False)
    xy = inst["node_coord"]
    depot = int(inst["depot"][0])
    limit = float(inst.get("distance", math.inf))
    service = float(inst.get("service_time", 0.0))
    total, worst = 0.0, 0.0
    for r in routes:
        stops = [depot, *(int(v) - 1 for v in r), depot]
        length = sum(math.dist(xy[a], xy[b]) for a, b in zip(stops, stops[1:], strict=False))
        total += length
        worst = max(worst, length + service * len(r) - limit)
    return total, worst


def ours(path: Path, budget: float) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "agent.cli", "solve", str(path), "--json"]
    cmd += ["--time-limit", f"{budget:g}"]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=budget * 5 + 60)
    wall = time.perf_counter() - t0
    try:
        out = json.loads(done.stdout)
    except ValueError:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"status": f"exit {done.returncode}: {tail[0][:50]}", "wall": wall}
    res: dict[str, Any] = {
        "status": out.get("status"),
        "objective": out.get("objective"),
        "verified": bool(out.get("verified")),
        "wall": wall,
    }
    if out.get("routes"):
        res["exact"], res["excess"] = exact_cost(path, out["routes"])
    return res


def raw_pyvrp(path: Path, budget: float, seed: int = 0) -> dict[str, Any]:
    import pyvrp
    import vrplib
    from pyvrp.stop import MaxRuntime

    inst = vrplib.read_instance(str(path), compute_edge_weights=False)
    data = pyvrp.read(str(path), round_func="round")
    if "distance" in inst:
        vt = data.vehicle_type(0)
        data = data.replace(vehicle_types=[vt.replace(shift_duration=int(inst["distance"]))])
    result = pyvrp.solve(data, MaxRuntime(budget), seed=seed, collect_stats=False)
    if not result.is_feasible():
        return {"objective": None}
    # A route's activities index the clients from 0; the file numbers the depot 1 and the
    # clients from 2.
    routes = [[a.idx + 2 for a in r if a.is_client()] for r in result.best.routes()]
    exact, excess = exact_cost(path, routes)
    return {"objective": result.cost(), "exact": exact, "excess": excess}


def _num(name: str) -> tuple[str, int]:
    m = re.match(r"([A-Za-z_]+?)(\d+)$", name)
    return (m.group(1), int(m.group(2))) if m else (name, 0)


def _gap(value: float | None, bks: float | None) -> str:
    if value is None or bks is None:
        return "-"
    return f"{100 * (value - bks) / bks:+.2f}%"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--time", type=float, default=5.0, help="time limit per solve, s (default 5)")
    ap.add_argument("--data", default=str(DATA), help="folder of .vrp files")
    ap.add_argument("--only", default="", help="comma-separated instance names")
    args = ap.parse_args(argv)
    files = sorted(Path(args.data).glob("*.vrp"), key=lambda p: _num(p.stem))
    if args.only:
        keep = set(args.only.split(","))
        files = [p for p in files if p.stem in keep]
    head = (
        f"{'instance':10} {'BKS':>9} {'ours':>9} {'ours exact':>10} {'gap':>8} "
        f"{'raw PyVRP':>9} {'raw exact':>10} {'gap':>8} {'verified':>8} {'limit':>7} "
        f"{'raw limit':>9} {'wall':>6}"
    )
    print(f"time limit {args.time:g} s per solve")
    print(head)
    gaps: dict[str, list[float]] = {"ours": [], "raw": []}
    unverified = 0
    for path in files:
        bks = best_known(path.read_text())
        o = ours(path, args.time)
        r = raw_pyvrp(path, args.time)
        unverified += not o.get("verified")
        for who, res in (("ours", o), ("raw", r)):
            if res.get("exact") is not None and bks:
                gaps[who].append(100 * (res["exact"] - bks) / bks)

        def limit(res: dict[str, Any]) -> str:
            if res.get("excess") is None:
                return "-"
            return "ok" if res["excess"] <= 1e-9 else f"+{res['excess']:.2f}"

        print(
            f"{path.stem:10} {bks or math.nan:9.2f} {o.get('objective') or math.nan:9.0f} "
            f"{o.get('exact', math.nan):10.2f} {_gap(o.get('exact'), bks):>8} "
            f"{r.get('objective') or math.nan:9.0f} {r.get('exact', math.nan):10.2f} "
            f"{_gap(r.get('exact'), bks):>8} {'yes' if o.get('verified') else o.get('status'):>8} "
            f"{limit(o):>7} {limit(r):>9} {o['wall']:6.1f}",
            flush=True,
        )
    for who, values in gaps.items():
        if values:
            print(f"mean gap to BKS ({who}, unrounded lengths): {statistics.mean(values):+.2f}%")
    print(f"{unverified} answer(s) of ours not verified")
    return 1 if unverified else 0


if __name__ == "__main__":
    sys.exit(main())
