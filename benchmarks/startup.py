"""Whole-process wall time of ``formalist solve FILE --json`` against the raw solver run the same way.

Every run is a fresh process (start-up and imports included), as a person at a terminal meets it:

- LP/MPS: ``formalist solve FILE --json`` against a Python script that imports highspy, reads the
  same file and solves it (``examples/transport.lp``, ``examples/production.mps`` and a generated
  transportation LP of 40 x 60 = 2,400 variables written to a temporary folder; the repository ships
  no bigger LP or MPS file). Target: within 1.5x of the raw script plus 0.2 s.
- PDDL: ``formalist solve PROBLEM --domain DOMAIN --json`` against the Fast Downward driver that
  up-fast-downward bundles (``fast-downward.py --alias lama-first DOMAIN PROBLEM``, what formalist
  runs first) on the IPC tasks the repository ships in ``tests/fixtures/pddl`` (blocksworld p08,
  floortile p01, grippers p01, storage p01, tyreworld p20; their domains from
  ``formalizers/pddl/domains``). Target: within 1.5x of the raw driver plus 0.3 s.

The two commands of a case alternate, ``--repeat`` times each, so both see the same machine load;
the script prints the medians, the ratio, the target and whether it is met, and checks that
formalist's answer agrees with the raw run (the same objective; a plan found). Exit status 1 when
a target is missed or an answer disagrees.

    python benchmarks/startup.py [--repeat 7] [--only lp|pddl] [--json startup.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LP_FILES = ("examples/transport.lp", "examples/production.mps")
PDDL_TASKS = (
    ("blocksworld", "tests/fixtures/pddl/blocksworld_p08.pddl"),
    ("floortile", "tests/fixtures/pddl/floortile_p01.pddl"),
    ("grippers", "tests/fixtures/pddl/grippers_p01.pddl"),
    ("storage", "tests/fixtures/pddl/storage_p01.pddl"),
    ("tyreworld", "tests/fixtures/pddl/tyreworld_p20.pddl"),
)
TARGETS = {"lp": (1.5, 0.2), "pddl": (1.5, 0.3)}
"""Per family: formalist's median must be at most ``factor * raw + seconds``."""
RUN_LIMIT_S = 300.0

RAW_HIGHS = """
import sys
import highspy
h = highspy.Highs()
h.setOptionValue("output_flag", False)
if h.readModel(sys.argv[1]) != highspy.HighsStatus.kOk:
    sys.exit(2)
h.run()
print(h.getInfo().objective_function_value)
"""


@dataclass
class Case:
    family: str
    name: str
    raw_s: float
    ours_s: float
    agree: bool
    note: str

    @property
    def target_s(self) -> float:
        factor, extra = TARGETS[self.family]
        return factor * self.raw_s + extra

    @property
    def ok(self) -> bool:
        return self.agree and self.ours_s <= self.target_s


def formalist_command() -> list[str]:
    """The installed ``formalist`` script beside this interpreter, else ``python -m agent.cli``."""
    script = Path(sys.executable).with_name("formalist")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "agent.cli"]


CHILD_ENV: dict[str, str] = {}
"""The environment of the timed processes (set in ``main``)."""


