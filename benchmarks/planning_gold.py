"""The 140 LLM+P gold problems through formalist's planning path and through raw Fast Downward.

For each task: ours = read and check the files, plan with the default ``auto`` portfolio (Fast Downward
lama-first for half the limit, then SymK), validate the plan
(unified-planning's validator, or simulation where UP cannot read the files); raw = the bundled Fast
Downward driver with ``--alias lama-first`` on the same files, counted solved when it writes a plan.
Both run under the same wall-clock limit. Prints solved counts per domain and writes JSON lines.

    python benchmarks/planning_gold.py [--data DIR] [--limit-s 60] [--domains a,b] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from agent.agent import Agent
from agent.config import Config
from agent.types import Request
from solvers.planning import _kill_group, fast_downward_script

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "llmp" / "domains"
DOMAINS = ("barman", "blocksworld", "floortile", "grippers", "storage", "termes", "tyreworld")


def domain_file(data: Path, domain: str) -> Path:
    return data / domain / ("domain_validation.pddl" if domain == "tyreworld" else "domain.pddl")


def raw_fd(domain: Path, problem: Path, limit_s: float) -> tuple[bool, float]:
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        plan = Path(tmp, "plan")
        cmd = [
            sys.executable,
            str(fast_downward_script()),
            "--plan-file",
            str(plan),
            "--alias",
            "lama-first",
            str(domain),
            str(problem),
        ]
        proc = subprocess.Popen(
            cmd,
            cwd=tmp,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            text=True,
        )
        try:
            proc.wait(timeout=limit_s)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
        return plan.is_file(), time.perf_counter() - t0


def ours(agent: Agent, domain: Path, problem: Path) -> tuple[bool, float, str]:
    t0 = time.perf_counter()
    answer = agent.solve(
        Request(problem.read_text(), problem.name, "pddl", extra={"domain": domain.read_text()})
    )
    ok = answer.plan is not None and answer.verified
    return ok, time.perf_counter() - t0, answer.status.value


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--limit-s", type=float, default=60.0)
    ap.add_argument("--domains", default=",".join(DOMAINS))
    ap.add_argument("--out", default="")
    args = ap.parse_args(argv)
    data = Path(args.data)
    agent = Agent(config=Config(cache="", time_limit=args.limit_s))
    solved: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    out = open(args.out, "a") if args.out else None
    for d in args.domains.split(","):
        dom = domain_file(data, d)
        for prob in sorted(data.joinpath(d).glob("p[0-9]*.pddl")):
            ok, t_ours, status = ours(agent, dom, prob)
            raw_ok, t_raw = raw_fd(dom, prob, args.limit_s)
            solved[d][0] += ok
            solved[d][1] += raw_ok
            solved[d][2] += 1
            line = {
                "domain": d,
                "task": prob.stem,
                "ours": ok,
                "ours_status": status,
                "ours_s": round(t_ours, 3),
                "raw": raw_ok,
                "raw_s": round(t_raw, 3),
            }
            print(json.dumps(line), flush=True)
            if out:
                out.write(json.dumps(line) + "\n")
                out.flush()
    print(f"{'domain':12s} {'ours':>6s} {'raw FD':>7s} {'tasks':>6s}")
    for d, (a, b, n) in solved.items():
        print(f"{d:12s} {a:6d} {b:7d} {n:6d}")
    tot = [sum(v[i] for v in solved.values()) for i in range(3)]
    print(f"{'total':12s} {tot[0]:6d} {tot[1]:7d} {tot[2]:6d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
