"""What the independent check of an answer set costs next to the solve that found it.

Generates a large clingo program (graph colouring: ``--nodes`` nodes and 1.8 times as many edges as
facts, about 84,000 lines at the default size; ``--optimize`` also minimises the nodes given colour
``r``), then, ``--repeat`` times, solves it and verifies the answer set, each in
its own clingo worker as the agent does. Prints each time, the ratio verify / solve and whether the
check fits the budget the ASP kind gives it (``agent.kinds.asp.verify_limits``: three times the
solve's wall time, at least 5 s).

    python benchmarks/asp_verify_cost.py [--nodes 30000] [--repeat 3] [--optimize]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time

from agent.kinds.asp import verify_limits
from solvers import clingo_backend
from solvers.asp_verify import verify_asp
from solvers.base import Limits


def colouring(nodes: int, seed: int = 1, optimize: bool = False) -> str:
    """A random four-colouring program: ``nodes`` node facts, 1.8 x ``nodes`` edge facts."""
    rng = random.Random(seed)
    edges: set[tuple[int, int]] = set()
    while len(edges) < int(1.8 * nodes):
        a, b = rng.randrange(nodes), rng.randrange(nodes)
        if a < b:
            edges.add((a, b))
    lines = [f"node({i})." for i in range(nodes)]
    lines += [f"edge({a},{b})." for a, b in sorted(edges)]
    lines += [
        "col(r). col(g). col(b). col(y).",
        "1 { color(X,C) : col(C) } 1 :- node(X).",
        ":- edge(X,Y), color(X,C), color(Y,C).",
        "#show color/2.",
    ]
    if optimize:
        lines.append("#minimize { 1,X : color(X,r) }.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--nodes", type=int, default=30000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--time-limit", type=float, default=120.0)
    ap.add_argument("--optimize", action="store_true", help="minimise the red nodes too")
    args = ap.parse_args(argv)
    program = colouring(args.nodes, optimize=args.optimize)
    print(f"program: {program.count(chr(10))} lines")
    ratios, fits = [], 0
    for n in range(args.repeat):
        t0 = time.perf_counter()
        result = clingo_backend.solve(program, Limits(time_s=args.time_limit))
        solve_s = time.perf_counter() - t0
        if result.answer_set is None:
            print(f"run {n + 1}: no answer set ({result.status}: {result.message})")
            return 1
        budget = verify_limits(result)
        t0 = time.perf_counter()
        check = verify_asp(program, result, Limits(time_s=args.time_limit))
        verify_s = time.perf_counter() - t0
        ratios.append(verify_s / solve_s)
        fits += verify_s <= budget.time_s and check.ok
        print(
            f"run {n + 1}: {result.status.value}, solve {solve_s:.2f} s, verify {verify_s:.2f} s "
            f"(ratio {verify_s / solve_s:.2f}, budget {budget.time_s:.1f} s), verified {check.ok}"
        )
    print(
        f"median ratio verify/solve {statistics.median(ratios):.2f}x; "
        f"{fits}/{args.repeat} checks within their budget (target: all, ratio well under 3)"
    )
    return 0 if fits == args.repeat else 1


if __name__ == "__main__":
    sys.exit(main())