def child_env(pycache: Path) -> dict[str, str]:
    """This environment, but with bytecode caching on (into ``pycache``): an installed formalist
    compiles its sources once, so neither side should pay for compiling on every run (some
    environments set ``PYTHONDONTWRITEBYTECODE``)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def timed(cmd: list[str], cwd: Path) -> tuple[float, subprocess.CompletedProcess[str]]:
    t0 = time.perf_counter()
    proc = subprocess.run(
        cmd,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=RUN_LIMIT_S,
        check=False,
        env=CHILD_ENV or None,
    )
    return time.perf_counter() - t0, proc


def measure(raw: list[str], ours: list[str], repeat: int, cwd: Path) -> tuple[list, list]:
    """One untimed run of each (bytecode, disk cache), then the two commands alternately
    ``repeat`` times; returns (raw runs, our runs)."""
    timed(raw, cwd)
    timed(ours, cwd)
    raws, ourss = [], []
    for _ in range(repeat):
        raws.append(timed(raw, cwd))
        ourss.append(timed(ours, cwd))
    return raws, ourss


def bigger_lp(folder: Path, sources: int = 40, sinks: int = 60) -> Path:
    """A transportation LP (``sources x sinks`` shipments), deterministic, in CPLEX LP format."""
    cost = [[1 + (7 * i + 13 * j) % 23 for j in range(sinks)] for i in range(sources)]
    supply = [150 + (i * 37) % 90 for i in range(sources)]
    demand = [60 + (j * 29) % 50 for j in range(sinks)]
    assert sum(supply) >= sum(demand)
    lines = [
        "Minimize",
        " cost: "
        + " + ".join(f"{cost[i][j]} x_{i}_{j}" for i in range(sources) for j in range(sinks)),
        "Subject To",
    ]
    for i in range(sources):
        lines.append(
            f" supply_{i}: " + " + ".join(f"x_{i}_{j}" for j in range(sinks)) + f" <= {supply[i]}"
        )
    for j in range(sinks):
        lines.append(
            f" demand_{j}: " + " + ".join(f"x_{i}_{j}" for i in range(sources)) + f" >= {demand[j]}"
        )
    lines.append("End")
    path = folder / f"transport_{sources}x{sinks}.lp"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def lp_cases(repeat: int, tmp: Path) -> list[Case]:
    raw_script = tmp / "raw_highs.py"
    raw_script.write_text(RAW_HIGHS, encoding="utf-8")
    files = [ROOT / f for f in LP_FILES] + [bigger_lp(tmp)]
    out = []
    for f in files:
        raws, ourss = measure(
            [sys.executable, str(raw_script), str(f)],
            [*formalist_command(), "solve", str(f), "--json"],
            repeat,
            ROOT,
        )
        agree, note = _same_objective(raws[-1][1], ourss[-1][1])
        out.append(Case("lp", _short(f), _median(raws), _median(ourss), agree, note))
    return out


def _same_objective(
    raw: subprocess.CompletedProcess[str], ours: subprocess.CompletedProcess[str]
) -> tuple[bool, str]:
    if raw.returncode != 0:
        return False, f"raw highspy failed (exit {raw.returncode})"
    if ours.returncode != 0:
        return False, f"formalist exit {ours.returncode}: {ours.stderr.strip()[-200:]}"
    expected = float(raw.stdout.split()[-1])
    got = json.loads(ours.stdout).get("objective")
    same = got is not None and abs(got - expected) <= 1e-6 * max(1.0, abs(expected))
    return same, f"objective {got} (highspy {expected:g})"


def pddl_cases(repeat: int) -> list[Case]:
    from solvers.planning import fast_downward_script  # finds the driver without importing UP

    driver = fast_downward_script()
    out = []
    for domain_name, problem in PDDL_TASKS:
        domain = ROOT / "formalizers/pddl/domains" / domain_name / "domain.pddl"
        with tempfile.TemporaryDirectory(prefix="formalist-startup-") as tmp:
            raw = [
                sys.executable,
                str(driver),
                "--plan-file",
                str(Path(tmp, "plan")),
                "--alias",
                "lama-first",
                str(domain),
                str(ROOT / problem),
            ]
            ours = [
                *formalist_command(),
                "solve",
                str(ROOT / problem),
                "--domain",
                str(domain),
                "--json",
            ]
            raws, ourss = measure(raw, ours, repeat, Path(tmp))
            agree, note = _plans(raws[-1][1], ourss[-1][1], Path(tmp, "plan"))
        out.append(Case("pddl", _short(ROOT / problem), _median(raws), _median(ourss), agree, note))
    return out


def _plans(
    raw: subprocess.CompletedProcess[str],
    ours: subprocess.CompletedProcess[str],
    raw_plan: Path,
) -> tuple[bool, str]:
    """Both found a plan (an empty one when the goal holds at the start) and ours is verified."""
    if raw.returncode != 0 or not raw_plan.is_file():
        return False, f"raw Fast Downward found no plan (exit {raw.returncode})"
    if ours.returncode != 0:
        return False, f"formalist exit {ours.returncode}: {ours.stderr.strip()[-200:]}"
    raw_steps = sum(1 for line in raw_plan.read_text().splitlines() if line.strip().startswith("("))
    answer = json.loads(ours.stdout)
    steps = len(answer.get("plan") or [])
    ok = answer.get("status") in ("OPTIMAL", "FEASIBLE") and bool(answer.get("verified"))
    return ok, (
        f"{answer.get('status')}, plan of {steps} steps (FD {raw_steps}), "
        f"verified={answer.get('verified')}"
    )


def _median(runs: list[tuple[float, subprocess.CompletedProcess[str]]]) -> float:
    return statistics.median(t for t, _ in runs)


def _short(p: Path) -> str:
    try:
        return str(p.relative_to(ROOT))
    except ValueError:
        return p.name


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    ap.add_argument("--repeat", type=int, default=7, help="runs of each command (median)")
    ap.add_argument("--only", choices=sorted(TARGETS), help="one family of cases")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = ap.parse_args(argv)
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    cases: list[Case] = []
    with tempfile.TemporaryDirectory(prefix="formalist-startup-") as tmp:
        CHILD_ENV.update(child_env(Path(tmp, "pycache")))
        if args.only in (None, "lp"):
            cases += lp_cases(args.repeat, Path(tmp))
        if args.only in (None, "pddl"):
            cases += pddl_cases(args.repeat)
    print(
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}, {args.repeat} runs each, medians"
    )
    print(f"{'case':44s} {'raw s':>7s} {'ours s':>7s} {'ratio':>6s} {'target s':>9s}  met  answer")
    for c in cases:
        print(
            f"{c.name:44s} {c.raw_s:7.3f} {c.ours_s:7.3f} {c.ours_s / c.raw_s:6.2f} "
            f"{c.target_s:9.3f}  {'yes' if c.ok else 'NO ':3s}  {c.note}"
        )
    for family, (factor, extra) in TARGETS.items():
        fam = [c for c in cases if c.family == family]
        if fam:
            met = sum(c.ok for c in fam)
            print(f"{family}: {met}/{len(fam)} within {factor}x raw + {extra} s")
    if args.json:
        Path(args.json).write_text(
            json.dumps([asdict(c) | {"target_s": c.target_s, "ok": c.ok} for c in cases], indent=1),
            encoding="utf-8",
        )
        print(f"wrote {Path(args.json).resolve()}")
    return 0 if all(c.ok for c in cases) else 1


if __name__ == "__main__":
    sys.exit(main())
