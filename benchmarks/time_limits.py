"""Wall time over ``--time-limit``, per kind, measured as the person sees it.

    .venv/bin/python -m benchmarks.time_limits [--limits 2,10] [--routing 1000,5000] [--kinds K,...]

Each case is a whole ``formalist solve FILE --json --time-limit T`` process (interpreter start,
imports, reading, building, solving, checking and printing all counted) on an input generated
here, hard enough to use its whole limit:

- ``milp``: a multi-dimensional 0-1 knapsack in CPLEX LP format (HiGHS proves no optimum soon);
- ``pddl``: blocksworld with many blocks, asking for a proven-optimal plan;
- ``asp``: the pigeonhole principle (one pigeon too many: unsatisfiable, exponential for clingo),
  and a large four-colouring that minimises one colour (models found, each to be checked: the
  check's share of the limit is exercised);
- ``routing``: a random CVRP of up to 5,000 clients (VRPLIB, EUC_2D).

Prints one row per case (kind, size, limit, wall, over, status, verified) and the load average
before and after, and fails when a run ends more than ``--slack`` seconds (default 1) after its
limit. The limit counts from when the ``formalist`` process began (``agent.cli.process_age``), so
the interpreter's start-up and imports come out of it too; that start-up is printed on its own
(``formalist --help``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORMALIST = [sys.executable, "-m", "agent.cli"]


def knapsack_lp(n: int, m: int, seed: int = 1) -> str:
    """A multi-dimensional 0-1 knapsack: ``n`` items, ``m`` capacity rows, correlated weights."""
    rng = random.Random(seed)
    weights = [[rng.randint(10, 100) for _ in range(n)] for _ in range(m)]
    profit = [sum(w[j] for w in weights) // m + rng.randint(0, 10) for j in range(n)]
    lines = ["Maximize", " obj: " + " + ".join(f"{profit[j]} x{j}" for j in range(n)), "Subject To"]
    for i, w in enumerate(weights):
        lines.append(
            f" c{i}: " + " + ".join(f"{w[j]} x{j}" for j in range(n)) + f" <= {sum(w) // 2}"
        )
    lines += ["Binary", " " + " ".join(f"x{j}" for j in range(n)), "End", ""]
    return "\n".join(lines)


def blocksworld(n: int, seed: int = 1) -> str:
    """A blocksworld-4ops problem: ``n`` blocks in random towers, to be stacked in another."""
    rng = random.Random(seed)
    blocks = [f"b{i}" for i in range(1, n + 1)]

    def towers() -> list[str]:
        order = blocks[:]
        rng.shuffle(order)
        facts, below = [], None
        for b in order:
            if below is None or rng.random() < 0.3:
                facts.append(f"(on-table {b})")
            else:
                facts.append(f"(on {b} {below})")
            below = b
        return facts

    init = towers()
    tops = {b for b in blocks} - {f.split()[2].rstrip(")") for f in init if f.startswith("(on ")}
    init += [f"(clear {b})" for b in sorted(tops)] + ["(arm-empty)"]
    goal = [f for f in towers() if f.startswith("(on ")]
    return (
        f"(define (problem bw-{n}) (:domain blocksworld-4ops)\n"
        f"(:objects {' '.join(blocks)})\n(:init {' '.join(init)})\n"
        f"(:goal (and {' '.join(goal)})))\n"
    )


def pigeonhole(holes: int) -> str:
    """``holes + 1`` pigeons, each in exactly one of ``holes`` holes, at most one per hole."""
    return (
        f"pigeon(1..{holes + 1}). hole(1..{holes}).\n"
        "1 { in(P, H) : hole(H) } 1 :- pigeon(P).\n"
        ":- hole(H), #count { P : in(P, H) } > 1.\n"
        "#show in/2.\n"
    )


def cvrp(n: int, seed: int = 7) -> str:
    """A random CVRP in VRPLIB format: ``n`` clients on a 10,000-square grid, demands 1..9."""
    rng = random.Random(seed)
    lines = [
        f"NAME : gen{n}",
        "TYPE : CVRP",
        f"DIMENSION : {n + 1}",
        "EDGE_WEIGHT_TYPE : EUC_2D",
        "CAPACITY : 100",
        "NODE_COORD_SECTION",
    ]
    lines += [f"{i} {rng.randint(0, 10_000)} {rng.randint(0, 10_000)}" for i in range(1, n + 2)]
    lines += ["DEMAND_SECTION", "1 0"] + [f"{i} {rng.randint(1, 9)}" for i in range(2, n + 2)]
    lines += ["DEPOT_SECTION", "1", "-1", "EOF", ""]
    return "\n".join(lines)


def cases(out: Path, routing_sizes: list[int]) -> list[tuple[str, str, Path, list[str]]]:
    """(kind, size, file, extra arguments) for every case, its file written under ``out``."""
    made: list[tuple[str, str, Path, list[str]]] = []
    lp = out / "knapsack.lp"
    lp.write_text(knapsack_lp(400, 30))
    made.append(("milp", "400 binaries x 30 rows", lp, []))
    bw = out / "blocksworld.pddl"
    bw.write_text(blocksworld(30))
    made.append(("pddl", "30 blocks, --optimal", bw, ["--optimal"]))
    asp = out / "pigeonhole.lp"
    asp.write_text(pigeonhole(14))
    made.append(("asp", "15 pigeons, 14 holes", asp, ["--kind", "asp"]))
    from benchmarks.asp_verify_cost import colouring

    col = out / "colouring.lp"
    col.write_text(colouring(8000, optimize=True))
    made.append(("asp", "8,000-node colouring, min", col, ["--kind", "asp"]))
    for n in routing_sizes:
        path = out / f"cvrp{n}.vrp"
        path.write_text(cvrp(n))
        made.append(("routing", f"{n:,} clients", path, []))
    return made


def run(path: Path, limit: float, extra: list[str]) -> tuple[float, str, str]:
    """(wall seconds, status, verified) of one whole ``formalist solve`` process."""
    cmd = [*FORMALIST, "solve", str(path), "--json", "--time-limit", f"{limit:g}", *extra]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=limit * 10 + 120)
    wall = time.perf_counter() - t0
    try:
        out = json.loads(done.stdout)
        status = str(out["status"])
        checked = out.get("verification")
        verified = "yes" if out.get("verified") else ("no" if checked else "-")
    except (ValueError, KeyError, TypeError):
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        status, verified = f"exit {done.returncode}: {tail[0][:60]}", "-"
    return wall, status, verified


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limits", default="2,10", help="time limits to try, seconds (default 2,10)")
    ap.add_argument("--routing", default="1000,5000", help="routing sizes (clients)")
    ap.add_argument("--slack", type=float, default=1.0, help="allowed seconds over (default 1)")
    ap.add_argument("--kinds", default="milp,pddl,asp,routing", help="kinds to run")
    ap.add_argument("--out", help="keep the generated inputs in this folder")
    args = ap.parse_args(argv)
    limits = [float(x) for x in args.limits.split(",")]
    sizes = [int(x) for x in args.routing.split(",") if x]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out) if args.out else Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        subprocess.run([*FORMALIST, "--help"], cwd=ROOT, capture_output=True, check=False)
        startup = time.perf_counter() - t0
        print(f"start-up (formalist --help): {startup:.2f} s")
        print("load average before: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
        print(f"{'kind':8} {'size':26} {'limit':>6} {'wall':>7} {'over':>6}  {'status':9} verified")
        failures = 0
        kinds = set(args.kinds.split(","))
        for kind, size, path, extra in cases(out, sizes):
            if kind not in kinds:
                continue
            for limit in limits:
                wall, status, verified = run(path, limit, extra)
                over = wall - limit
                bad = over > args.slack
                failures += bad
                mark = "  OVER" if bad else ""
                print(
                    f"{kind:8} {size:26} {limit:6g} {wall:7.2f} {over:+6.2f}  {status:9} "
                    f"{verified}{mark}",
                    flush=True,
                )
    print("load average after: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    print(f"{failures} run(s) more than {args.slack:g} s over their limit")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
