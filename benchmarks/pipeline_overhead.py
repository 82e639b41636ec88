"""What formalist's optimization path costs on top of the solver.

For every NL4Opt dev problem whose gold declarations give an optimum, it times, in one process:

- ours: the five-element JSON data -> schema validation -> compile (parse, symbol checks, expansion)
  -> HiGHS solve -> independent verification (expression caches cleared first, so every run parses);
- raw: the same linear program handed to highspy as ready-made arrays (build, run, read the solution).

It prints the median time of each path per problem (over ``--repeat`` runs), then the median over
problems of each, and the ratio. Targets: ours within 3x raw, and under 50 ms.

    python benchmarks/pipeline_overhead.py [--repeat 7] [--data FILE] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.nl4opt import convert, load
from formalizers.milp.expr import clear_caches
from formalizers.milp.linear import LinearModel, compile_model
from formalizers.milp.model import FiveElementModel
from formalizers.offline.milp_files import load_highspy
from solvers import highs
from solvers.base import Limits, Status
from solvers.verify import verify_linear

FIXTURE = (
    Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "nl4opt" / "dev_declarations.jsonl"
)


def ours(data: dict[str, Any]) -> float:
    clear_caches()
    model = FiveElementModel.model_validate(data)
    lm = compile_model(model)
    result = highs.solve(lm, Limits(time_s=10))
    assert result.status is Status.OPTIMAL and result.objective is not None
    assert verify_linear(lm, result).ok
    return result.objective


def arrays(lm: LinearModel) -> dict[str, Any]:
    """The LP as highspy wants it, built once outside the timed region."""
    hs = load_highspy()
    inf = hs.kHighsInf
    n = len(lm.columns)
    cost = np.zeros(n)
    for c, a in lm.objective.items():
        cost[c] = a
    starts: list[int] = []
    idx: list[int] = []
    val: list[float] = []
    for row in lm.rows:
        starts.append(len(idx))
        idx.extend(row.coeffs)
        val.extend(row.coeffs.values())

    def f(x: float) -> float:
        return inf if x == float("inf") else -inf if x == float("-inf") else x

    return {
        "n": n,
        "cost": cost,
        "lo": np.array([f(c.lower) for c in lm.columns]),
        "hi": np.array([f(c.upper) for c in lm.columns]),
        "m": len(lm.rows),
        "rlo": np.array([f(r.lower) for r in lm.rows]),
        "rhi": np.array([f(r.upper) for r in lm.rows]),
        "starts": np.array(starts, dtype=np.int32),
        "idx": np.array(idx, dtype=np.int32),
        "val": np.array(val),
        "max": lm.sense == "maximize",
    }


def raw(a: dict[str, Any]) -> float:
    hs = load_highspy()
    h = hs.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", 10.0)
    h.addCols(
        a["n"],
        a["cost"],
        a["lo"],
        a["hi"],
        0,
        np.zeros(0, np.int32),
        np.zeros(0, np.int32),
        np.zeros(0),
    )
    h.addRows(a["m"], a["rlo"], a["rhi"], len(a["idx"]), a["starts"], a["idx"], a["val"])
    if a["max"]:
        h.changeObjectiveSense(hs.ObjSense.kMaximize)
    h.run()
    _ = h.getSolution().col_value
    return float(h.getInfo().objective_function_value)


def timed(fn: Any, arg: Any, repeat: int) -> tuple[float, float]:
    times = []
    value = 0.0
    for _ in range(repeat):
        t0 = time.perf_counter()
        value = fn(arg)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), value


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--data", default=str(FIXTURE))
    ap.add_argument("--json", help="write the per-problem figures here")
    ap.add_argument(
        "--pyomo",
        action="store_true",
        help="also time the Pyomo backend (build a Pyomo model, solve)",
    )
    args = ap.parse_args(argv)

    cases = []
    for item in load(args.data):
        try:
            model = convert(item)
            lm = compile_model(model)
        except Exception:
            continue
        if highs.solve(lm).status is not Status.OPTIMAL:
            continue
        cases.append((item.id, model.model_dump(mode="json"), arrays(lm)))
    # warm both paths once (imports, HiGHS's first-instance banner)
    ours(cases[0][1])
    raw(cases[0][2])
    rows: list[dict[str, Any]] = []
    for item_id, data, arr in cases:
        t_ours, v_ours = timed(ours, data, args.repeat)
        t_raw, v_raw = timed(raw, arr, args.repeat)
        assert abs(v_ours - v_raw) <= 1e-6 * max(1.0, abs(v_raw)), (item_id, v_ours, v_raw)
        rows.append(
            {"id": item_id, "ours_ms": t_ours * 1e3, "raw_ms": t_raw * 1e3, "ratio": t_ours / t_raw}
        )
    med_ours = statistics.median(float(r["ours_ms"]) for r in rows)
    med_raw = statistics.median(float(r["raw_ms"]) for r in rows)
    ratios = [float(r["ratio"]) for r in rows]
    print(
        f"problems: {len(rows)} NL4Opt dev gold models solved to optimality, {args.repeat} runs each"
    )
    print(f"ours (validate + compile + solve + verify): median {med_ours:.3f} ms")
    print(f"raw highspy (arrays -> run -> solution):    median {med_raw:.3f} ms")
    print(
        f"ratio of medians: {med_ours / med_raw:.2f}x   (median of per-problem ratios "
        f"{statistics.median(ratios):.2f}x; worst {max(ratios):.2f}x)"
    )
    print(
        f"targets: ratio <= 3.0 -> {'met' if med_ours / med_raw <= 3 else 'NOT met'}; "
        f"median < 50 ms -> {'met' if med_ours < 50 else 'NOT met'}"
    )
    if args.pyomo:
        from solvers import pyomo_backend

        lms = [compile_model(FiveElementModel.model_validate(data)) for _, data, _ in cases]
        pyomo_backend.solve(lms[0])
        t_pyomo = statistics.median(timed(pyomo_backend.solve, lm, 3)[0] * 1e3 for lm in lms)
        print(
            f"pyomo backend (Pyomo model -> HiGHS), compiled model given: median {t_pyomo:.3f} ms "
            f"= {t_pyomo / med_raw:.1f}x raw highspy"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
