"""Classical planning with Fast Downward (the build bundled in up-fast-downward), SymK and pyperplan.

The planner runs as a child process in its own session: the time limit holds because the whole
process group is killed when it runs out, and the child is always reaped. The PDDL text goes to the
planner as written. Plans are checked by ``formalizers.pddl.simulate``, which shares no code with the
planners; nothing here imports unified-planning (it took most of a planning request's time).
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from functools import cache
from pathlib import Path

from agent.errors import SolverFault
from solvers.base import Limits, SolveResult, Status, Supports

SATISFICING_ALIAS = "lama-first"
OPTIMAL_ALIAS = "seq-opt-lmcut"
SYMK_SEARCH = "sym_bd()"
"""SymK's bidirectional symbolic search: optimal, and strong where heuristic search meets dead ends
that delete relaxations cannot see (floortile: a painted tile can never be stood on again)."""

PORTFOLIO_SHARE = 0.5
"""In the ``auto`` portfolio, the share of the time limit the first planner gets before SymK."""

# Fast Downward's exit codes (driver/returncodes.py); SymK is built on Fast Downward and keeps them.
_UNSOLVABLE = {10, 11}
_INCOMPLETE = {12}
_PLAN_FOUND = {0, 1, 2, 3}
_OUT_OF_RESOURCES = {20, 21, 22, 23, 24}
_INPUT_ERRORS = {30, 31, 32, 33, 34, 35, 36, 37}


_UNSUPPORTED = {34, 37}
"""The planner cannot handle the task's features (conditional effects or axioms for LM-cut, say):
the ``auto`` portfolio passes such a task on to SymK."""


def _driver(package: str, pip_name: str) -> Path:
    # Found without importing the package: importing up_fast_downward loads unified-planning
    # (most of a second), which would eat into the planner's time limit.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SolverFault(f"{pip_name} is not installed; run `pip install {pip_name}`")
    base = Path(next(iter(spec.submodule_search_locations)))
    path = base / ("downward" if package == "up_fast_downward" else "symk") / "fast-downward.py"
    if not path.is_file():
        raise SolverFault(f"the planner driver is missing from {pip_name} ({path})")
    return path


@cache
def fast_downward_script() -> Path:
    """The bundled ``fast-downward.py`` driver; ``SolverFault`` when up-fast-downward is missing."""
    return _driver("up_fast_downward", "up-fast-downward")


@cache
def symk_script() -> Path:
    """SymK's ``fast-downward.py`` driver (from up-symk); ``SolverFault`` when it is missing."""
    return _driver("up_symk", "up-symk")


def format_action(name: str, args: list[str] | tuple[str, ...]) -> str:
    """``drive(van1, depot, mill)``."""
    return f"{name}({', '.join(args)})"


_COST = re.compile(r"^;\s*cost\s*=\s*(\d+(?:\.\d+)?)", re.M)


def plan_cost(text: str, plan: list[str]) -> float:
    """A plan file's cost (its ``; cost = N`` line, which counts action costs), else its length."""
    m = _COST.search(text)
    return float(m.group(1)) if m else float(len(plan))


def read_plan_file(text: str) -> list[str]:
    """Fast Downward's plan file (``(pickup b1)`` per line, ``;`` comments) as action strings."""
    plan = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("(") and line.endswith(")"):
            parts = line[1:-1].split()
            plan.append(format_action(parts[0], parts[1:]))
    return plan


def run_fast_downward(
    domain: str, problem: str, limits: Limits, optimal: bool = False, memory_mb: int = 4096
) -> SolveResult:
    """Plan with Fast Downward (``lama-first``, or ``seq-opt-lmcut`` when ``optimal``).

    Statuses: OPTIMAL (optimal search found a plan), FEASIBLE (satisficing plan), INFEASIBLE (the
    planner proved no plan exists, or exhausted its search space), TIMEOUT, ERROR (the planner
    rejected the input or ran out of memory; ``message`` holds its last words).
    """
    alias = OPTIMAL_ALIAS if optimal else SATISFICING_ALIAS
    return _run_downward(
        fast_downward_script(),
        f"fast-downward:{alias}",
        ["--alias", alias],
        [],
        domain,
        problem,
        limits,
        optimal,
        memory_mb,
    )


