"""What formalist's planning path costs on top of Fast Downward, on the 20 LLM+P blocksworld tasks.

ours: read and check the files, plan with the default portfolio (lama-first, which solves
these before SymK would start), validate the plan and its cost by simulation
(``formalizers.pddl.simulate``), explain it. raw: the bundled Fast
Downward driver alone (``--alias lama-first``) on the same files. Both in this process, alternating,
``--repeat`` times per task; prints the medians, their ratio and the sums. Target: within 1.2x.

    python benchmarks/planning_overhead.py [--data DIR] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from agent.agent import Agent
from agent.config import Config
from agent.types import Request
from benchmarks.planning_gold import DEFAULT_DATA, raw_fd


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    folder = Path(args.data) / "blocksworld"
    domain = folder / "domain.pddl"
    problems = sorted(folder.glob("p[0-9]*.pddl"))
    if not problems:
        print(f"no blocksworld problems under {folder}", file=sys.stderr)
        return 2
    agent = Agent(config=Config(cache="", time_limit=60))
    dom_text = domain.read_text()

    def ours(p: Path) -> float:
        t0 = time.perf_counter()
        answer = agent.solve(Request(p.read_text(), p.name, "pddl", extra={"domain": dom_text}))
        assert answer.verified, (p, answer.status, answer.error)
        return time.perf_counter() - t0

    ours(problems[0])  # warm imports and the planner's byte code
    raw_fd(domain, problems[0], 60)
    t_ours, t_raw = [], []
    for p in problems:
        o, r = [], []
        for _ in range(args.repeat):
            o.append(ours(p))
            ok, t = raw_fd(domain, p, 60)
            assert ok, p
            r.append(t)
        t_ours.append(statistics.median(o))
        t_raw.append(statistics.median(r))
    mo, mr = statistics.median(t_ours), statistics.median(t_raw)
    print(f"{len(problems)} blocksworld tasks, {args.repeat} runs each (median per task)")
    print(
        f"ours (check + plan + validation + explanation):    median {mo * 1000:.1f} ms, sum {sum(t_ours):.2f} s"
    )
    print(
        f"raw Fast Downward lama-first:                      median {mr * 1000:.1f} ms, sum {sum(t_raw):.2f} s"
    )
    print(
        f"ratio of medians {mo / mr:.2f}x, ratio of sums {sum(t_ours) / sum(t_raw):.2f}x (target <= 1.2)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