def run_symk(domain: str, problem: str, limits: Limits, memory_mb: int = 4096) -> SolveResult:
    """Plan with SymK's bidirectional symbolic search (always optimal); statuses as
    ``run_fast_downward``'s."""
    return _run_downward(
        symk_script(),
        "symk:sym_bd",
        [],
        ["--search", SYMK_SEARCH],
        domain,
        problem,
        limits,
        True,
        memory_mb,
    )


def _run_downward(
    script: Path,
    name: str,
    options: list[str],
    search: list[str],
    domain: str,
    problem: str,
    limits: Limits,
    optimal: bool,
    memory_mb: int,
) -> SolveResult:
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="formalist-fd-") as tmp:
        d, p, plan_file = Path(tmp, "domain.pddl"), Path(tmp, "problem.pddl"), Path(tmp, "plan")
        d.write_text(domain, encoding="utf-8")
        p.write_text(problem, encoding="utf-8")
        cmd = [
            sys.executable,
            str(script),
            "--plan-file",
            str(plan_file),
            "--overall-memory-limit",
            f"{memory_mb}M",
            *options,
            str(d),
            str(p),
            *search,
        ]
        code, out = _run(cmd, tmp, _left(limits, t0))
        elapsed = time.perf_counter() - t0
        if code is None:
            return SolveResult(
                Status.TIMEOUT, name, time_s=elapsed, message=f"no plan within {limits.time_s:g} s"
            )
        if code in _PLAN_FOUND and plan_file.is_file():
            text = plan_file.read_text(encoding="utf-8")
            plan = read_plan_file(text)
            status = Status.OPTIMAL if optimal and code == 0 else Status.FEASIBLE
            return SolveResult(
                status,
                name,
                plan_cost(text, plan),
                time_s=elapsed,
                message="plan found",
                plan=tuple(plan),
            )
    if code in _UNSOLVABLE:
        return SolveResult(
            Status.INFEASIBLE,
            name,
            time_s=elapsed,
            message="no plan exists: the planner proved the goal unreachable",
        )
    if code in _INCOMPLETE:
        return SolveResult(
            Status.INFEASIBLE,
            name,
            time_s=elapsed,
            message="no plan exists: the search space was exhausted",
        )
    if code in _OUT_OF_RESOURCES:
        status = Status.TIMEOUT if code in (21, 23) else Status.ERROR
        return SolveResult(
            status,
            name,
            time_s=elapsed,
            message=f"the planner ran out of {'time' if status is Status.TIMEOUT else 'memory'}",
        )
    tail = " | ".join(line for line in out.strip().splitlines()[-4:])
    if code in _UNSUPPORTED:
        return SolveResult(
            Status.ERROR,
            name,
            time_s=elapsed,
            message=f"the planner does not support this task (exit {code}): {tail[:500]}",
        )
    return SolveResult(
        Status.ERROR,
        name,
        time_s=elapsed,
        message=f"the planner failed (exit {code}): {tail[:500]}",
    )


def run_portfolio(
    domain: str,
    problem: str,
    limits: Limits,
    optimal: bool = False,
    share: float = PORTFOLIO_SHARE,
) -> SolveResult:
    """Fast Downward for ``share`` of the time limit, then SymK for the rest.

    Satisficing: lama-first first (fast on most domains), then SymK where it timed out (floortile's
    dead ends stop lama; symbolic search solves those tasks in seconds). Optimal: LM-cut A* first,
    then SymK. A plan, a proof that none exists or an input error from the first planner ends the
    run; a timeout, running out of memory or a task the first planner does not support (LM-cut
    and conditional effects) passes the task on. Without up-symk, Fast Downward gets the whole
    limit. The result says which planner answered, and its message says when the first one gave
    up."""
    t0 = time.perf_counter()
    try:
        symk_script()
    except SolverFault:
        return run_fast_downward(domain, problem, limits, optimal)
    first = run_fast_downward(domain, problem, Limits(time_s=limits.time_s * share), optimal)
    passed_on = first.status is Status.ERROR and (
        "ran out of memory" in first.message or "does not support" in first.message
    )
    if first.status is not Status.TIMEOUT and not passed_on:
        return first
    left = limits.time_s - (time.perf_counter() - t0)
    if left <= 0.05:
        return dataclasses.replace(first, message=f"no plan within {limits.time_s:g} s")
    second = run_symk(domain, problem, Limits(time_s=left))
    why = f"{first.solver} stopped after {first.time_s:.1f} s ({first.message}); "
    then = second.message
    if second.status is Status.TIMEOUT:
        then = (
            f"{second.solver} found none in the {left:.1f} s left of the {limits.time_s:g} s limit"
        )
    return dataclasses.replace(second, time_s=time.perf_counter() - t0, message=why + then)


def plan_symk(domain: str, problem: str, limits: Limits, optimal: bool = False) -> SolveResult:
    """``run_symk`` with the planners' common arguments (SymK's plans are always optimal)."""
    return run_symk(domain, problem, limits)


def run_planner(
    domain: str, problem: str, limits: Limits, optimal: bool = False, planner: str = "auto"
) -> SolveResult:
    """Plan with ``planner`` (a planning backend of ``solvers.registry``: ``auto`` is the Fast
    Downward then SymK portfolio) under ``limits``. A domain that uses PDDL the planner does not
    declare gets ``UNSUPPORTED`` naming it, before the planner runs."""
    from solvers import registry

    try:
        registry.declaration(planner)
    except KeyError as e:
        raise SolverFault(str(e.args[0])) from e
    return registry.solve_with(
        planner, "pddl", pddl_features(domain), domain, domain, problem, limits, optimal
    )


PDDL_FEATURES = {
    ":functions": "numeric functions (action costs)",
    ":derived": "derived predicates",
    "when": "conditional effects",
    "forall": "universal quantifiers",
    "exists": "existential quantifiers",
    "or": "disjunctive preconditions",
    "imply": "implications",
}
"""PDDL beyond STRIPS with types and negative preconditions, by the keyword that marks it: the
features a planning domain is declared with (``pddl_features``) and planners declare."""

STRIPS = "STRIPS with types"


def pddl_features(domain: str) -> frozenset[str]:
    """The features ``domain`` uses (``STRIPS``, and those of ``PDDL_FEATURES`` whose keyword
    occurs outside comments)."""
    code = re.sub(r";[^\n]*", "", domain.lower())
    words = set(re.findall(r"\(\s*(:?[a-z][a-z-]*)", code))
    return frozenset({STRIPS, *(what for word, what in PDDL_FEATURES.items() if word in words)})


def pyperplan_unsupported(domain: str) -> str:
    """What of ``domain`` pyperplan cannot read ("" when nothing), by its declaration
    (``PYPERPLAN``): it fails on the rest with a bare parser traceback."""
    return ", ".join(
        what
        for what in PDDL_FEATURES.values()
        if what in pddl_features(domain) - PYPERPLAN.features
    )


_EVERY_FEATURE = frozenset({STRIPS, *PDDL_FEATURES.values()})
_PLANNER_MODULES = {"fd": ("up_fast_downward",), "symk": ("up_symk",)}

FAST_DOWNWARD = Supports(
    name="fast-downward",
    kinds=("pddl", "apis"),  # apis: its requests are planned as PDDL by Fast Downward
    features=_EVERY_FEATURE,
    summary="Fast Downward (lama-first; seq-opt-lmcut when optimal), the up-fast-downward build",
    modules=_PLANNER_MODULES["fd"],
)
SYMK = Supports(
    name="symk",
    kinds=("pddl",),
    features=_EVERY_FEATURE,
    summary="SymK's bidirectional symbolic search (always optimal), the up-symk build",
    modules=_PLANNER_MODULES["symk"],
)
PORTFOLIO = Supports(
    name="auto",
    kinds=("pddl",),
    features=_EVERY_FEATURE,
    summary="portfolio: Fast Downward for half the time limit, then SymK",
    modules=_PLANNER_MODULES["fd"] + _PLANNER_MODULES["symk"],
)
PYPERPLAN = Supports(
    name="pyperplan",
    kinds=("pddl",),
    features=frozenset({STRIPS}),
    summary="pyperplan (greedy best-first with hFF; A* with LM-cut when optimal), pure Python",
    modules=("pyperplan",),
)
"""The planners, as ``solvers.registry`` lists them (the portfolio as ``auto``)."""


def run_pyperplan(domain: str, problem: str, limits: Limits, optimal: bool = False) -> SolveResult:
    """Plan with pyperplan (greedy best-first with hFF, or A* with LM-cut when ``optimal``).

    pyperplan has no time limit of its own, so it runs as a child process that the limit kills.
    It reports an exhausted search as "no solution"; with A* that proves no plan exists.
    """
    try:
        import pyperplan  # noqa: F401
    except ImportError as e:
        raise SolverFault(f"pyperplan is not installed ({e}); run `pip install pyperplan`") from e
    search, heuristic = ("astar", "lmcut") if optimal else ("gbf", "hff")
    name = f"pyperplan:{search}-{heuristic}"
    beyond = pyperplan_unsupported(domain)
    if beyond:
        return SolveResult(
            Status.ERROR,
            name,
            message=f"pyperplan plans only STRIPS with types; this domain uses {beyond} "
            "(use --planner auto, fast-downward or symk)",
        )
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="formalist-pp-") as tmp:
        d, p = Path(tmp, "domain.pddl"), Path(tmp, "problem.pddl")
        d.write_text(domain, encoding="utf-8")
        p.write_text(problem, encoding="utf-8")
        cmd = [
            sys.executable,
            "-m",
            "pyperplan",
            "-l",
            "warning",
            "-s",
            search,
            "-H",
            heuristic,
            str(d),
            str(p),
        ]
        code, out = _run(cmd, tmp, _left(limits, t0))
        elapsed = time.perf_counter() - t0
        soln = Path(tmp, "problem.pddl.soln")
        if code is None:
            return SolveResult(
                Status.TIMEOUT, name, time_s=elapsed, message=f"no plan within {limits.time_s:g} s"
            )
        if code == 0 and soln.is_file():
            plan = read_plan_file(soln.read_text(encoding="utf-8"))
            status = Status.OPTIMAL if optimal else Status.FEASIBLE
            return SolveResult(
                status,
                name,
                float(len(plan)),
                time_s=elapsed,
                message="plan found",
                plan=tuple(plan),
            )
    if code == 0 and "No solution could be found" in out:
        return SolveResult(
            Status.INFEASIBLE,
            name,
            time_s=elapsed,
            message="no plan exists: the search space was exhausted",
        )
    tail = " | ".join(out.strip().splitlines()[-3:])
    return SolveResult(
        Status.ERROR, name, time_s=elapsed, message=f"pyperplan failed (exit {code}): {tail[:500]}"
    )


def _left(limits: Limits, t0: float) -> float:
    """What is left of ``limits.time_s`` since ``t0`` (``time.perf_counter``): writing the task's
    files came out of it too. At least 10 ms (the planner is then stopped at once)."""
    return max(0.01, limits.time_s - (time.perf_counter() - t0))


def _run(cmd: list[str], cwd: str, time_s: float) -> tuple[int | None, str]:
    """Run ``cmd`` in its own session; kill the whole group at ``time_s``. Returns (exit code or
    None on timeout, output)."""
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    try:
        out, _ = proc.communicate(timeout=time_s)
        return proc.returncode, out
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        return None, ""
    except BaseException:
        _kill_group(proc)
        raise


def _kill_group(proc: subprocess.Popen[str]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.communicate()  # reap it, and drain the pipe
